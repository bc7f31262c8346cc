//! The owner's pool as the API shows it, and the requests that change it.

use serde::{Deserialize, Serialize};

use crate::FieldError;
use crate::money::Cents;
use crate::validate::{Validate, check_range};

/// Top-ups are between $5 and $10,000.
pub const MIN_TOP_UP: i64 = 500;
pub const MAX_TOP_UP: i64 = 1_000_000;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoTopUp {
    pub enabled: bool,
    /// Reload when a hold would take `available` below this.
    pub threshold: Cents,
    /// How much to charge each time.
    pub reload_amount: Cents,
}

impl AutoTopUp {
    /// Whether holding `amount` from `available` should trigger a reload first.
    pub fn fires(&self, available: Cents, amount: Cents) -> bool {
        self.enabled && available.get() - amount.get() < self.threshold.get()
    }
}

impl Validate for AutoTopUp {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_range(errors, "threshold", self.threshold.get(), 0, MAX_TOP_UP);
        if self.enabled || self.reload_amount.get() != 0 {
            check_range(
                errors,
                "reloadAmount",
                self.reload_amount.get(),
                MIN_TOP_UP,
                MAX_TOP_UP,
            );
        }
    }
}

/// `POST /vault/pool/top-up`
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopUpRequest {
    /// Cents, $5 to $10,000.
    #[cfg_attr(feature = "openapi", schema(minimum = 500, maximum = 1_000_000))]
    pub amount: i64,
    /// A payment method or test token; the local provider declines
    /// `tok_chargeDeclined` and `pm_card_chargeDeclined`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub payment_method: Option<String>,
}

impl Validate for TopUpRequest {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_range(errors, "amount", self.amount, MIN_TOP_UP, MAX_TOP_UP);
        if let Some(method) = &self.payment_method {
            crate::validate::check_length(errors, "paymentMethod", method, 1, 255);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_top_up_fires_below_the_threshold_only_when_enabled() {
        let rule = AutoTopUp {
            enabled: true,
            threshold: Cents(1_000),
            reload_amount: Cents(5_000),
        };
        assert!(rule.fires(Cents(1_200), Cents(500)));
        assert!(!rule.fires(Cents(1_500), Cents(500)));
        assert!(
            !AutoTopUp {
                enabled: false,
                ..rule
            }
            .fires(Cents(0), Cents(500))
        );
    }

    #[test]
    fn top_up_amounts_are_bounded() {
        for (amount, ok) in [
            (499, false),
            (500, true),
            (1_000_000, true),
            (1_000_001, false),
            (-5, false),
        ] {
            let mut errors = Vec::new();
            TopUpRequest {
                amount,
                payment_method: None,
            }
            .validate(&mut errors);
            assert_eq!(errors.is_empty(), ok, "{amount}");
        }
    }
}
