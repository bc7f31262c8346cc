//! Disputes: the buyer's recourse after completion, and the rules Courts judges by.
//!
//! ```text
//!   filed ──seller responds (before the deadline)──► under_review ──admin rules──► resolved
//!     │   └─response deadline passed (the sweep)──►      │
//!     └──────────────── buyer withdraws ─────────────────┴──────────────────────► withdrawn
//! ```
//!
//! A dispute freezes the agent's earning for its task until it is resolved or withdrawn;
//! the money side lives in [`crate::vault::ledger`] and [`crate::money::Cents::split_refund`].

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::FieldError;
use crate::ids::{AgentId, DisputeId, OwnerId, TaskId};
use crate::money::Cents;
use crate::validate::{Validate, check_length};

pub const MAX_DESCRIPTION_CHARS: usize = 5_000;
pub const MAX_RESPONSE_CHARS: usize = 5_000;
pub const MAX_NOTE_CHARS: usize = 2_000;
/// `DISPUTE_WINDOW_DAYS`: how long after completion a buyer may file.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// `DISPUTE_RESPONSE_HOURS`: how long the seller's side has to answer.
pub const DEFAULT_RESPONSE_TIME: Duration = Duration::from_secs(48 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DisputeReason {
    QualityBelowSpec,
    IncompleteDelivery,
    WrongOutput,
    DeadlineMissed,
    Misrepresentation,
    Unresponsive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DisputeStatus {
    Filed,
    UnderReview,
    Resolved,
    Withdrawn,
}

impl DisputeStatus {
    pub const ALL: [DisputeStatus; 4] = [
        DisputeStatus::Filed,
        DisputeStatus::UnderReview,
        DisputeStatus::Resolved,
        DisputeStatus::Withdrawn,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            DisputeStatus::Filed => "filed",
            DisputeStatus::UnderReview => "under_review",
            DisputeStatus::Resolved => "resolved",
            DisputeStatus::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// While open, the task's earning stays frozen.
    pub const fn is_open(self) -> bool {
        matches!(self, DisputeStatus::Filed | DisputeStatus::UnderReview)
    }
}

impl std::fmt::Display for DisputeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a ruling favours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = DisputeOutcome))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The whole charge back to the buyer (the agent's 85 % and the platform's 15 %);
    /// the task becomes `refunded`.
    Buyer,
    /// The earning is released to the agent.
    Seller,
    /// `refundAmount` cents back to the buyer, the fee reversed pro rata; the rest of
    /// the earning to the agent.
    Split,
}

/// An admin's ruling, as stored on the dispute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = DisputeResolution))]
#[serde(rename_all = "camelCase")]
pub struct Resolution {
    pub outcome: Outcome,
    /// Cents back to the buyer: the whole charge, nothing, or the split's amount.
    pub refund_amount: Cents,
    pub note: String,
    pub resolved_by: OwnerId,
    pub resolved_at: String,
}

/// A dispute as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Dispute {
    pub id: DisputeId,
    pub task_id: TaskId,
    pub status: DisputeStatus,
    pub reason: DisputeReason,
    pub description: String,
    /// The buyer's owner.
    pub filed_by: OwnerId,
    /// The buyer's agent, when an agent submitted the task.
    #[serde(default)]
    pub buyer_agent_id: Option<AgentId>,
    /// The seller: the agent the task was assigned to.
    pub agent_id: Option<AgentId>,
    /// The seller's owner.
    #[serde(default)]
    pub seller_owner_id: Option<OwnerId>,
    /// What the buyer was charged for the task: the most a ruling can refund.
    #[serde(default)]
    pub amount: Cents,
    pub created_at: String,
    /// The seller's side answers before this, or the dispute goes to review without it.
    #[serde(default)]
    pub response_deadline: Option<String>,
    #[serde(default)]
    pub response: Option<String>,
    #[serde(default)]
    pub responded_at: Option<String>,
    /// `ag_…` or `usr_…`: who on the seller's side answered.
    #[serde(default)]
    pub responded_by: Option<String>,
    #[serde(default)]
    pub resolution: Option<Resolution>,
    #[serde(default)]
    pub withdrawn_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

impl Dispute {
    /// The response deadline; a dispute stored without one has its default.
    pub fn deadline(&self) -> Option<OffsetDateTime> {
        match &self.response_deadline {
            Some(at) => crate::timestamps::parse(at),
            None => crate::timestamps::parse(&self.created_at).map(|at| at + DEFAULT_RESPONSE_TIME),
        }
    }

    pub fn deadline_passed(&self, now: OffsetDateTime) -> bool {
        self.deadline().is_some_and(|deadline| now >= deadline)
    }

    /// The dispute as a [`Case`] of the state machine.
    pub fn case(&self) -> Case {
        Case {
            status: self.status,
            responded: self.response.is_some(),
        }
    }
}

/// `POST /tasks/:id/dispute`
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FileDispute {
    pub reason: DisputeReason,
    /// What is wrong with the output (not blank).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 5_000, pattern = r"\S")
    )]
    pub description: String,
}

impl Validate for FileDispute {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_length(
            errors,
            "description",
            self.description.trim(),
            1,
            MAX_DESCRIPTION_CHARS,
        );
    }
}

/// `POST /courts/disputes/:id/respond`
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RespondToDispute {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 5000, pattern = r"\S")
    )]
    pub response: String,
}

impl Validate for RespondToDispute {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_length(
            errors,
            "response",
            self.response.trim(),
            1,
            MAX_RESPONSE_CHARS,
        );
    }
}

/// `POST /courts/disputes/:id/resolve`
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResolveDispute {
    pub outcome: Outcome,
    /// Cents back to the buyer: only (and required) for a `split`, less than the charge.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub refund_amount: Option<i64>,
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 2000, pattern = r"\S")
    )]
    pub note: String,
}

impl Validate for ResolveDispute {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_length(errors, "note", self.note.trim(), 1, MAX_NOTE_CHARS);
        match (self.outcome, self.refund_amount) {
            (Outcome::Split, None) => {
                errors.push(FieldError::new("refundAmount", "is required for a split"))
            }
            (Outcome::Buyer | Outcome::Seller, Some(_)) => errors.push(FieldError::new(
                "refundAmount",
                "is only for a split (buyer refunds everything, seller nothing)",
            )),
            _ => {}
        }
    }
}

impl ResolveDispute {
    /// The cents back to the buyer of a task charged `charge`: all, none, or the split's
    /// amount, which must leave both sides something (else rule `buyer` or `seller`).
    pub fn refund(&self, charge: Cents) -> Result<Cents, FieldError> {
        match (self.outcome, self.refund_amount) {
            (Outcome::Buyer, _) => Ok(charge),
            (Outcome::Seller, _) => Ok(Cents::ZERO),
            (Outcome::Split, Some(amount)) if amount >= 1 && amount < charge.get() => {
                Ok(Cents(amount))
            }
            (Outcome::Split, _) => Err(FieldError::new(
                "refundAmount",
                format!(
                    "must be between 1 and {} (the charge was {})",
                    charge.get() - 1,
                    charge.get()
                ),
            )),
        }
    }
}

/// The part of a dispute its state machine looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Case {
    pub status: DisputeStatus,
    /// Whether the seller's side has answered (at most once).
    pub responded: bool,
}

impl Case {
    pub const FILED: Case = Case {
        status: DisputeStatus::Filed,
        responded: false,
    };
}

/// Who acts on a dispute, relative to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Party {
    /// The buyer's owner, or the buyer's agent if an agent submitted the task.
    Buyer,
    /// The assigned agent, or its owner.
    Seller,
    /// An owner listed in `ADMIN_EMAILS`.
    Admin,
    /// The scheduled dispute sweep.
    Platform,
    Stranger,
}

/// What can happen to a dispute once filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Respond,
    /// The response deadline passed without an answer: on to review.
    Escalate,
    Withdraw,
    Resolve,
}

impl Action {
    pub const ALL: [Action; 4] = [
        Action::Respond,
        Action::Escalate,
        Action::Withdraw,
        Action::Resolve,
    ];

    const fn allowed(self, party: Party) -> bool {
        matches!(
            (self, party),
            (Action::Respond, Party::Seller)
                | (Action::Escalate, Party::Platform)
                | (Action::Withdraw, Party::Buyer)
                | (Action::Resolve, Party::Admin)
        )
    }
}

/// Why a dispute step was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DisputeError {
    /// This party may never take this step (→ 403 `COURT_CASE_FORBIDDEN`).
    #[error("{party:?} may not {action:?}")]
    Forbidden { party: Party, action: Action },
    /// A response after the deadline (→ 410 `RESPONSE_DEADLINE_PASSED`).
    #[error("the response deadline has passed")]
    DeadlinePassed,
    /// A response the dispute does not take: answered already, or closed (→ 409
    /// `DISPUTE_NOT_ACCEPTING_RESPONSES`).
    #[error("the dispute is not accepting responses")]
    NotAccepting,
    /// The step does not apply in this status (→ 400 `INVALID_STATE`); for the sweep,
    /// nothing to do.
    #[error("cannot {action:?} a dispute that is {from}")]
    InvalidState { from: DisputeStatus, action: Action },
}

/// The dispute after `party` takes `action` on `case`, `deadline_passed` saying whether
/// the seller's response deadline is behind us. Authorization is checked first, so a
/// stranger learns nothing about the dispute's state.
pub fn step(
    case: Case,
    action: Action,
    party: Party,
    deadline_passed: bool,
) -> Result<Case, DisputeError> {
    use DisputeStatus as S;
    if !action.allowed(party) {
        return Err(DisputeError::Forbidden { party, action });
    }
    let invalid = || DisputeError::InvalidState {
        from: case.status,
        action,
    };
    match (action, case.status) {
        (Action::Respond, S::Filed) if !case.responded => {
            if deadline_passed {
                Err(DisputeError::DeadlinePassed)
            } else {
                Ok(Case {
                    status: S::UnderReview,
                    responded: true,
                })
            }
        }
        // Sent to review by the sweep, unanswered: the deadline is why.
        (Action::Respond, S::UnderReview) if !case.responded && deadline_passed => {
            Err(DisputeError::DeadlinePassed)
        }
        (Action::Respond, _) => Err(DisputeError::NotAccepting),
        (Action::Escalate, S::Filed) if deadline_passed => Ok(Case {
            status: S::UnderReview,
            ..case
        }),
        (Action::Escalate, _) => Err(invalid()),
        (Action::Withdraw, S::Filed | S::UnderReview) => Ok(Case {
            status: S::Withdrawn,
            ..case
        }),
        (Action::Withdraw, _) => Err(invalid()),
        (Action::Resolve, S::UnderReview) => Ok(Case {
            status: S::Resolved,
            ..case
        }),
        (Action::Resolve, _) => Err(invalid()),
    }
}

/// Whether a buyer may still file at `now` on a task completed at `completed_at`:
/// strictly less than `window` after completion.
pub fn filing_window_open(
    completed_at: OffsetDateTime,
    now: OffsetDateTime,
    window: Duration,
) -> bool {
    now < completed_at + window
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const PARTIES: [Party; 5] = [
        Party::Buyer,
        Party::Seller,
        Party::Admin,
        Party::Platform,
        Party::Stranger,
    ];

    #[test]
    fn the_seller_answers_once_before_the_deadline() {
        let answered = step(Case::FILED, Action::Respond, Party::Seller, false).unwrap();
        assert_eq!(
            answered,
            Case {
                status: DisputeStatus::UnderReview,
                responded: true
            }
        );
        assert_eq!(
            step(answered, Action::Respond, Party::Seller, false),
            Err(DisputeError::NotAccepting)
        );
        assert_eq!(
            step(Case::FILED, Action::Respond, Party::Seller, true),
            Err(DisputeError::DeadlinePassed)
        );
        let escalated = step(Case::FILED, Action::Escalate, Party::Platform, true).unwrap();
        assert_eq!(
            step(escalated, Action::Respond, Party::Seller, true),
            Err(DisputeError::DeadlinePassed)
        );
        assert!(matches!(
            step(Case::FILED, Action::Escalate, Party::Platform, false),
            Err(DisputeError::InvalidState { .. })
        ));
    }

    #[test]
    fn only_the_right_party_takes_each_step() {
        for action in Action::ALL {
            for party in PARTIES {
                let got = step(Case::FILED, action, party, true);
                if action.allowed(party) {
                    assert!(
                        !matches!(got, Err(DisputeError::Forbidden { .. })),
                        "{action:?} {party:?}"
                    );
                } else {
                    assert_eq!(got, Err(DisputeError::Forbidden { party, action }));
                }
            }
        }
    }

    #[test]
    fn rulings_need_review_and_closed_disputes_stay_closed() {
        assert!(matches!(
            step(Case::FILED, Action::Resolve, Party::Admin, false),
            Err(DisputeError::InvalidState { .. })
        ));
        let review = step(Case::FILED, Action::Respond, Party::Seller, false).unwrap();
        let resolved = step(review, Action::Resolve, Party::Admin, false).unwrap();
        assert_eq!(resolved.status, DisputeStatus::Resolved);
        let withdrawn = step(review, Action::Withdraw, Party::Buyer, false).unwrap();
        for closed in [resolved, withdrawn] {
            for action in Action::ALL {
                for party in PARTIES {
                    assert!(step(closed, action, party, true).is_err());
                    assert!(step(closed, action, party, false).is_err());
                }
            }
        }
    }

    #[test]
    fn a_split_must_leave_both_sides_something() {
        let body = |outcome, refund_amount| ResolveDispute {
            outcome,
            refund_amount,
            note: "n".into(),
        };
        assert_eq!(
            body(Outcome::Buyer, None).refund(Cents(2500)),
            Ok(Cents(2500))
        );
        assert_eq!(
            body(Outcome::Seller, None).refund(Cents(2500)),
            Ok(Cents(0))
        );
        assert_eq!(
            body(Outcome::Split, Some(1000)).refund(Cents(2500)),
            Ok(Cents(1000))
        );
        for bad in [0, 2500, 2501, -5] {
            assert!(body(Outcome::Split, Some(bad)).refund(Cents(2500)).is_err());
        }
        let mut errors = Vec::new();
        body(Outcome::Split, None).validate(&mut errors);
        body(Outcome::Buyer, Some(5)).validate(&mut errors);
        ResolveDispute {
            outcome: Outcome::Seller,
            refund_amount: None,
            note: " ".into(),
        }
        .validate(&mut errors);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["refundAmount", "refundAmount", "note"]);
    }

    #[test]
    fn filing_closes_at_exactly_the_window() {
        let done = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        assert!(filing_window_open(
            done,
            done + DEFAULT_WINDOW - Duration::from_secs(1),
            DEFAULT_WINDOW
        ));
        assert!(!filing_window_open(
            done,
            done + DEFAULT_WINDOW,
            DEFAULT_WINDOW
        ));
    }

    #[test]
    fn statuses_use_their_wire_names() {
        for status in DisputeStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(DisputeStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(serde_json::to_string(&Outcome::Split).unwrap(), "\"split\"");
    }

    fn any_step() -> impl Strategy<Value = (Action, Party, bool)> {
        (
            prop::sample::select(Action::ALL.to_vec()),
            prop::sample::select(PARTIES.to_vec()),
            any::<bool>(),
        )
    }

    proptest! {
        /// Random walks from `filed`: never back to `filed`, a response at most once and
        /// only before the deadline, a ruling only from review, nothing after a close,
        /// and every refusal names the right reason.
        #[test]
        fn random_walks_respect_the_machine(steps in prop::collection::vec(any_step(), 0..48)) {
            let mut case = Case::FILED;
            let mut responses = 0;
            let mut reviewed = false;
            for (action, party, late) in steps {
                let before = case;
                match step(case, action, party, late) {
                    Ok(next) => {
                        prop_assert!(before.status.is_open(), "{:?} moved", before);
                        prop_assert_ne!(next.status, DisputeStatus::Filed);
                        if next.responded && !before.responded {
                            responses += 1;
                            prop_assert!(!late, "answered after the deadline");
                            prop_assert_eq!(party, Party::Seller);
                        }
                        if action == Action::Escalate {
                            prop_assert!(late && !next.responded);
                        }
                        if next.status == DisputeStatus::UnderReview {
                            reviewed = true;
                        }
                        if next.status == DisputeStatus::Resolved {
                            prop_assert!(reviewed && before.status == DisputeStatus::UnderReview);
                            prop_assert_eq!(party, Party::Admin);
                        }
                        if next.status == DisputeStatus::Withdrawn {
                            prop_assert_eq!(party, Party::Buyer);
                        }
                        case = next;
                    }
                    Err(DisputeError::Forbidden { .. }) => prop_assert!(!action.allowed(party)),
                    Err(DisputeError::DeadlinePassed) => {
                        prop_assert!(late && action == Action::Respond && !before.responded);
                    }
                    Err(DisputeError::NotAccepting) => prop_assert_eq!(action, Action::Respond),
                    Err(DisputeError::InvalidState { from, .. }) => prop_assert_eq!(from, before.status),
                }
                prop_assert!(responses <= 1);
            }
        }
    }
}
