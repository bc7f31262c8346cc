//! The Embassy's rules: an owner's policy for each of its agents (budgets per task, per
//! UTC day and per rolling 7 days, allowed task types, an approval threshold), the
//! approvals a policy asks for, the audit trail and the owner's notifications.
//!
//! Budgets count what an agent's submits hold plus what they were charged: a submit
//! adds its `maxBudget` to the counter of its UTC day, a voided hold gives it all back
//! and a posted one gives back what was not charged. "Today" is the UTC day; the week is
//! today and the six UTC days before it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Date, Duration as TimeDuration, OffsetDateTime};

use crate::identity::Category;
use crate::ids::{AgentId, OwnerId, TaskId};
use crate::money::Cents;
use crate::task::model::MAX_BUDGET;
use crate::validate::{Validate, check_length, check_range};
use crate::{ApiError, ErrorCode, FieldError};

/// Days in the rolling budget window, today included.
pub const WEEK_DAYS: i64 = 7;

/// The largest budget a policy may name: a year of the largest tasks, every minute.
pub const MAX_POLICY_CENTS: i64 = MAX_BUDGET * 60 * 24 * 365;

/// What an owner allows one of its agents. `None` is no limit.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// 0 until the first `PUT`; each `PUT` must name the version it read.
    pub version: u64,
    pub daily_budget: Option<Cents>,
    pub weekly_budget: Option<Cents>,
    pub max_per_task: Option<Cents>,
    /// A submit over this waits for the owner's approval.
    pub approval_threshold: Option<Cents>,
    pub allowed_task_types: Option<Vec<Category>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// `PUT /embassy/agents/{agentId}/policy`: the whole policy, with the version read.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutPolicy {
    pub version: u64,
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 525_600_000_000_i64)
    )]
    pub daily_budget: Option<i64>,
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 525_600_000_000_i64)
    )]
    pub weekly_budget: Option<i64>,
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 525_600_000_000_i64)
    )]
    pub max_per_task: Option<i64>,
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 525_600_000_000_i64)
    )]
    pub approval_threshold: Option<i64>,
    #[serde(default)]
    pub allowed_task_types: Option<Vec<Category>>,
}

impl Validate for PutPolicy {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        let amounts = [
            ("dailyBudget", self.daily_budget),
            ("weeklyBudget", self.weekly_budget),
            ("maxPerTask", self.max_per_task),
            ("approvalThreshold", self.approval_threshold),
        ];
        for (field, value) in amounts {
            if let Some(value) = value {
                check_range(errors, field, value, 0, MAX_POLICY_CENTS);
            }
        }
        if let Some(types) = &self.allowed_task_types {
            let mut seen = std::collections::BTreeSet::new();
            if types.iter().any(|t| !seen.insert(*t)) {
                errors.push(FieldError::new(
                    "allowedTaskTypes",
                    "must not repeat a task type",
                ));
            }
        }
    }
}

impl PutPolicy {
    /// The policy this asks for, one version on from `current`.
    pub fn apply(self, current: &Policy, now: &str) -> Policy {
        Policy {
            version: current.version + 1,
            daily_budget: self.daily_budget.map(Cents),
            weekly_budget: self.weekly_budget.map(Cents),
            max_per_task: self.max_per_task.map(Cents),
            approval_threshold: self.approval_threshold.map(Cents),
            allowed_task_types: self.allowed_task_types,
            updated_at: Some(now.to_owned()),
        }
    }
}

/// Which limit a refusal names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    Task,
    Day,
    Week,
}

impl Window {
    pub const fn as_str(self) -> &'static str {
        match self {
            Window::Task => "task",
            Window::Day => "day",
            Window::Week => "week",
        }
    }
}

/// What an agent's submits already hold or were charged.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Committed {
    pub today: Cents,
    /// Today and the six days before (today included).
    pub last7_days: Cents,
}

/// What the policy says about one submit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead; `approval`: it waits for the owner first.
    Allowed {
        approval: bool,
    },
    TypeNotAllowed,
    OverLimit {
        limit: Cents,
        committed: Cents,
        window: Window,
    },
}

impl Policy {
    /// The verdict on a submit of `amount` for `task_type`, given what is committed.
    pub fn judge(&self, task_type: Category, amount: Cents, committed: Committed) -> Verdict {
        if let Some(allowed) = &self.allowed_task_types {
            if !allowed.contains(&task_type) {
                return Verdict::TypeNotAllowed;
            }
        }
        let limits = [
            (self.max_per_task, Cents::ZERO, Window::Task),
            (self.daily_budget, committed.today, Window::Day),
            (self.weekly_budget, committed.last7_days, Window::Week),
        ];
        for (limit, committed, window) in limits {
            if let Some(limit) = limit {
                if committed.0.saturating_add(amount.0) > limit.0 {
                    return Verdict::OverLimit {
                        limit,
                        committed,
                        window,
                    };
                }
            }
        }
        Verdict::Allowed {
            approval: self.approval_threshold.is_some_and(|t| amount > t),
        }
    }

    /// The most today's counter may hold *before* adding `amount` so that neither the
    /// day's nor the week's budget is passed (`past` = the six days before today).
    /// `None`: no budget bounds today's counter.
    pub fn today_ceiling(&self, amount: Cents, past: Cents) -> Option<i64> {
        let day = self.daily_budget.map(|b| b.0 - amount.0);
        let week = self.weekly_budget.map(|b| b.0 - amount.0 - past.0);
        match (day, week) {
            (Some(d), Some(w)) => Some(d.min(w)),
            (d, w) => d.or(w),
        }
    }
}

impl Verdict {
    /// The refusal the API answers with, if it is one.
    pub fn refusal(self) -> Option<ApiError> {
        match self {
            Verdict::Allowed { .. } => None,
            Verdict::TypeNotAllowed => Some(ApiError::with_message(
                ErrorCode::AgentNotAuthorized,
                "Your owner's policy does not allow this task type",
            )),
            Verdict::OverLimit {
                limit,
                committed,
                window,
            } => Some(
                ApiError::with_message(
                    ErrorCode::BudgetLimitExceeded,
                    format!(
                        "This task would pass your owner's {} limit",
                        match window {
                            Window::Task => "per-task",
                            Window::Day => "daily",
                            Window::Week => "7-day",
                        }
                    ),
                )
                .details(serde_json::json!({
                    "limit": limit, "committed": committed, "window": window,
                })),
            ),
        }
    }
}

/// The UTC day a moment falls on, as the counters name it (`2026-11-23`).
pub fn budget_day(at: OffsetDateTime) -> String {
    let date = at.to_offset(time::UtcOffset::UTC).date();
    day_name(date)
}

fn day_name(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The six UTC days before `at`'s, oldest first.
pub fn past_six_days(at: OffsetDateTime) -> Vec<String> {
    let today = at.to_offset(time::UtcOffset::UTC).date();
    (1..WEEK_DAYS)
        .rev()
        .map(|back| day_name(today - TimeDuration::days(back)))
        .collect()
}

/// Where an approval is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Denied,
    Expired,
    /// The buyer cancelled the task before its owner decided.
    Cancelled,
}

impl ApprovalStatus {
    pub const ALL: [ApprovalStatus; 5] = [
        ApprovalStatus::Pending,
        ApprovalStatus::Approved,
        ApprovalStatus::Denied,
        ApprovalStatus::Expired,
        ApprovalStatus::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Expired => "expired",
            ApprovalStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }
}

/// A submit over its agent's approval threshold, waiting for the owner.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// The task's id with `apr_` in place of `task_`: one approval per task, found
    /// from either side without an index.
    pub id: String,
    pub task_id: TaskId,
    pub agent_id: AgentId,
    pub owner_id: OwnerId,
    pub task_type: Category,
    pub amount: Cents,
    pub status: ApprovalStatus,
    pub created_at: String,
    pub expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

pub const APPROVAL_PREFIX: &str = "apr_";

/// The approval id of a task.
pub fn approval_id(task: &TaskId) -> String {
    let ulid = task.to_string();
    let body = ulid.strip_prefix(TaskId::PREFIX).unwrap_or(&ulid);
    format!("{APPROVAL_PREFIX}{body}")
}

/// The task an approval id names, if it is one.
pub fn approval_task(id: &str) -> Option<TaskId> {
    let body = id.strip_prefix(APPROVAL_PREFIX)?;
    format!("{}{body}", TaskId::PREFIX).parse().ok()
}

/// Why a decision on an approval is refused.
pub fn decision_refused(approval: &Approval, now: OffsetDateTime) -> Option<ApiError> {
    let expired = crate::timestamps::parse(&approval.expires_at).is_some_and(|at| now >= at);
    match approval.status {
        ApprovalStatus::Expired => Some(expired_error()),
        ApprovalStatus::Pending if expired => Some(expired_error()),
        ApprovalStatus::Pending => None,
        ApprovalStatus::Approved | ApprovalStatus::Denied | ApprovalStatus::Cancelled => Some(
            ApiError::with_message(
                ErrorCode::ApprovalAlreadyDecided,
                format!("This approval was already {}", approval.status.as_str()),
            )
            .details(serde_json::json!({ "status": approval.status })),
        ),
    }
}

pub fn expired_error() -> ApiError {
    ApiError::with_message(
        ErrorCode::ApprovalExpired,
        "This approval expired; the task was cancelled and its credits released",
    )
}

/// `POST /embassy/approvals/{id}/deny`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deny {
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 1000))]
    pub reason: Option<String>,
}

pub const MAX_REASON_CHARS: usize = 1_000;

impl Validate for Deny {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        if let Some(reason) = &self.reason {
            check_length(errors, "reason", reason, 0, MAX_REASON_CHARS);
        }
    }
}

/// Who did something the audit trail records.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditActor {
    /// `owner`, `agent` or `platform`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

impl AuditActor {
    pub fn owner(id: &OwnerId) -> Self {
        Self {
            kind: "owner".into(),
            id: id.to_string(),
        }
    }

    pub fn agent(id: &AgentId) -> Self {
        Self {
            kind: "agent".into(),
            id: id.to_string(),
        }
    }

    pub fn platform() -> Self {
        Self {
            kind: "platform".into(),
            id: "platform".into(),
        }
    }
}

/// What an action was done to.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditTarget {
    /// `agent`, `task`, `policy`, `approval`, `pool`, `wallet`, `dispute`, `trust_key`,
    /// `webhook`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

impl AuditTarget {
    pub fn new(kind: &str, id: impl std::fmt::Display) -> Self {
        Self {
            kind: kind.to_owned(),
            id: id.to_string(),
        }
    }
}

/// One state-changing action of an owner or one of its agents.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// `aud_<ulid>`: the ULID orders entries by time.
    pub id: String,
    pub at: String,
    pub owner_id: OwnerId,
    /// The agent it concerns (its actor, or the agent acted on), for `?agentId=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    pub actor: AuditActor,
    /// `agent.registered`, `task.submitted`, `policy.updated`, … (docs/embassy.md).
    pub action: String,
    pub target: AuditTarget,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default)]
    pub details: Value,
}

pub const AUDIT_PREFIX: &str = "aud_";
pub const NOTIFICATION_PREFIX: &str = "ntf_";

/// Something an owner should know.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NotificationType {
    #[serde(rename = "approval.requested")]
    ApprovalRequested,
    #[serde(rename = "task.completed")]
    TaskCompleted,
    #[serde(rename = "task.failed")]
    TaskFailed,
    #[serde(rename = "dispute.filed")]
    DisputeFiled,
    #[serde(rename = "dispute.resolved")]
    DisputeResolved,
    #[serde(rename = "agent.suspended")]
    AgentSuspended,
    #[serde(rename = "budget.reached")]
    BudgetReached,
}

/// One entry of an owner's feed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// `ntf_<ulid>`: the ULID orders the feed by time.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: NotificationType,
    pub title: String,
    pub body: String,
    pub created_at: String,
    #[serde(default)]
    pub data: Value,
}

/// Largest page of audit entries or notifications.
pub const MAX_FEED_LIMIT: usize = 100;
pub const DEFAULT_FEED_LIMIT: usize = 50;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn policy(day: Option<i64>, week: Option<i64>, per_task: Option<i64>) -> Policy {
        Policy {
            daily_budget: day.map(Cents),
            weekly_budget: week.map(Cents),
            max_per_task: per_task.map(Cents),
            ..Policy::default()
        }
    }

    fn committed(today: i64, week: i64) -> Committed {
        Committed {
            today: Cents(today),
            last7_days: Cents(week),
        }
    }

    #[test]
    fn no_policy_allows_everything_without_approval() {
        let verdict =
            Policy::default().judge(Category::CodeReview, Cents(MAX_BUDGET), committed(0, 0));
        assert_eq!(verdict, Verdict::Allowed { approval: false });
        assert_eq!(Policy::default().today_ceiling(Cents(1), Cents(0)), None);
    }

    #[test]
    fn each_limit_names_itself_with_what_is_committed() {
        let p = policy(Some(5_000), Some(20_000), Some(3_000));
        assert_eq!(
            p.judge(Category::CodeReview, Cents(3_001), committed(0, 0)),
            Verdict::OverLimit {
                limit: Cents(3_000),
                committed: Cents(0),
                window: Window::Task
            }
        );
        assert_eq!(
            p.judge(Category::CodeReview, Cents(1_000), committed(4_500, 4_500)),
            Verdict::OverLimit {
                limit: Cents(5_000),
                committed: Cents(4_500),
                window: Window::Day
            }
        );
        assert_eq!(
            p.judge(Category::CodeReview, Cents(1_000), committed(0, 19_500)),
            Verdict::OverLimit {
                limit: Cents(20_000),
                committed: Cents(19_500),
                window: Window::Week
            }
        );
        // Exactly at the limit is allowed.
        assert_eq!(
            p.judge(Category::CodeReview, Cents(1_000), committed(4_000, 19_000)),
            Verdict::Allowed { approval: false }
        );
        let refusal = p
            .judge(Category::CodeReview, Cents(1_000), committed(4_500, 4_500))
            .refusal()
            .unwrap();
        assert_eq!(refusal.code, ErrorCode::BudgetLimitExceeded);
        assert_eq!(refusal.code.http_status(), 400);
        assert_eq!(
            refusal.details.unwrap(),
            serde_json::json!({"limit": 5000, "committed": 4500, "window": "day"})
        );
    }

    #[test]
    fn task_types_and_the_approval_threshold() {
        let p = Policy {
            allowed_task_types: Some(vec![Category::CodeReview]),
            approval_threshold: Some(Cents(2_000)),
            ..Policy::default()
        };
        let verdict = p.judge(Category::Testing, Cents(1), committed(0, 0));
        assert_eq!(verdict, Verdict::TypeNotAllowed);
        assert_eq!(
            verdict.refusal().unwrap().code,
            ErrorCode::AgentNotAuthorized
        );
        assert_eq!(
            p.judge(Category::CodeReview, Cents(2_000), committed(0, 0)),
            Verdict::Allowed { approval: false }
        );
        assert_eq!(
            p.judge(Category::CodeReview, Cents(2_001), committed(0, 0)),
            Verdict::Allowed { approval: true }
        );
    }

    #[test]
    fn days_are_utc_and_the_week_is_today_and_six_before() {
        let at = OffsetDateTime::from_unix_timestamp(1_767_225_599).unwrap(); // 2025-12-31T23:59:59Z
        assert_eq!(budget_day(at), "2025-12-31");
        assert_eq!(budget_day(at + TimeDuration::seconds(1)), "2026-01-01");
        assert_eq!(
            past_six_days(at + TimeDuration::seconds(1)),
            vec![
                "2025-12-26",
                "2025-12-27",
                "2025-12-28",
                "2025-12-29",
                "2025-12-30",
                "2025-12-31"
            ]
        );
    }

    #[test]
    fn approval_ids_name_their_task() {
        let task = TaskId::new();
        let id = approval_id(&task);
        assert!(id.starts_with("apr_"));
        assert_eq!(approval_task(&id), Some(task));
        assert_eq!(approval_task("task_01"), None);
        assert_eq!(approval_task("apr_nonsense"), None);
    }

    #[test]
    fn decisions_on_decided_or_expired_approvals_are_refused() {
        let now = OffsetDateTime::now_utc();
        let mut approval = Approval {
            id: "apr_x".into(),
            task_id: TaskId::new(),
            agent_id: AgentId::new(),
            owner_id: OwnerId::new(),
            task_type: Category::CodeReview,
            amount: Cents(1),
            status: ApprovalStatus::Pending,
            created_at: crate::timestamps::format(now),
            expires_at: crate::timestamps::format(now + TimeDuration::hours(24)),
            decided_at: None,
            reason: None,
        };
        assert_eq!(decision_refused(&approval, now), None);
        let later = now + TimeDuration::hours(24);
        assert_eq!(
            decision_refused(&approval, later).unwrap().code,
            ErrorCode::ApprovalExpired
        );
        approval.status = ApprovalStatus::Approved;
        assert_eq!(
            decision_refused(&approval, now).unwrap().code,
            ErrorCode::ApprovalAlreadyDecided
        );
        approval.status = ApprovalStatus::Expired;
        assert_eq!(
            decision_refused(&approval, now).unwrap().code,
            ErrorCode::ApprovalExpired
        );
    }

    #[test]
    fn policy_bodies_are_checked() {
        let body: PutPolicy = serde_json::from_value(serde_json::json!({
            "version": 0, "dailyBudget": -1, "allowedTaskTypes": ["code_review", "code_review"]
        }))
        .unwrap();
        let mut errors = Vec::new();
        body.validate(&mut errors);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["dailyBudget", "allowedTaskTypes"]);
        assert!(
            serde_json::from_value::<PutPolicy>(serde_json::json!({"version": 0, "daily": 1}))
                .is_err()
        );
    }

    proptest! {
        /// Whatever the policy and the counters, an allowed submit keeps every counter
        /// within its limit, a refused one would have passed the limit it names, and the
        /// ceiling the store enforces agrees with the verdict.
        #[test]
        fn allowed_submits_never_pass_a_limit(
            day in proptest::option::of(0i64..100_000),
            week in proptest::option::of(0i64..300_000),
            per_task in proptest::option::of(0i64..50_000),
            today in 0i64..100_000,
            past in 0i64..200_000,
            amount in 1i64..50_000,
        ) {
            let p = policy(day, week, per_task);
            let c = committed(today, today + past);
            match p.judge(Category::CodeReview, Cents(amount), c) {
                Verdict::Allowed { .. } => {
                    prop_assert!(per_task.is_none_or(|l| amount <= l));
                    prop_assert!(day.is_none_or(|l| today + amount <= l));
                    prop_assert!(week.is_none_or(|l| today + past + amount <= l));
                    if per_task.is_none_or(|l| amount <= l) {
                        prop_assert!(p.today_ceiling(Cents(amount), Cents(past)).is_none_or(|ceiling| today <= ceiling));
                    }
                }
                Verdict::OverLimit { limit, committed, .. } => {
                    prop_assert!(committed.0 + amount > limit.0);
                }
                Verdict::TypeNotAllowed => prop_assert!(false),
            }
        }
    }
}
