//! Card payments behind one trait: the `local` provider (default, records charges in
//! the table) and `stripe` (PaymentIntents over HTTPS), chosen by `PAYMENT_PROVIDER`.

mod local;
mod stripe;

use std::future::Future;
use std::pin::Pin;

use aicity_domain::ids::OwnerId;
use aicity_domain::money::Cents;

pub use local::{DECLINING_METHODS, LocalProvider};
pub use stripe::StripeProvider;

/// The payment method used when a request names none.
pub const DEFAULT_PAYMENT_METHOD: &str = "pm_card_visa";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    pub owner_id: OwnerId,
    pub amount: Cents,
    pub payment_method: String,
    /// The same key charges once, however often it is sent.
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// The provider's id for the payment (`ch_…` locally, `pi_…` on Stripe).
    pub id: String,
    pub amount: Cents,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The card was declined; the reason is the provider's, safe to show.
    #[error("declined: {0}")]
    Declined(String),
    /// The provider could not be reached or failed.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// The selected provider is missing its configuration.
    #[error("payment provider not configured: {0}")]
    NotConfigured(String),
    /// The charge was accepted but has not settled yet (Stripe's `processing`): its id,
    /// to ask about it again with [`PaymentProvider::retrieve`].
    #[error("payment processing: {0}")]
    Processing(String),
}

pub type ChargeFuture<'a> = Pin<Box<dyn Future<Output = Result<Charge, PaymentError>> + Send + 'a>>;

pub trait PaymentProvider: Send + Sync {
    fn name(&self) -> &'static str;
    /// Charges once per `request.idempotency_key`, however often it is called.
    fn charge<'a>(&'a self, request: &'a ChargeRequest) -> ChargeFuture<'a>;
    /// Where the charge `charge_id` (made for `request`) stands now: settled, still
    /// `Processing`, or `Declined` after all.
    fn retrieve<'a>(&'a self, request: &'a ChargeRequest, charge_id: &'a str) -> ChargeFuture<'a>;
}

/// A shared provider is a provider (tests and callers that keep a handle on theirs).
impl<P: PaymentProvider + ?Sized> PaymentProvider for std::sync::Arc<P> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn charge<'a>(&'a self, request: &'a ChargeRequest) -> ChargeFuture<'a> {
        (**self).charge(request)
    }

    fn retrieve<'a>(&'a self, request: &'a ChargeRequest, charge_id: &'a str) -> ChargeFuture<'a> {
        (**self).retrieve(request, charge_id)
    }
}

/// The provider `PAYMENT_PROVIDER` selects (`local` unless set to `stripe`).
///
/// `stripe` without `STRIPE_SECRET_KEY` is not a start-up failure: the function starts
/// and every payment answers `503 STRIPE_NOT_CONFIGURED` (what the README promises),
/// while everything else keeps working. Only an unknown provider name is an error.
pub fn from_env(
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
) -> Result<Box<dyn PaymentProvider>, PaymentError> {
    let var = |name: &str| std::env::var(name).ok();
    select(
        var("PAYMENT_PROVIDER").as_deref(),
        var("STRIPE_SECRET_KEY").as_deref(),
        var("STRIPE_API_BASE").as_deref(),
        dynamodb,
        table,
    )
}

/// [`from_env`] on given values.
pub fn select(
    provider: Option<&str>,
    stripe_key: Option<&str>,
    stripe_base: Option<&str>,
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
) -> Result<Box<dyn PaymentProvider>, PaymentError> {
    match provider.map(str::trim).filter(|p| !p.is_empty()) {
        Some("stripe") => match stripe_key.map(str::trim).filter(|k| !k.is_empty()) {
            Some(key) => Ok(Box::new(StripeProvider::new(
                stripe_base.unwrap_or(stripe::API_BASE).to_owned(),
                key.to_owned(),
            ))),
            None => {
                tracing::error!(
                    "PAYMENT_PROVIDER is stripe but STRIPE_SECRET_KEY is not set; payments answer 503"
                );
                Ok(Box::new(Unconfigured))
            }
        },
        Some("local") | None => Ok(Box::new(LocalProvider::new(dynamodb, table))),
        Some(other) => Err(PaymentError::NotConfigured(format!(
            "unknown PAYMENT_PROVIDER {other}"
        ))),
    }
}

/// Stripe selected without its key: every payment is `NotConfigured`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unconfigured;

impl PaymentProvider for Unconfigured {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn charge<'a>(&'a self, _request: &'a ChargeRequest) -> ChargeFuture<'a> {
        Box::pin(async {
            Err(PaymentError::NotConfigured(
                "STRIPE_SECRET_KEY is not set".into(),
            ))
        })
    }

    fn retrieve<'a>(
        &'a self,
        _request: &'a ChargeRequest,
        _charge_id: &'a str,
    ) -> ChargeFuture<'a> {
        self.charge(_request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    fn request() -> ChargeRequest {
        ChargeRequest {
            owner_id: OwnerId::new(),
            amount: Cents(100),
            payment_method: DEFAULT_PAYMENT_METHOD.into(),
            idempotency_key: "k".into(),
        }
    }

    #[tokio::test]
    async fn the_provider_is_chosen_from_its_settings() {
        let pick = |provider, key| select(provider, key, None, client(), "t".into());
        assert_eq!(pick(None, None).unwrap().name(), "local");
        assert_eq!(pick(Some("local"), Some("sk_x")).unwrap().name(), "local");
        assert_eq!(pick(Some(""), None).unwrap().name(), "local");
        assert!(matches!(
            pick(Some("paypal"), None),
            Err(PaymentError::NotConfigured(_))
        ));
        // Stripe with a key is the real client (its charges go to the configured base).
        let stripe = pick(Some("stripe"), Some("sk_test_1")).unwrap();
        assert_eq!(stripe.name(), "stripe");
        // Stripe without a key starts, and every payment says it is not configured.
        for key in [None, Some(""), Some("  ")] {
            let unconfigured = pick(Some("stripe"), key).unwrap();
            assert_eq!(unconfigured.name(), "stripe");
            let request = request();
            assert!(matches!(
                unconfigured.charge(&request).await,
                Err(PaymentError::NotConfigured(_))
            ));
            assert!(matches!(
                unconfigured.retrieve(&request, "pi_1").await,
                Err(PaymentError::NotConfigured(_))
            ));
        }
    }
}
