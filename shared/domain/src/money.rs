//! Money is whole cents in an `i64`: never a float, never a silent overflow.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount of credits in cents (100 = $1.00).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Cents(pub i64);

/// An integer number of cents.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Cents {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Int64,
            )))
            .description(Some("Credits in integer cents (100 = $1.00)."))
            .into()
    }
}
#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Cents {}

/// Platform share of a charge, in percent; the agent earns the rest.
pub const PLATFORM_FEE_PERCENT: i64 = 15;

impl Cents {
    pub const ZERO: Cents = Cents(0);

    pub const fn get(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Cents) -> Option<Cents> {
        self.0.checked_add(other.0).map(Cents)
    }

    pub fn checked_sub(self, other: Cents) -> Option<Cents> {
        self.0.checked_sub(other.0).map(Cents)
    }

    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// Splits a charge into (agent earning, platform fee).
    ///
    /// Rounding rule: the platform fee is rounded *down* to a whole cent and the agent
    /// gets the remainder, so the two parts always add up to the charge exactly and
    /// any fraction of a cent favours the agent. Negative charges are not splittable.
    pub fn split_charge(self) -> Option<(Cents, Cents)> {
        if self.0 < 0 {
            return None;
        }
        // i128 so that a huge charge cannot overflow the multiplication.
        let fee = (i128::from(self.0) * i128::from(PLATFORM_FEE_PERCENT) / 100) as i64;
        Some((Cents(self.0 - fee), Cents(fee)))
    }

    /// Splits `refund` cents of this charge back to the buyer into (out of the agent's
    /// earning, out of the platform's fee): the fee is reversed pro rata.
    ///
    /// Rounding rule: what stays charged, `charge − refund`, is split by the same
    /// 85/15 rule as any charge ([`Cents::split_charge`]), and the refund takes the
    /// difference from each side. So a partial refund leaves the books exactly as if the
    /// task had been charged `charge − refund`; the fee refunded is 15 % of the refund
    /// rounded down or up (within one cent of pro rata), never more than the fee, and the
    /// two parts add up to the refund. `None` unless `0 ≤ refund ≤ charge`.
    pub fn split_refund(self, refund: Cents) -> Option<(Cents, Cents)> {
        if refund.0 < 0 || refund.0 > self.0 {
            return None;
        }
        let (earning, fee) = self.split_charge()?;
        let (kept_earning, kept_fee) = Cents(self.0 - refund.0).split_charge()?;
        Some((Cents(earning.0 - kept_earning.0), Cents(fee.0 - kept_fee.0)))
    }
}

impl fmt::Display for Cents {
    /// `$12.34`, `-$0.05`: for humans and logs; the API always sends integer cents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}${}.{:02}", abs / 100, abs % 100)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn split_favours_the_agent_on_fractions() {
        assert_eq!(Cents(2500).split_charge(), Some((Cents(2125), Cents(375))));
        assert_eq!(Cents(1).split_charge(), Some((Cents(1), Cents(0))));
        assert_eq!(Cents(7).split_charge(), Some((Cents(6), Cents(1))));
        assert_eq!(Cents(0).split_charge(), Some((Cents(0), Cents(0))));
        assert_eq!(Cents(-1).split_charge(), None);
    }

    #[test]
    fn refunds_split_like_the_charge_that_remains() {
        // 2,500 charged (2,125 + 375); 1,000 back: 1,500 stays (1,275 + 225).
        assert_eq!(
            Cents(2500).split_refund(Cents(1000)),
            Some((Cents(850), Cents(150)))
        );
        assert_eq!(
            Cents(2500).split_refund(Cents(2500)),
            Some((Cents(2125), Cents(375)))
        );
        assert_eq!(
            Cents(2500).split_refund(Cents(0)),
            Some((Cents(0), Cents(0)))
        );
        // 7 charged (6 + 1); 1 back: 6 stays (6 + 0), so the fee cent goes back.
        assert_eq!(Cents(7).split_refund(Cents(1)), Some((Cents(0), Cents(1))));
        assert_eq!(Cents(7).split_refund(Cents(8)), None);
        assert_eq!(Cents(7).split_refund(Cents(-1)), None);
    }

    #[test]
    fn displays_as_dollars() {
        assert_eq!(Cents(1234).to_string(), "$12.34");
        assert_eq!(Cents(-5).to_string(), "-$0.05");
        assert_eq!(Cents(i64::MIN).to_string(), "-$92233720368547758.08");
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(Cents(i64::MAX).checked_add(Cents(1)), None);
        assert_eq!(Cents(5).checked_sub(Cents(7)), Some(Cents(-2)));
    }

    proptest! {
        #[test]
        fn split_parts_sum_to_the_charge(charge in 0i64..=i64::MAX) {
            let (agent, fee) = Cents(charge).split_charge().unwrap();
            prop_assert_eq!(agent.0 + fee.0, charge);
            prop_assert!(fee.0 >= 0 && agent.0 >= fee.0);
            // The fee is the floor of 15 %: never more, and less by under one cent.
            prop_assert!(i128::from(fee.0) * 100 <= i128::from(charge) * 15);
            prop_assert!(i128::from(fee.0 + 1) * 100 > i128::from(charge) * 15);
        }

        /// A partial refund: the parts add up to the refund, neither side gives back more
        /// than it got, the fee part is 15 % of the refund rounded down or up, and what
        /// stays is exactly the split of the remaining charge.
        #[test]
        fn refund_parts_are_pro_rata_and_exact(charge in 0i64..=1_000_000_000, share in 0.0f64..=1.0) {
            let refund = ((charge as f64) * share).floor() as i64;
            let refund = refund.clamp(0, charge);
            let (earning, fee) = Cents(charge).split_charge().unwrap();
            let (from_earning, from_fee) = Cents(charge).split_refund(Cents(refund)).unwrap();
            prop_assert_eq!(from_earning.0 + from_fee.0, refund);
            prop_assert!(from_earning.0 >= 0 && from_earning.0 <= earning.0);
            prop_assert!(from_fee.0 >= 0 && from_fee.0 <= fee.0);
            let exact = i128::from(refund) * 15;
            prop_assert!(i128::from(from_fee.0) * 100 > exact - 100, "fee part {} of {}", from_fee.0, refund);
            prop_assert!(i128::from(from_fee.0) * 100 < exact + 100, "fee part {} of {}", from_fee.0, refund);
            let kept = Cents(charge - refund).split_charge().unwrap();
            prop_assert_eq!((earning.0 - from_earning.0, fee.0 - from_fee.0), (kept.0.0, kept.1.0));
        }
    }
}
