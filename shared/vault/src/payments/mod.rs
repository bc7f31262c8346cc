//! Card payments behind one trait: the `local` provider (records charges in the table;
//! emulators and development only) and `stripe` (PaymentIntents over HTTPS), chosen by
//! `PAYMENT_PROVIDER`, which has no default.

mod lazy;
mod local;
mod stripe;

use std::future::Future;
use std::pin::Pin;

use aicity_domain::ids::OwnerId;
use aicity_domain::money::Cents;

pub use lazy::LazyStripe;
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

/// Why a card was declined: a fixed set, the only decline detail the API shows
/// (`details.reason`). The provider's own text never leaves the function: it can echo
/// what it was sent (keys, ids), and it is not ours to promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeclineReason {
    CardDeclined,
    InsufficientFunds,
    ExpiredCard,
    IncorrectCvc,
    AuthenticationRequired,
    ProcessingError,
    Other,
}

impl DeclineReason {
    pub const ALL: [DeclineReason; 7] = [
        Self::CardDeclined,
        Self::InsufficientFunds,
        Self::ExpiredCard,
        Self::IncorrectCvc,
        Self::AuthenticationRequired,
        Self::ProcessingError,
        Self::Other,
    ];

    /// The wire name, e.g. `"insufficient_funds"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CardDeclined => "card_declined",
            Self::InsufficientFunds => "insufficient_funds",
            Self::ExpiredCard => "expired_card",
            Self::IncorrectCvc => "incorrect_cvc",
            Self::AuthenticationRequired => "authentication_required",
            Self::ProcessingError => "processing_error",
            Self::Other => "other",
        }
    }

    /// From Stripe's `decline_code` (the issuer's reason, more precise) or else its
    /// error `code`; anything unknown is `Other`, a generic decline `CardDeclined`.
    pub fn from_stripe(code: Option<&str>, decline_code: Option<&str>) -> Self {
        let known = |c: &str| match c {
            "insufficient_funds" | "card_velocity_exceeded" | "withdrawal_count_limit_exceeded" => {
                Some(Self::InsufficientFunds)
            }
            "expired_card" => Some(Self::ExpiredCard),
            "incorrect_cvc" | "invalid_cvc" => Some(Self::IncorrectCvc),
            "authentication_required"
            | "payment_intent_authentication_failure"
            | "authentication_not_handled" => Some(Self::AuthenticationRequired),
            "processing_error" | "issuer_not_available" | "try_again_later" => {
                Some(Self::ProcessingError)
            }
            "card_declined"
            | "generic_decline"
            | "do_not_honor"
            | "lost_card"
            | "stolen_card"
            | "fraudulent"
            | "pickup_card"
            | "restricted_card"
            | "security_violation"
            | "transaction_not_allowed"
            | "card_not_supported"
            | "call_issuer"
            | "not_permitted"
            | "revocation_of_authorization"
            | "no_action_taken" => Some(Self::CardDeclined),
            _ => None,
        };
        decline_code
            .and_then(known)
            .or_else(|| code.and_then(known))
            .unwrap_or(Self::Other)
    }
}

impl std::fmt::Display for DeclineReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The card was declined, for one of a fixed set of reasons.
    #[error("declined: {0}")]
    Declined(DeclineReason),
    /// The provider could not be reached or failed (logged, never shown).
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// The selected provider is missing its configuration.
    #[error("payment provider not configured: {0}")]
    NotConfigured(String),
    /// No provider is enabled: none was chosen, or `local` outside an emulator without
    /// `ALLOW_LOCAL_PAYMENTS=true` (503 `PAYMENTS_NOT_CONFIGURED`).
    #[error("no payment provider enabled: {0}")]
    Disabled(String),
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

/// The provider `PAYMENT_PROVIDER` selects, from the process environment.
///
/// There is no default: unset, or `local` outside an emulator, starts the function
/// with payments disabled (every payment answers `503 PAYMENTS_NOT_CONFIGURED`), so a
/// deployment that forgot to choose never hands out free credits. `local` is allowed
/// against an emulator (`AWS_ENDPOINT_URL` or `AWS_ENDPOINT_URL_DYNAMODB` set, as
/// `make dev` and the tests do) or with `ALLOW_LOCAL_PAYMENTS=true` (development).
/// `stripe` without its key starts too, and every payment answers
/// `503 STRIPE_NOT_CONFIGURED`. The key is `STRIPE_SECRET_KEY`, or the SSM parameter
/// `STRIPE_SECRET_KEY_PARAM` names ([`aicity_store::secrets`]), read once per instance
/// on the first payment ([`LazyStripe`]: no SSM round trip in the cold start; SSM
/// failing is that payment's 503). Only an unknown provider name is a start-up error.
pub async fn from_env(
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
) -> Result<Box<dyn PaymentProvider>, PaymentError> {
    let var = |name: &str| std::env::var(name).ok();
    if stripe_key_in_ssm(var) {
        return Ok(Box::new(LazyStripe::new(dynamodb, table)));
    }
    from_settings(var, dynamodb, table).await
}

/// Stripe selected, its key not in the environment but named in SSM.
fn stripe_key_in_ssm(var: impl Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| var(name).is_some_and(|v| !v.trim().is_empty());
    var("PAYMENT_PROVIDER").as_deref().map(str::trim) == Some("stripe")
        && !set("STRIPE_SECRET_KEY")
        && set("STRIPE_SECRET_KEY_PARAM")
}

/// [`from_env`] with the variables read through `var`.
pub async fn from_settings(
    var: impl Fn(&str) -> Option<String>,
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
) -> Result<Box<dyn PaymentProvider>, PaymentError> {
    let provider = var("PAYMENT_PROVIDER");
    let stripe_key = if provider.as_deref().map(str::trim) == Some("stripe") {
        aicity_store::secrets::resolve_with(&var, "STRIPE_SECRET_KEY")
            .await
            .map_err(|e| PaymentError::Unavailable(e.to_string()))?
    } else {
        None
    };
    select(
        provider.as_deref(),
        stripe_key.as_deref(),
        var("STRIPE_API_BASE").as_deref(),
        local_payments_allowed(&var),
        dynamodb,
        table,
    )
}

/// Whether the `local` provider may run: against an emulator, or explicitly allowed.
pub fn local_payments_allowed(var: impl Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| var(name).is_some_and(|v| !v.trim().is_empty());
    set("AWS_ENDPOINT_URL")
        || set("AWS_ENDPOINT_URL_DYNAMODB")
        || var("ALLOW_LOCAL_PAYMENTS").is_some_and(|v| matches!(v.trim(), "true" | "1"))
}

/// [`from_env`] on given values.
pub fn select(
    provider: Option<&str>,
    stripe_key: Option<&str>,
    stripe_base: Option<&str>,
    local_allowed: bool,
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
        Some("local") if local_allowed => Ok(Box::new(LocalProvider::new(dynamodb, table))),
        Some("local") => {
            tracing::error!(
                "PAYMENT_PROVIDER is local outside an emulator and ALLOW_LOCAL_PAYMENTS is not \
                 true; payments answer 503"
            );
            Ok(Box::new(Disabled(
                "local payments are refused outside an emulator",
            )))
        }
        None => {
            tracing::error!("PAYMENT_PROVIDER is not set; payments answer 503");
            Ok(Box::new(Disabled("no payment provider chosen")))
        }
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

/// No provider enabled (none chosen, or `local` refused): every payment is `Disabled`.
#[derive(Debug, Clone, Copy)]
pub struct Disabled(pub &'static str);

impl PaymentProvider for Disabled {
    fn name(&self) -> &'static str {
        "none"
    }

    fn charge<'a>(&'a self, _request: &'a ChargeRequest) -> ChargeFuture<'a> {
        let why = self.0;
        Box::pin(async move { Err(PaymentError::Disabled(why.into())) })
    }

    fn retrieve<'a>(&'a self, request: &'a ChargeRequest, _charge_id: &'a str) -> ChargeFuture<'a> {
        self.charge(request)
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
        let pick = |provider, key, local| select(provider, key, None, local, client(), "t".into());
        assert_eq!(
            pick(Some("local"), Some("sk_x"), true).unwrap().name(),
            "local"
        );
        assert!(matches!(
            pick(Some("paypal"), None, true),
            Err(PaymentError::NotConfigured(_))
        ));
        // Stripe with a key is the real client (its charges go to the configured base).
        let stripe = pick(Some("stripe"), Some("sk_test_1"), false).unwrap();
        assert_eq!(stripe.name(), "stripe");
        // Stripe without a key starts, and every payment says it is not configured.
        for key in [None, Some(""), Some("  ")] {
            let unconfigured = pick(Some("stripe"), key, true).unwrap();
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

    /// No default: nothing chosen, or `local` outside an emulator, starts with every
    /// payment refused (never a free credit).
    #[tokio::test]
    async fn no_provider_or_local_outside_an_emulator_refuses_payments() {
        let pick = |provider, local| select(provider, None, None, local, client(), "t".into());
        for (provider, local) in [
            (None, true),
            (None, false),
            (Some(""), true),
            (Some("local"), false),
            (Some(" local "), false),
        ] {
            let disabled = pick(provider, local).unwrap();
            assert_eq!(disabled.name(), "none", "{provider:?} {local}");
            let request = request();
            assert!(matches!(
                disabled.charge(&request).await,
                Err(PaymentError::Disabled(_))
            ));
            assert!(matches!(
                disabled.retrieve(&request, "ch_1").await,
                Err(PaymentError::Disabled(_))
            ));
        }
    }

    #[test]
    fn local_payments_need_an_emulator_or_an_explicit_allowance() {
        let with = |pairs: &'static [(&'static str, &'static str)]| {
            local_payments_allowed(move |name| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            })
        };
        assert!(!with(&[]));
        assert!(!with(&[("AWS_ENDPOINT_URL", " ")]));
        assert!(!with(&[("ALLOW_LOCAL_PAYMENTS", "yes please")]));
        assert!(with(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")]));
        assert!(with(&[(
            "AWS_ENDPOINT_URL_DYNAMODB",
            "http://127.0.0.1:8000"
        )]));
        assert!(with(&[("ALLOW_LOCAL_PAYMENTS", "true")]));
        assert!(with(&[("ALLOW_LOCAL_PAYMENTS", "1")]));
    }

    #[test]
    fn stripe_codes_map_to_a_fixed_set_of_reasons() {
        use DeclineReason as R;
        let cases = [
            (
                Some("card_declined"),
                Some("generic_decline"),
                R::CardDeclined,
            ),
            (
                Some("card_declined"),
                Some("insufficient_funds"),
                R::InsufficientFunds,
            ),
            (Some("card_declined"), Some("lost_card"), R::CardDeclined),
            (Some("expired_card"), None, R::ExpiredCard),
            (Some("incorrect_cvc"), None, R::IncorrectCvc),
            (Some("processing_error"), None, R::ProcessingError),
            (
                Some("payment_intent_authentication_failure"),
                None,
                R::AuthenticationRequired,
            ),
            (
                Some("card_declined"),
                Some("a_new_code_stripe_invents"),
                R::CardDeclined,
            ),
            (Some("amount_too_small"), None, R::Other),
            (None, None, R::Other),
        ];
        for (code, decline, reason) in cases {
            assert_eq!(
                DeclineReason::from_stripe(code, decline),
                reason,
                "{code:?} {decline:?}"
            );
        }
        let names: std::collections::HashSet<_> =
            DeclineReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), DeclineReason::ALL.len());
    }
}
