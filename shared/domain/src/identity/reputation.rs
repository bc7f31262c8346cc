//! Reputation: what an agent's record of outcomes says about it, as four dimensions,
//! a confidence, an overall score 0–1000 and a trust tier. Pure: the formula lives
//! here and in `docs/reputation.md`, and is property-tested.
//!
//! Every dimension is a ratio of the form `good / (good + bad + prior)` in integer
//! arithmetic (floored), so a good outcome can only raise it and a bad one only lower
//! it; the overall score is their weighted sum scaled by the confidence, which grows
//! with completed work only. Hence: bounded 0–1000, a good outcome never lowers the
//! score, a bad one never raises it.

use serde::{Deserialize, Serialize};

use crate::identity::TrustTier;
use crate::money::Cents;

/// One thing that happened to an agent's work, applied once (in the same transaction
/// as the task change that caused it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Outcome {
    /// Passed the quality gate with this score; the buyer was charged `charged`.
    Completed {
        quality: u8,
        charged: Cents,
    },
    /// The quality gate scored it below the pass mark.
    QualityFailed,
    /// The agent reported failure.
    AgentFailed,
    /// Executing past its deadline.
    TimedOut,
    /// Assigned and never started: the task went back to routing.
    Abandoned,
    ThumbsUp,
    /// A thumbs-down too late to refund.
    ThumbsDown,
    /// Refunded to the buyer (a thumbs-down in the window, or a dispute), `amount` taken back.
    Refunded {
        amount: Cents,
    },
    DisputeFiled,
    /// The buyer withdrew its dispute: no ruling, no mark.
    DisputeWithdrawn,
    DisputeWon,
    DisputeLost,
}

impl Outcome {
    pub fn is_good(self) -> bool {
        matches!(
            self,
            Outcome::Completed { .. } | Outcome::ThumbsUp | Outcome::DisputeWon
        )
    }

    /// Filing (or withdrawing) a dispute is neither good nor bad: the ruling is.
    pub fn is_neutral(self) -> bool {
        matches!(self, Outcome::DisputeFiled | Outcome::DisputeWithdrawn)
    }

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Completed { .. } => "completed",
            Outcome::QualityFailed => "quality_failed",
            Outcome::AgentFailed => "failed",
            Outcome::TimedOut => "timed_out",
            Outcome::Abandoned => "abandoned",
            Outcome::ThumbsUp => "thumbs_up",
            Outcome::ThumbsDown => "thumbs_down",
            Outcome::Refunded { .. } => "refunded",
            Outcome::DisputeFiled => "dispute_filed",
            Outcome::DisputeWithdrawn => "dispute_withdrawn",
            Outcome::DisputeWon => "dispute_won",
            Outcome::DisputeLost => "dispute_lost",
        }
    }
}

/// The counts reputation is computed from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Record {
    pub completed: u32,
    /// Sum of the quality scores (0–100) of completed tasks.
    pub quality_points: u64,
    pub quality_failed: u32,
    pub agent_failed: u32,
    pub timed_out: u32,
    pub abandoned: u32,
    pub thumbs_up: u32,
    pub thumbs_down: u32,
    pub refunded: u32,
    pub disputes_filed: u32,
    pub disputes_withdrawn: u32,
    pub disputes_won: u32,
    pub disputes_lost: u32,
    /// Cents charged for its work, less what was refunded (never below 0).
    pub earned: i64,
}

impl Record {
    pub fn apply(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Completed { quality, charged } => {
                self.completed += 1;
                self.quality_points += u64::from(quality.min(100));
                self.earned += charged.get().max(0);
            }
            Outcome::QualityFailed => self.quality_failed += 1,
            Outcome::AgentFailed => self.agent_failed += 1,
            Outcome::TimedOut => self.timed_out += 1,
            Outcome::Abandoned => self.abandoned += 1,
            Outcome::ThumbsUp => self.thumbs_up += 1,
            Outcome::ThumbsDown => self.thumbs_down += 1,
            Outcome::Refunded { amount } => {
                self.refunded += 1;
                self.earned = (self.earned - amount.get().max(0)).max(0);
            }
            Outcome::DisputeFiled => self.disputes_filed += 1,
            Outcome::DisputeWithdrawn => self.disputes_withdrawn += 1,
            Outcome::DisputeWon => self.disputes_won += 1,
            Outcome::DisputeLost => self.disputes_lost += 1,
        }
    }

    /// Disputes filed against it and not yet ruled on or withdrawn.
    pub fn disputes_open(&self) -> u32 {
        self.disputes_filed
            .saturating_sub(self.disputes_withdrawn + self.disputes_won + self.disputes_lost)
    }

    /// Tasks that ended in a failure the agent is answerable for.
    pub fn failed(&self) -> u32 {
        self.quality_failed + self.agent_failed + self.timed_out
    }
}

/// The dimensions (0–1000 each) and the confidence (0–100).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Reputation {
    pub outcome: u32,
    pub relationship: u32,
    pub economic: u32,
    pub reliability: u32,
    pub confidence: u32,
}

/// Half of the economic dimension is reached at this much earned ($500).
pub const ECONOMIC_HALF_CENTS: u64 = 50_000;

/// Weights of the dimensions, in tenths of a percent (sum 1000).
pub const WEIGHTS: [u64; 4] = [400, 250, 200, 150];

/// `1000 · good / (good + bad + prior)`, floored.
fn ratio(good: u64, bad: u64, prior: u64) -> u32 {
    let total = good + bad + prior;
    if total == 0 {
        return 0;
    }
    (1000 * good / total) as u32
}

pub fn reputation(record: &Record) -> Reputation {
    let c = u64::from(record.completed);
    // Outcome: quality-weighted successes against failures (in quality points: a
    // failure weighs a perfect task), with a prior of one failure.
    let outcome = ratio(record.quality_points, 100 * u64::from(record.failed()), 100);
    // Relationship: what buyers said, from a neutral 500 (one good, one bad prior).
    let pleased = u64::from(record.thumbs_up) + u64::from(record.disputes_won);
    let displeased = u64::from(record.thumbs_down)
        + u64::from(record.refunded)
        + 2 * u64::from(record.disputes_lost);
    let relationship = ratio(pleased + 1, displeased + 1, 0);
    // Economic: paid work delivered, half at $500.
    let economic = ratio(record.earned.max(0) as u64, 0, ECONOMIC_HALF_CENTS);
    // Reliability: taken work seen through, against abandoned and timed-out work and
    // the agent's own failures.
    let dropped = u64::from(record.abandoned + record.timed_out + record.agent_failed);
    let reliability = ratio(c + 1, dropped + 1, 0);
    Reputation {
        outcome,
        relationship,
        economic,
        reliability,
        confidence: (record.completed.saturating_mul(2)).min(100),
    }
}

/// The overall score 0–1000: the weighted dimensions, scaled from 40 % (no completed
/// work yet) to 100 % (confidence 100, i.e. 50 completed tasks).
pub fn overall(reputation: &Reputation) -> u32 {
    let dims = [
        reputation.outcome,
        reputation.relationship,
        reputation.economic,
        reputation.reliability,
    ];
    let weighted: u64 = dims
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u64::from(*d) * w)
        .sum::<u64>()
        / 1000;
    let scale = 400 + 6 * u64::from(reputation.confidence.min(100));
    (weighted * scale / 1000).min(1000) as u32
}

/// Verified after this many completed tasks.
pub const VERIFIED_AFTER: u32 = 3;

/// The tier from the score and the record: `unverified` (< 3 completed) →
/// `provisional` → `established` (≥ 300, ≥ 10) → `trusted` (≥ 600, ≥ 50) → `elite`
/// (≥ 850, ≥ 200). A falling score demotes.
pub fn tier(score: u32, completed: u32) -> TrustTier {
    if completed < VERIFIED_AFTER {
        TrustTier::Unverified
    } else if score >= 850 && completed >= 200 {
        TrustTier::Elite
    } else if score >= 600 && completed >= 50 {
        TrustTier::Trusted
    } else if score >= 300 && completed >= 10 {
        TrustTier::Established
    } else {
        TrustTier::Provisional
    }
}

/// How many tasks an agent of a tier may run at once, whatever it asks for: trust is
/// earned before volume.
pub fn concurrency_cap(tier: TrustTier) -> u32 {
    match tier {
        TrustTier::Unverified => 2,
        TrustTier::Provisional => 5,
        TrustTier::Established => 10,
        TrustTier::Trusted => 25,
        TrustTier::Elite => 50,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            (0u8..=100, 0i64..1_000_000).prop_map(|(quality, c)| Outcome::Completed {
                quality,
                charged: Cents(c)
            }),
            Just(Outcome::QualityFailed),
            Just(Outcome::AgentFailed),
            Just(Outcome::TimedOut),
            Just(Outcome::Abandoned),
            Just(Outcome::ThumbsUp),
            Just(Outcome::ThumbsDown),
            (0i64..1_000_000).prop_map(|a| Outcome::Refunded { amount: Cents(a) }),
            Just(Outcome::DisputeFiled),
            Just(Outcome::DisputeWithdrawn),
            Just(Outcome::DisputeWon),
            Just(Outcome::DisputeLost),
        ]
    }

    fn score(record: &Record) -> u32 {
        overall(&reputation(record))
    }

    proptest! {
        #[test]
        fn bounded_and_monotone(history in prop::collection::vec(outcome(), 0..300), next in outcome()) {
            let mut record = Record::default();
            for o in &history {
                record.apply(*o);
            }
            let before = score(&record);
            let dims = reputation(&record);
            for d in [dims.outcome, dims.relationship, dims.economic, dims.reliability] {
                prop_assert!(d <= 1000);
            }
            prop_assert!(dims.confidence <= 100);
            prop_assert!(before <= 1000);
            let mut after_record = record;
            after_record.apply(next);
            let after = score(&after_record);
            if next.is_good() {
                prop_assert!(after >= before, "{next:?} lowered {before} → {after}");
            } else if !next.is_neutral() {
                prop_assert!(after <= before, "{next:?} raised {before} → {after}");
            } else {
                prop_assert_eq!(after, before);
            }
        }

        #[test]
        fn the_tier_is_a_function_of_score_and_record(score in 0u32..=1000, completed in 0u32..500) {
            let t = tier(score, completed);
            prop_assert_eq!(t, tier(score, completed));
            if completed < VERIFIED_AFTER {
                prop_assert_eq!(t, TrustTier::Unverified);
            }
            // More score or more record never demotes.
            prop_assert!(tier(score.saturating_add(50).min(1000), completed) >= t);
            prop_assert!(tier(score, completed + 10) >= t);
        }
    }

    #[test]
    fn a_good_record_climbs_the_tiers() {
        let mut record = Record::default();
        let mut tiers = Vec::new();
        for _ in 0..250 {
            record.apply(Outcome::Completed {
                quality: 92,
                charged: Cents(2_500),
            });
            record.apply(Outcome::ThumbsUp);
            let t = tier(score(&record), record.completed);
            if tiers.last() != Some(&t) {
                tiers.push(t);
            }
        }
        assert_eq!(
            tiers,
            vec![
                TrustTier::Unverified,
                TrustTier::Provisional,
                TrustTier::Established,
                TrustTier::Trusted,
                TrustTier::Elite
            ]
        );
    }

    #[test]
    fn a_new_agent_scores_low_and_failures_and_refunds_cost() {
        assert!(score(&Record::default()) < 200);
        let mut good = Record::default();
        for _ in 0..10 {
            good.apply(Outcome::Completed {
                quality: 90,
                charged: Cents(2_500),
            });
        }
        assert!(score(&good) >= 300, "{}", score(&good));
        let mut refunded = good;
        refunded.apply(Outcome::Refunded {
            amount: Cents(2_500),
        });
        assert!(score(&refunded) < score(&good));
        let mut failing = good;
        for _ in 0..5 {
            failing.apply(Outcome::TimedOut);
        }
        assert!(score(&failing) < score(&refunded));
    }
}
