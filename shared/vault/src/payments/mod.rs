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
pub fn from_env(
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
) -> Result<Box<dyn PaymentProvider>, PaymentError> {
    match std::env::var("PAYMENT_PROVIDER").as_deref() {
        Ok("stripe") => {
            let key = std::env::var("STRIPE_SECRET_KEY")
                .ok()
                .filter(|k| !k.is_empty())
                .ok_or_else(|| {
                    PaymentError::NotConfigured("STRIPE_SECRET_KEY is not set".into())
                })?;
            let base =
                std::env::var("STRIPE_API_BASE").unwrap_or_else(|_| stripe::API_BASE.to_owned());
            Ok(Box::new(StripeProvider::new(base, key)))
        }
        Ok("local") | Err(_) => Ok(Box::new(LocalProvider::new(dynamodb, table))),
        Ok(other) => Err(PaymentError::NotConfigured(format!(
            "unknown PAYMENT_PROVIDER {other}"
        ))),
    }
}
