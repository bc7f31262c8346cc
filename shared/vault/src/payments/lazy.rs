//! Stripe with its key read from SSM on the first payment rather than at start.
//!
//! Reading the key at start put an SSM round trip (and a second SDK configuration)
//! into every cold start of the vault, tasks and sweeper functions, most of whose
//! requests never charge anyone. The first payment pays for it instead, once per
//! instance; a failed read is that payment's `Unavailable` (503) and the next payment
//! tries again, so an instance never stays half-configured.

use tokio::sync::OnceCell;

use super::{ChargeFuture, ChargeRequest, PaymentError, PaymentProvider};

pub struct LazyStripe {
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
    provider: OnceCell<Box<dyn PaymentProvider>>,
}

impl LazyStripe {
    pub fn new(dynamodb: aws_sdk_dynamodb::Client, table: String) -> Self {
        Self {
            dynamodb,
            table,
            provider: OnceCell::new(),
        }
    }

    async fn provider(&self) -> Result<&dyn PaymentProvider, PaymentError> {
        self.provider
            .get_or_try_init(|| {
                super::from_settings(
                    |name| std::env::var(name).ok(),
                    self.dynamodb.clone(),
                    self.table.clone(),
                )
            })
            .await
            .map(|p| p.as_ref())
    }
}

impl PaymentProvider for LazyStripe {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn charge<'a>(&'a self, request: &'a ChargeRequest) -> ChargeFuture<'a> {
        Box::pin(async move { self.provider().await?.charge(request).await })
    }

    fn retrieve<'a>(&'a self, request: &'a ChargeRequest, charge_id: &'a str) -> ChargeFuture<'a> {
        Box::pin(async move { self.provider().await?.retrieve(request, charge_id).await })
    }
}
