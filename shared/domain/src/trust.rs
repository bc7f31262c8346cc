//! The Trust API, pure: the keys third parties read agents' trust with, and the trust
//! report they get, with its recommendation.
//!
//! The recommendation rule (documented in `docs/reputation.md`), first match wins:
//!
//! 1. `avoid` if the agent is suspended or deactivated (it takes no work), or it lost
//!    [`AVOID_DISPUTES_LOST`] or more disputes as the seller (each a ruling, evidence on
//!    its own), or, once its record is long enough to judge (confidence ≥
//!    [`JUDGED_CONFIDENCE`], i.e. 10 completed tasks), its score is below
//!    [`AVOID_BELOW_SCORE`] or more than [`AVOID_REFUND_PERCENT`] % of its completed
//!    tasks were refunded. Below that confidence a low score only says the agent is new
//!    (the score is scaled down by the confidence), so it is not held against it.
//! 2. `caution` if it is not verified or only `provisional`, its confidence is below
//!    [`CAUTION_BELOW_CONFIDENCE`] (25 completed tasks), or a dispute against it is open.
//! 3. `proceed` otherwise.
//!
//! The report names the reasons for the level it gives (none for `proceed`).

use serde::{Deserialize, Serialize};

use crate::FieldError;
use crate::identity::{Agent, AgentStatus, TrustTier, VerificationStatus};
use crate::ids::{AgentId, TrustKeyId};
use crate::validate::{Validate, check_length};

pub const MAX_KEY_NAME_CHARS: usize = 100;
/// Keys an owner may hold at once (revoked ones do not count).
pub const MAX_ACTIVE_KEYS: u32 = 25;
/// Requests per key per UTC day unless `TRUST_DAILY_LIMIT` says otherwise.
pub const DEFAULT_DAILY_LIMIT: u32 = 1_000;

/// Confidence (0–100) from which score and refund rate are held against an agent.
pub const JUDGED_CONFIDENCE: u32 = 20;
/// A judged agent scoring below this is to be avoided.
pub const AVOID_BELOW_SCORE: u32 = 200;
/// A judged agent with more than this share (percent) of completed tasks refunded is to
/// be avoided.
pub const AVOID_REFUND_PERCENT: u32 = 30;
/// This many disputes lost as the seller and the agent is to be avoided.
pub const AVOID_DISPUTES_LOST: u32 = 3;
/// Below this confidence (0–100) the record is too short for `proceed`.
pub const CAUTION_BELOW_CONFIDENCE: u32 = 50;

/// A Trust API key as its owner sees it: never the secret nor its hash.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustKey {
    pub id: TrustKeyId,
    pub name: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// When it last read a report (written at most once a minute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
}

impl TrustKey {
    pub fn new(name: &str, now: &str) -> Self {
        Self {
            id: TrustKeyId::new(),
            name: name.trim().to_owned(),
            created_at: now.to_owned(),
            revoked_at: None,
            last_used_at: None,
        }
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

/// `POST /trust/keys`
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTrustKey {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 100, example = "Acme hiring desk")
    )]
    pub name: String,
}

impl Validate for CreateTrustKey {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_length(errors, "name", self.name.trim(), 1, MAX_KEY_NAME_CHARS);
    }
}

/// What a third party should do about hiring the agent.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recommendation {
    Proceed,
    Caution,
    Avoid,
}

/// Why a recommendation is `avoid` or `caution`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Suspended or deactivated.
    Inactive,
    /// Lost [`AVOID_DISPUTES_LOST`] or more disputes as the seller.
    DisputesLost,
    /// Judged, and scoring below [`AVOID_BELOW_SCORE`].
    LowScore,
    /// Judged, and more than [`AVOID_REFUND_PERCENT`] % of its completed tasks refunded.
    HighRefundRate,
    /// Fewer than 3 completed tasks.
    Unverified,
    /// Verified, not yet `established`.
    Provisional,
    /// Confidence below [`CAUTION_BELOW_CONFIDENCE`].
    LowConfidence,
    /// A dispute against it awaits a ruling.
    OpenDispute,
}

/// A recommendation and its reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub recommendation: Recommendation,
    pub reasons: Vec<Reason>,
}

/// The recommendation for `agent` (see the module's documentation for the rule).
pub fn recommend(agent: &Agent) -> Assessment {
    let record = &agent.record;
    let judged = agent.reputation.confidence >= JUDGED_CONFIDENCE;
    // refunded / completed > 30 %, in integers.
    let refunds_high = u64::from(record.refunded) * 100
        > u64::from(AVOID_REFUND_PERCENT) * u64::from(record.completed);

    let mut avoid = Vec::new();
    if agent.status != AgentStatus::Active {
        avoid.push(Reason::Inactive);
    }
    if record.disputes_lost >= AVOID_DISPUTES_LOST {
        avoid.push(Reason::DisputesLost);
    }
    if judged && agent.overall_score < AVOID_BELOW_SCORE {
        avoid.push(Reason::LowScore);
    }
    if judged && refunds_high {
        avoid.push(Reason::HighRefundRate);
    }
    if !avoid.is_empty() {
        return Assessment {
            recommendation: Recommendation::Avoid,
            reasons: avoid,
        };
    }

    let mut caution = Vec::new();
    if agent.verification_status == VerificationStatus::Unverified
        || agent.trust_tier == TrustTier::Unverified
    {
        caution.push(Reason::Unverified);
    } else if agent.trust_tier == TrustTier::Provisional {
        caution.push(Reason::Provisional);
    }
    if agent.reputation.confidence < CAUTION_BELOW_CONFIDENCE {
        caution.push(Reason::LowConfidence);
    }
    if record.disputes_open() > 0 {
        caution.push(Reason::OpenDispute);
    }
    let recommendation = if caution.is_empty() {
        Recommendation::Proceed
    } else {
        Recommendation::Caution
    };
    Assessment {
        recommendation,
        reasons: caution,
    }
}

/// `part / whole` as a fraction rounded to 4 decimals; 0 when `whole` is 0.
pub fn rate(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (f64::from(part) / f64::from(whole) * 10_000.0).round() / 10_000.0
}

/// The four dimensions, 0–1000 each.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dimensions {
    pub outcome: u32,
    pub relationship: u32,
    pub economic: u32,
    pub reliability: u32,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustStats {
    pub completed: u32,
    /// Failures it is answerable for: below the quality gate, reported, timed out.
    pub failed: u32,
    /// Refunded / completed.
    pub refund_rate: f64,
    /// Disputes filed against it / completed.
    pub dispute_rate: f64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DisputeSummary {
    pub filed: u32,
    /// Filed and not yet ruled on or withdrawn.
    pub open: u32,
    pub lost_as_seller: u32,
}

/// `GET /trust/agents/{agentId}`
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustReport {
    pub agent_id: AgentId,
    pub display_name: String,
    pub status: AgentStatus,
    pub trust_tier: TrustTier,
    pub overall_score: u32,
    pub confidence: u32,
    pub verification_status: VerificationStatus,
    pub dimensions: Dimensions,
    pub stats: TrustStats,
    pub dispute_summary: DisputeSummary,
    pub recommendation: Recommendation,
    /// Why the recommendation is what it is (empty for `proceed`).
    pub reasons: Vec<Reason>,
    pub as_of: String,
}

impl TrustReport {
    pub fn of(agent: &Agent, as_of: &str) -> Self {
        let record = &agent.record;
        let reputation = &agent.reputation;
        let Assessment {
            recommendation,
            reasons,
        } = recommend(agent);
        Self {
            agent_id: agent.id,
            display_name: agent.display_name.clone(),
            status: agent.status,
            trust_tier: agent.trust_tier,
            overall_score: agent.overall_score,
            confidence: reputation.confidence,
            verification_status: agent.verification_status,
            dimensions: Dimensions {
                outcome: reputation.outcome,
                relationship: reputation.relationship,
                economic: reputation.economic,
                reliability: reputation.reliability,
            },
            stats: TrustStats {
                completed: record.completed,
                failed: record.failed(),
                refund_rate: rate(record.refunded, record.completed),
                dispute_rate: rate(record.disputes_filed, record.completed),
            },
            dispute_summary: DisputeSummary {
                filed: record.disputes_filed,
                open: record.disputes_open(),
                lost_as_seller: record.disputes_lost,
            },
            recommendation,
            reasons,
            as_of: as_of.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::identity::reputation::Outcome;
    use crate::identity::{Framework, RegisterAgent};
    use crate::ids::OwnerId;
    use crate::money::Cents;

    fn agent() -> Agent {
        Agent::register(
            OwnerId::new(),
            RegisterAgent {
                display_name: "Reviewer".into(),
                framework: Framework::Custom,
                description: "Reviews code".into(),
                model: None,
                capabilities: Vec::new(),
                pricing: Default::default(),
                max_concurrent_tasks: None,
            },
            "t0",
        )
    }

    fn completed(agent: &mut Agent, n: u32, quality: u8) {
        for _ in 0..n {
            agent.record_outcome(
                Outcome::Completed {
                    quality,
                    charged: Cents(2_500),
                },
                None,
                "t1",
            );
        }
    }

    fn apply(agent: &mut Agent, outcome: Outcome, n: u32) {
        for _ in 0..n {
            agent.record_outcome(outcome, None, "t1");
        }
    }

    fn assess(agent: &Agent) -> (Recommendation, Vec<Reason>) {
        let Assessment {
            recommendation,
            reasons,
        } = recommend(agent);
        (recommendation, reasons)
    }

    #[test]
    fn a_new_agent_is_caution_unverified_and_unproven() {
        assert_eq!(
            assess(&agent()),
            (
                Recommendation::Caution,
                vec![Reason::Unverified, Reason::LowConfidence]
            )
        );
    }

    #[test]
    fn a_long_good_record_is_proceed() {
        let mut a = agent();
        completed(&mut a, 30, 92);
        apply(&mut a, Outcome::ThumbsUp, 10);
        assert!(a.trust_tier >= TrustTier::Established, "{:?}", a.trust_tier);
        assert_eq!(assess(&a), (Recommendation::Proceed, vec![]));
    }

    #[test]
    fn an_inactive_agent_is_avoid_whatever_its_record() {
        let mut a = agent();
        completed(&mut a, 30, 92);
        for status in [AgentStatus::Suspended, AgentStatus::Deactivated] {
            a.status = status;
            assert_eq!(
                assess(&a),
                (Recommendation::Avoid, vec![Reason::Inactive]),
                "{status}"
            );
        }
    }

    #[test]
    fn an_open_dispute_turns_proceed_into_caution_until_it_is_ruled_on() {
        let mut a = agent();
        completed(&mut a, 30, 92);
        apply(&mut a, Outcome::DisputeFiled, 1);
        assert_eq!(
            assess(&a),
            (Recommendation::Caution, vec![Reason::OpenDispute])
        );
        apply(&mut a, Outcome::DisputeWon, 1);
        assert_eq!(assess(&a).0, Recommendation::Proceed);
    }

    #[test]
    fn three_lost_disputes_are_avoid_even_on_a_short_record() {
        let mut a = agent();
        completed(&mut a, 4, 90);
        apply(&mut a, Outcome::DisputeFiled, 3);
        apply(&mut a, Outcome::DisputeLost, 2);
        assert_eq!(assess(&a).0, Recommendation::Caution);
        apply(&mut a, Outcome::DisputeLost, 1);
        assert_eq!(
            assess(&a),
            (Recommendation::Avoid, vec![Reason::DisputesLost])
        );
    }

    #[test]
    fn refunds_above_30_percent_are_avoid_once_judged() {
        let mut a = agent();
        completed(&mut a, 10, 90);
        apply(
            &mut a,
            Outcome::Refunded {
                amount: Cents(2_500),
            },
            3,
        );
        // Exactly 30 % is not above it.
        assert_eq!(a.reputation.confidence, JUDGED_CONFIDENCE);
        assert_ne!(assess(&a).0, Recommendation::Avoid);
        apply(
            &mut a,
            Outcome::Refunded {
                amount: Cents(2_500),
            },
            1,
        );
        assert_eq!(
            assess(&a),
            (Recommendation::Avoid, vec![Reason::HighRefundRate])
        );

        // The same share on a record too short to judge is only caution.
        let mut short = agent();
        completed(&mut short, 4, 90);
        apply(
            &mut short,
            Outcome::Refunded {
                amount: Cents(2_500),
            },
            2,
        );
        assert_eq!(assess(&short).0, Recommendation::Caution);
    }

    #[test]
    fn a_low_score_is_held_against_a_judged_agent_only() {
        let mut a = agent();
        a.verification_status = VerificationStatus::Verified;
        a.trust_tier = TrustTier::Provisional;
        a.overall_score = AVOID_BELOW_SCORE - 1;
        a.reputation.confidence = JUDGED_CONFIDENCE - 1;
        assert_eq!(
            assess(&a),
            (
                Recommendation::Caution,
                vec![Reason::Provisional, Reason::LowConfidence]
            )
        );
        a.reputation.confidence = JUDGED_CONFIDENCE;
        assert_eq!(assess(&a), (Recommendation::Avoid, vec![Reason::LowScore]));
        a.overall_score = AVOID_BELOW_SCORE;
        assert_eq!(assess(&a).0, Recommendation::Caution);
    }

    #[test]
    fn a_failing_record_scores_low_and_is_avoid() {
        let mut a = agent();
        completed(&mut a, 10, 40);
        apply(&mut a, Outcome::TimedOut, 20);
        apply(&mut a, Outcome::Abandoned, 20);
        apply(&mut a, Outcome::ThumbsDown, 10);
        assert!(a.overall_score < AVOID_BELOW_SCORE, "{}", a.overall_score);
        assert!(assess(&a).1.contains(&Reason::LowScore));
    }

    #[test]
    fn the_report_carries_the_record_in_numbers() {
        let mut a = agent();
        completed(&mut a, 8, 90);
        apply(&mut a, Outcome::QualityFailed, 1);
        apply(&mut a, Outcome::AgentFailed, 1);
        apply(&mut a, Outcome::TimedOut, 1);
        apply(&mut a, Outcome::Abandoned, 1);
        apply(
            &mut a,
            Outcome::Refunded {
                amount: Cents(2_500),
            },
            2,
        );
        apply(&mut a, Outcome::DisputeFiled, 3);
        apply(&mut a, Outcome::DisputeLost, 1);
        let report = TrustReport::of(&a, "2026-01-01T00:00:00Z");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["agentId"], a.id.to_string());
        assert_eq!(json["displayName"], "Reviewer");
        assert_eq!(json["confidence"], 16);
        assert_eq!(json["verificationStatus"], "verified");
        assert_eq!(json["overallScore"], a.overall_score);
        assert_eq!(
            json["stats"],
            serde_json::json!({"completed": 8, "failed": 3, "refundRate": 0.25, "disputeRate": 0.375})
        );
        assert_eq!(
            json["disputeSummary"],
            serde_json::json!({"filed": 3, "open": 2, "lostAsSeller": 1})
        );
        assert_eq!(json["dimensions"]["outcome"], a.reputation.outcome);
        assert_eq!(json["dimensions"]["reliability"], a.reputation.reliability);
        assert_eq!(json["recommendation"], "caution");
        assert_eq!(
            json["reasons"],
            serde_json::json!(["provisional", "low_confidence", "open_dispute"])
        );
        assert_eq!(json["asOf"], "2026-01-01T00:00:00Z");
    }

    #[test]
    fn rates_round_to_four_decimals_and_are_zero_without_work() {
        assert_eq!(rate(0, 0), 0.0);
        assert_eq!(rate(5, 0), 0.0);
        assert_eq!(rate(1, 3), 0.3333);
        assert_eq!(rate(2, 3), 0.6667);
        assert_eq!(rate(3, 3), 1.0);
    }

    #[test]
    fn key_names_are_required_and_bounded() {
        let fields = |name: &str| {
            let mut errors = Vec::new();
            CreateTrustKey { name: name.into() }.validate(&mut errors);
            errors.into_iter().map(|e| e.field).collect::<Vec<_>>()
        };
        assert!(fields("ci").is_empty());
        assert_eq!(fields("  "), ["name"]);
        assert_eq!(fields(&"x".repeat(MAX_KEY_NAME_CHARS + 1)), ["name"]);
        let key = TrustKey::new("  partner  ", "t0");
        assert_eq!(key.name, "partner");
        let json = serde_json::to_value(&key).unwrap();
        assert!(json.get("revokedAt").is_none() && json.get("lastUsedAt").is_none());
    }

    fn outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            4 => (0u8..=100).prop_map(|quality| Outcome::Completed { quality, charged: Cents(1_000) }),
            1 => Just(Outcome::QualityFailed),
            1 => Just(Outcome::AgentFailed),
            1 => Just(Outcome::TimedOut),
            1 => Just(Outcome::Abandoned),
            1 => Just(Outcome::ThumbsUp),
            1 => Just(Outcome::ThumbsDown),
            1 => Just(Outcome::Refunded { amount: Cents(1_000) }),
            1 => Just(Outcome::DisputeFiled),
            1 => Just(Outcome::DisputeWithdrawn),
            1 => Just(Outcome::DisputeWon),
            1 => Just(Outcome::DisputeLost),
        ]
    }

    fn status() -> impl Strategy<Value = AgentStatus> {
        prop_oneof![
            8 => Just(AgentStatus::Active),
            1 => Just(AgentStatus::Suspended),
            1 => Just(AgentStatus::Deactivated),
        ]
    }

    proptest! {
        /// Whatever the record: `proceed` only for an active, verified, established agent
        /// with a long record and no open dispute; `avoid` always for an inactive one;
        /// reasons exactly when not `proceed`.
        #[test]
        fn the_rule_holds_for_any_record(history in prop::collection::vec(outcome(), 0..120), status in status()) {
            let mut a = agent();
            for o in &history {
                a.record_outcome(*o, None, "t1");
            }
            a.status = status;
            let (recommendation, reasons) = assess(&a);
            prop_assert_eq!(reasons.is_empty(), recommendation == Recommendation::Proceed);
            if status != AgentStatus::Active {
                prop_assert_eq!(recommendation, Recommendation::Avoid);
            }
            if a.record.disputes_lost >= AVOID_DISPUTES_LOST {
                prop_assert_eq!(recommendation, Recommendation::Avoid);
            }
            if recommendation == Recommendation::Proceed {
                prop_assert_eq!(a.verification_status, VerificationStatus::Verified);
                prop_assert!(a.trust_tier >= TrustTier::Established);
                prop_assert!(a.reputation.confidence >= CAUTION_BELOW_CONFIDENCE);
                prop_assert!(a.overall_score >= AVOID_BELOW_SCORE);
                prop_assert_eq!(a.record.disputes_open(), 0);
                prop_assert!(u64::from(a.record.refunded) * 100 <= u64::from(AVOID_REFUND_PERCENT) * u64::from(a.record.completed));
            }
        }
    }
}
