//! The local provider: no network, but real records. Every charge is written to the
//! table once per idempotency key; Stripe's decline test tokens decline, so the error
//! path can be exercised without a card network.

use aicity_domain::money::Cents;
use aicity_store::Key;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::{Charge, ChargeFuture, ChargeRequest, DeclineReason, PaymentError, PaymentProvider};

/// Payment methods that decline, named as Stripe's test tokens are.
pub const DECLINING_METHODS: &[&str] = &[
    "tok_chargeDeclined",
    "pm_card_chargeDeclined",
    "tok_chargeDeclinedInsufficientFunds",
    "pm_card_chargeDeclinedInsufficientFunds",
];

pub struct LocalProvider {
    dynamodb: Client,
    table: String,
}

impl LocalProvider {
    pub fn new(dynamodb: Client, table: String) -> Self {
        Self { dynamodb, table }
    }

    async fn record(&self, request: &ChargeRequest) -> Result<Charge, PaymentError> {
        if DECLINING_METHODS.contains(&request.payment_method.as_str()) {
            let reason = if request.payment_method.contains("InsufficientFunds") {
                DeclineReason::InsufficientFunds
            } else {
                DeclineReason::CardDeclined
            };
            return Err(PaymentError::Declined(reason));
        }
        let id = format!("ch_local_{}", aicity_domain::ids::TransferId::new().ulid());
        let mut item = Key::new(format!("PAYMENT#{}", request.idempotency_key), "PAYMENT").to_map();
        item.insert("chargeId".into(), AttributeValue::S(id.clone()));
        item.insert(
            "ownerId".into(),
            AttributeValue::S(request.owner_id.to_string()),
        );
        item.insert(
            "amount".into(),
            AttributeValue::N(request.amount.get().to_string()),
        );
        item.insert(
            "paymentMethod".into(),
            AttributeValue::S(request.payment_method.clone()),
        );
        let result = self
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Charge {
                id,
                amount: request.amount,
            }),
            Err(err) => match err.into_service_error() {
                // Same key again: the first charge stands (as Stripe's idempotency does).
                PutItemError::ConditionalCheckFailedException(failed) => {
                    let old = failed.item().cloned().unwrap_or_default();
                    let id = old.get("chargeId").and_then(|v| v.as_s().ok()).cloned();
                    let amount = old
                        .get("amount")
                        .and_then(|v| v.as_n().ok())
                        .and_then(|n| n.parse().ok())
                        .map(Cents);
                    match (id, amount) {
                        (Some(id), Some(amount)) => Ok(Charge { id, amount }),
                        _ => Err(PaymentError::Unavailable("charge record unreadable".into())),
                    }
                }
                other => Err(PaymentError::Unavailable(other.to_string())),
            },
        }
    }
}

impl PaymentProvider for LocalProvider {
    fn name(&self) -> &'static str {
        "local"
    }

    fn charge<'a>(&'a self, request: &'a ChargeRequest) -> ChargeFuture<'a> {
        Box::pin(self.record(request))
    }

    /// Local charges settle at once: the recorded charge for the key, or none.
    fn retrieve<'a>(&'a self, request: &'a ChargeRequest, charge_id: &'a str) -> ChargeFuture<'a> {
        Box::pin(async move {
            let item = self
                .dynamodb
                .get_item()
                .table_name(&self.table)
                .set_key(Some(
                    Key::new(format!("PAYMENT#{}", request.idempotency_key), "PAYMENT").to_map(),
                ))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| PaymentError::Unavailable(e.to_string()))?
                .item
                .unwrap_or_default();
            let id = item.get("chargeId").and_then(|v| v.as_s().ok());
            let amount = item
                .get("amount")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .map(Cents);
            match (id, amount) {
                (Some(id), Some(amount)) if id == charge_id => Ok(Charge {
                    id: id.clone(),
                    amount,
                }),
                _ => Err(PaymentError::Declined(DeclineReason::Other)),
            }
        })
    }
}
