//! Money is whole cents in an `i64`: never a float, never a silent overflow.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount of credits in cents (100 = $1.00).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Cents(pub i64);

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
    }
}
