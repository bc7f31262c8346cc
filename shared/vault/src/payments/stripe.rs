//! Stripe: one confirmed PaymentIntent per charge, over HTTPS.
//!
//! `POST /v1/payment_intents` with `confirm=true` and the request's idempotency key as
//! Stripe's `Idempotency-Key`, so a retried top-up never charges twice.

use std::time::Duration;

use aicity_domain::money::Cents;
use serde::Deserialize;

use super::{Charge, ChargeFuture, ChargeRequest, DeclineReason, PaymentError, PaymentProvider};

pub const API_BASE: &str = "https://api.stripe.com";

pub struct StripeProvider {
    http: reqwest::Client,
    base_url: String,
    secret_key: String,
}

#[derive(Deserialize)]
struct PaymentIntent {
    id: String,
    status: String,
    amount: i64,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: StripeError,
}

#[derive(Deserialize)]
struct StripeError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
}

impl StripeProvider {
    pub fn new(base_url: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap_or_default(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            secret_key: secret_key.into(),
        }
    }

    async fn create_intent(&self, request: &ChargeRequest) -> Result<Charge, PaymentError> {
        let amount = request.amount.get().to_string();
        let owner = request.owner_id.to_string();
        let form = [
            ("amount", amount.as_str()),
            ("currency", "usd"),
            ("payment_method", request.payment_method.as_str()),
            ("confirm", "true"),
            ("automatic_payment_methods[enabled]", "true"),
            ("automatic_payment_methods[allow_redirects]", "never"),
            ("description", "AI City credit top-up"),
            ("metadata[owner_id]", owner.as_str()),
        ];
        let response = self
            .http
            .post(format!("{}/v1/payment_intents", self.base_url))
            .bearer_auth(&self.secret_key)
            .header("Idempotency-Key", &request.idempotency_key)
            .form(&form)
            .send()
            .await
            .map_err(|e| PaymentError::Unavailable(e.to_string()))?;
        Self::outcome(response).await
    }

    /// `GET /v1/payment_intents/{id}`: where a processing payment stands now.
    async fn retrieve_intent(&self, charge_id: &str) -> Result<Charge, PaymentError> {
        let id: String = charge_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let response = self
            .http
            .get(format!("{}/v1/payment_intents/{id}", self.base_url))
            .bearer_auth(&self.secret_key)
            .send()
            .await
            .map_err(|e| PaymentError::Unavailable(e.to_string()))?;
        Self::outcome(response).await
    }

    /// A PaymentIntent answer in our terms: `succeeded` is a charge, `processing` is
    /// not settled yet (never a decline), anything else did not complete.
    async fn outcome(response: reqwest::Response) -> Result<Charge, PaymentError> {
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| PaymentError::Unavailable(e.to_string()))?;
        if status.is_success() {
            let intent: PaymentIntent = serde_json::from_slice(&body)
                .map_err(|e| PaymentError::Unavailable(format!("unexpected response: {e}")))?;
            return match intent.status.as_str() {
                "succeeded" => Ok(Charge {
                    id: intent.id,
                    amount: Cents(intent.amount),
                }),
                "processing" => Err(PaymentError::Processing(intent.id)),
                // 3-D Secure wanted: this server-side confirmation cannot do it.
                "requires_action" | "requires_confirmation" => Err(PaymentError::Declined(
                    DeclineReason::AuthenticationRequired,
                )),
                "requires_payment_method" => {
                    Err(PaymentError::Declined(DeclineReason::CardDeclined))
                }
                _ => Err(PaymentError::Declined(DeclineReason::Other)),
            };
        }
        let error = serde_json::from_slice::<ErrorBody>(&body)
            .ok()
            .map(|b| b.error);
        // Stripe's message is logged (as the cause of an outage), never shown: it can
        // echo what it was sent. A decline shows only its mapped reason.
        let message = error
            .as_ref()
            .and_then(|e| e.message.clone())
            .unwrap_or_else(|| format!("HTTP {status}"));
        let reason = DeclineReason::from_stripe(
            error.as_ref().and_then(|e| e.code.as_deref()),
            error.as_ref().and_then(|e| e.decline_code.as_deref()),
        );
        let kind = error.and_then(|e| e.kind);
        match status.as_u16() {
            // card_error: declined, for a reason from Stripe's codes.
            402 => Err(PaymentError::Declined(reason)),
            401 | 403 => Err(PaymentError::NotConfigured(
                "Stripe rejected the API key".into(),
            )),
            // The key's first request is still running (409) or ran with other
            // parameters (400): it may have charged, so this is no decline (a decline
            // discards the intent, and a charge landing after that would never be
            // credited). Rate limits (429) are outages too.
            409 | 429 => Err(PaymentError::Unavailable(message)),
            _ if kind.as_deref() == Some("idempotency_error") => {
                Err(PaymentError::Unavailable(message))
            }
            400..=499 if kind.is_some() => Err(PaymentError::Declined(reason)),
            _ => Err(PaymentError::Unavailable(message)),
        }
    }
}

impl PaymentProvider for StripeProvider {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn charge<'a>(&'a self, request: &'a ChargeRequest) -> ChargeFuture<'a> {
        Box::pin(self.create_intent(request))
    }

    fn retrieve<'a>(&'a self, _request: &'a ChargeRequest, charge_id: &'a str) -> ChargeFuture<'a> {
        Box::pin(self.retrieve_intent(charge_id))
    }
}
