//! `/embassy`: an owner's say over its agents' spending — a policy per agent (budgets,
//! allowed task types, an approval threshold), the approvals a policy asks for, the
//! audit trail and the owner's notifications. Every call needs the owner's session.

use aicity_domain::task::model::Task;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Error;
use crate::client::{AgentCity, As};
use crate::resources::{NO_BODY, Page, decode, query, urlencode};

/// What an agent's submits already hold or were charged (cents).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    pub today: i64,
    /// Today (UTC) and the six days before it.
    #[serde(rename = "last7Days")]
    pub last_7_days: i64,
}

/// An agent's policy. Amounts are cents; `None` is no limit. `version` is 0 until the
/// policy is first set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    #[serde(default)]
    pub agent_id: String,
    pub version: u64,
    #[serde(default)]
    pub daily_budget: Option<i64>,
    #[serde(default)]
    pub weekly_budget: Option<i64>,
    #[serde(default)]
    pub max_per_task: Option<i64>,
    /// A submit with a larger `maxBudget` waits for the owner's approval.
    #[serde(default)]
    pub approval_threshold: Option<i64>,
    /// `None`: every task type.
    #[serde(default)]
    pub allowed_task_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub committed: Committed,
}

/// `PUT /embassy/agents/{agentId}/policy`: the whole policy (a field left `None` is no
/// limit) and the `version` it was read at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyUpdate {
    pub version: u64,
    pub daily_budget: Option<i64>,
    pub weekly_budget: Option<i64>,
    pub max_per_task: Option<i64>,
    pub approval_threshold: Option<i64>,
    pub allowed_task_types: Option<Vec<String>>,
}

impl From<&Policy> for PolicyUpdate {
    /// The policy as it is, at its version: change some fields and send it back.
    fn from(policy: &Policy) -> Self {
        Self {
            version: policy.version,
            daily_budget: policy.daily_budget,
            weekly_budget: policy.weekly_budget,
            max_per_task: policy.max_per_task,
            approval_threshold: policy.approval_threshold,
            allowed_task_types: policy.allowed_task_types.clone(),
        }
    }
}

impl PolicyUpdate {
    /// No limits at all, replacing the policy read at `version`.
    pub fn cleared(version: u64) -> Self {
        Self {
            version,
            ..Self::default()
        }
    }
}

/// A task over its agent's approval threshold, waiting for (or decided by) the owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// `apr_…`
    pub id: String,
    pub task_id: String,
    pub agent_id: String,
    pub owner_id: String,
    pub task_type: String,
    /// The task's `maxBudget` (cents), held while it waits.
    pub amount: i64,
    /// `pending`, `approved`, `denied`, `expired` or `cancelled`.
    pub status: String,
    pub created_at: String,
    pub expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What approving or denying answers: the approval and its task as they are now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Decision {
    pub approval: Approval,
    pub task: Task,
}

/// Who acted, or what was acted on: `{type, id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

/// One state-changing action of the owner or its agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: String,
    pub at: String,
    pub owner_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    pub actor: Party,
    pub action: String,
    pub target: Party,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default)]
    pub details: Value,
}

/// Audit entries, newest first; `next_cursor` asks for the older ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    #[serde(default)]
    pub has_more: bool,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// Filters of [`Embassy::audit`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub agent_id: Option<String>,
    /// RFC 3339.
    pub since: Option<String>,
    /// 1 to 100.
    pub limit: Option<u32>,
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
}

impl AuditQuery {
    /// The path and query string it asks for.
    pub fn path(&self) -> String {
        format!(
            "/embassy/audit{}",
            query(&[
                ("agentId", self.agent_id.clone()),
                ("since", self.since.clone()),
                ("limit", self.limit.map(|l| l.to_string())),
                ("cursor", self.cursor.clone()),
            ])
        )
    }
}

/// Something the owner should know, e.g. `approval.requested`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// `ntf_…`, ordered by time.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub body: String,
    pub created_at: String,
    #[serde(default)]
    pub data: Value,
}

/// Notifications, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationPage {
    pub notifications: Vec<Notification>,
    #[serde(default)]
    pub has_more: bool,
}

impl NotificationPage {
    /// The id to pass as `since` to get what came after this page.
    pub fn last_id(&self) -> Option<&str> {
        self.notifications.last().map(|n| n.id.as_str())
    }
}

fn policy_path(agent_id: &str) -> String {
    format!("/embassy/agents/{}/policy", urlencode(agent_id))
}

fn approvals_path(status: Option<&str>, page: Option<u32>) -> String {
    format!(
        "/embassy/approvals{}",
        query(&[
            ("status", status.map(str::to_owned)),
            ("page", page.map(|p| p.to_string())),
        ])
    )
}

fn approval_path(id: &str, action: &str) -> String {
    format!("/embassy/approvals/{}{action}", urlencode(id))
}

fn notifications_path(since: Option<&str>, limit: Option<u32>) -> String {
    format!(
        "/embassy/notifications{}",
        query(&[
            ("since", since.map(str::to_owned)),
            ("limit", limit.map(|l| l.to_string())),
        ])
    )
}

/// The body of a deny: `{}` or `{"reason": …}`.
fn deny_body(reason: Option<&str>) -> Value {
    match reason {
        Some(reason) => json!({ "reason": reason }),
        None => json!({}),
    }
}

/// `/embassy` (owner session only).
pub struct Embassy<'a>(pub(crate) &'a AgentCity);

impl Embassy<'_> {
    /// The agent's policy (version 0, no limits, when never set) and what it has
    /// committed today and over the last 7 days.
    pub async fn policy(&self, agent_id: &str) -> Result<Policy, Error> {
        decode(
            self.0
                .call(
                    Method::GET,
                    &policy_path(agent_id),
                    As::Owner,
                    NO_BODY,
                    &[],
                    false,
                )
                .await?,
        )
    }

    /// Replaces the whole policy; `409 POLICY_VERSION_CONFLICT` when `update.version` is
    /// not the current one (read it again).
    pub async fn set_policy(&self, agent_id: &str, update: &PolicyUpdate) -> Result<Policy, Error> {
        decode(
            self.0
                .call(
                    Method::PUT,
                    &policy_path(agent_id),
                    As::Owner,
                    Some(update),
                    &[],
                    false,
                )
                .await?,
        )
    }

    /// The owner's approvals, optionally only those with `status` (e.g. `pending`).
    pub async fn approvals(
        &self,
        status: Option<&str>,
        page: Option<u32>,
    ) -> Result<Page<Approval>, Error> {
        self.approvals_page(approvals_path(status, page)).await
    }

    /// [`Self::approvals`] after the page whose `next_cursor` is `cursor`.
    pub async fn approvals_after(
        &self,
        status: Option<&str>,
        cursor: &str,
    ) -> Result<Page<Approval>, Error> {
        self.approvals_page(crate::resources::with_cursor(
            approvals_path(status, None),
            cursor,
        ))
        .await
    }

    async fn approvals_page(&self, path: String) -> Result<Page<Approval>, Error> {
        decode(
            self.0
                .call(Method::GET, &path, As::Owner, NO_BODY, &[], true)
                .await?,
        )
    }

    pub async fn approval(&self, id: &str) -> Result<Approval, Error> {
        decode(
            self.0
                .call(
                    Method::GET,
                    &approval_path(id, ""),
                    As::Owner,
                    NO_BODY,
                    &[],
                    false,
                )
                .await?,
        )
    }

    /// Lets the task go on to routing. A retry after a lost answer may meet
    /// `409 APPROVAL_ALREADY_DECIDED`; `410 APPROVAL_EXPIRED` when it waited too long.
    pub async fn approve(&self, id: &str) -> Result<Decision, Error> {
        decode(
            self.0
                .call(
                    Method::POST,
                    &approval_path(id, "/approve"),
                    As::Owner,
                    NO_BODY,
                    &[],
                    false,
                )
                .await?,
        )
    }

    /// Cancels the task and gives its held credits back.
    pub async fn deny(&self, id: &str, reason: Option<&str>) -> Result<Decision, Error> {
        let body = deny_body(reason);
        decode(
            self.0
                .call(
                    Method::POST,
                    &approval_path(id, "/deny"),
                    As::Owner,
                    Some(&body),
                    &[],
                    false,
                )
                .await?,
        )
    }

    /// The audit trail, newest first.
    pub async fn audit(&self, filter: &AuditQuery) -> Result<AuditPage, Error> {
        decode(
            self.0
                .call(Method::GET, &filter.path(), As::Owner, NO_BODY, &[], false)
                .await?,
        )
    }

    /// With `since` (a notification id or an RFC 3339 time): those after it, oldest
    /// first. Without: the latest `limit`, oldest first.
    pub async fn notifications(
        &self,
        since: Option<&str>,
        limit: Option<u32>,
    ) -> Result<NotificationPage, Error> {
        decode(
            self.0
                .call(
                    Method::GET,
                    &notifications_path(since, limit),
                    As::Owner,
                    NO_BODY,
                    &[],
                    false,
                )
                .await?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK: &str = "01JQ3Z8X4Y2K7M9N0P1R2S3T4V";
    const AGENT: &str = "01JQ3Z8X4Y2K7M9N0P1R2S3T4W";
    const OWNER: &str = "01JQ3Z8X4Y2K7M9N0P1R2S3T4X";

    #[test]
    fn paths_carry_only_the_filters_given_and_encode_them() {
        assert_eq!(AuditQuery::default().path(), "/embassy/audit");
        let filter = AuditQuery {
            agent_id: Some("ag_01JQ3Z8X4Y2K7M9N0P1R2S3T4W".into()),
            since: Some("2026-03-01T10:00:00+01:00".into()),
            limit: Some(20),
            cursor: Some("aud_01K".into()),
        };
        assert_eq!(
            filter.path(),
            "/embassy/audit?agentId=ag_01JQ3Z8X4Y2K7M9N0P1R2S3T4W&since=2026-03-01T10%3A00%3A00%2B01%3A00&limit=20&cursor=aud_01K"
        );
        assert_eq!(approvals_path(None, None), "/embassy/approvals");
        assert_eq!(
            approvals_path(Some("pending"), Some(2)),
            "/embassy/approvals?status=pending&page=2"
        );
        assert_eq!(
            notifications_path(Some("ntf_01K"), Some(5)),
            "/embassy/notifications?since=ntf_01K&limit=5"
        );
        assert_eq!(notifications_path(None, None), "/embassy/notifications");
        assert_eq!(
            approval_path("apr_1", "/approve"),
            "/embassy/approvals/apr_1/approve"
        );
        assert_eq!(
            policy_path("agent/../x"),
            "/embassy/agents/agent%2F..%2Fx/policy"
        );
    }

    #[test]
    fn a_policy_reads_with_its_limits_and_commitments() {
        let policy: Policy = serde_json::from_value(json!({
            "agentId": "ag_1", "version": 3, "dailyBudget": 20000, "weeklyBudget": null,
            "maxPerTask": 5000, "approvalThreshold": 3000, "allowedTaskTypes": ["code_review"],
            "updatedAt": "2026-03-01T10:00:00Z", "committed": {"today": 2500, "last7Days": 7500}
        }))
        .unwrap();
        assert_eq!(policy.version, 3);
        assert_eq!(policy.daily_budget, Some(20000));
        assert_eq!(policy.weekly_budget, None);
        assert_eq!(
            policy.allowed_task_types.as_deref(),
            Some(&["code_review".to_owned()][..])
        );
        assert_eq!(
            policy.committed,
            Committed {
                today: 2500,
                last_7_days: 7500
            }
        );

        // Never set: version 0, every limit null, no updatedAt.
        let fresh: Policy = serde_json::from_value(json!({
            "agentId": "ag_1", "version": 0, "dailyBudget": null, "weeklyBudget": null,
            "maxPerTask": null, "approvalThreshold": null, "allowedTaskTypes": null,
            "committed": {"today": 0, "last7Days": 0}
        }))
        .unwrap();
        assert_eq!(fresh.version, 0);
        assert_eq!(fresh.updated_at, None);
        assert_eq!(fresh.allowed_task_types, None);
    }

    #[test]
    fn an_update_sends_the_whole_policy_with_nulls_for_no_limit() {
        let policy = Policy {
            agent_id: "ag_1".into(),
            version: 4,
            daily_budget: Some(100),
            approval_threshold: Some(50),
            allowed_task_types: Some(vec!["testing".into()]),
            ..Policy::default()
        };
        let mut update = PolicyUpdate::from(&policy);
        update.max_per_task = Some(70);
        assert_eq!(
            serde_json::to_value(&update).unwrap(),
            json!({"version": 4, "dailyBudget": 100, "weeklyBudget": null, "maxPerTask": 70,
                "approvalThreshold": 50, "allowedTaskTypes": ["testing"]})
        );
        assert_eq!(
            serde_json::to_value(PolicyUpdate::cleared(4)).unwrap(),
            json!({"version": 4, "dailyBudget": null, "weeklyBudget": null, "maxPerTask": null,
                "approvalThreshold": null, "allowedTaskTypes": null})
        );
    }

    #[test]
    fn approvals_audit_and_notifications_read_from_the_api_shapes() {
        let approval: Approval = serde_json::from_value(json!({
            "id": "apr_01JQ3Z8X4Y2K7M9N0P1R2S3T4V", "taskId": "task_01JQ3Z8X4Y2K7M9N0P1R2S3T4V", "agentId": "ag_1", "ownerId": "usr_1",
            "taskType": "code_review", "amount": 4000, "status": "pending",
            "createdAt": "2026-03-01T10:00:00Z", "expiresAt": "2026-03-02T10:00:00Z"
        }))
        .unwrap();
        assert_eq!(approval.status, "pending");
        assert_eq!(approval.decided_at, None);
        let page: Page<Approval> = serde_json::from_value(json!({
            "success": true, "data": [serde_json::to_value(&approval).unwrap()],
            "pagination": {"page": 1, "pageSize": 20, "total": 1, "totalPages": 1}
        }))
        .unwrap();
        assert_eq!(page.data, vec![approval]);

        let audit: AuditPage = serde_json::from_value(json!({
            "entries": [{"id": "aud_2", "at": "2026-03-01T10:00:01Z", "ownerId": "usr_1",
                "actor": {"type": "owner", "id": "usr_1"}, "action": "approval.approved",
                "target": {"type": "approval", "id": "apr_01JQ3Z8X4Y2K7M9N0P1R2S3T4V"}, "requestId": "req_1",
                "details": {"amount": 4000}},
                {"id": "aud_1", "at": "2026-03-01T10:00:00Z", "ownerId": "usr_1",
                "agentId": "ag_1", "actor": {"type": "agent", "id": "ag_1"},
                "action": "task.submitted", "target": {"type": "task", "id": "task_01JQ3Z8X4Y2K7M9N0P1R2S3T4V"}}],
            "hasMore": true, "nextCursor": "aud_1"
        }))
        .unwrap();
        assert_eq!(audit.entries.len(), 2);
        assert_eq!(audit.entries[0].actor.kind, "owner");
        assert_eq!(audit.entries[1].agent_id.as_deref(), Some("ag_1"));
        assert_eq!(audit.entries[1].details, Value::Null);
        assert_eq!(audit.next_cursor.as_deref(), Some("aud_1"));

        let empty: AuditPage =
            serde_json::from_value(json!({"entries": [], "hasMore": false, "nextCursor": null}))
                .unwrap();
        assert!(!empty.has_more && empty.next_cursor.is_none());

        let feed: NotificationPage = serde_json::from_value(json!({
            "notifications": [
                {"id": "ntf_1", "type": "approval.requested", "title": "Approval needed",
                 "body": "Demo buyer wants to spend $40.00", "createdAt": "2026-03-01T10:00:00Z",
                 "data": {"approvalId": "apr_01JQ3Z8X4Y2K7M9N0P1R2S3T4V"}},
                {"id": "ntf_2", "type": "task.completed", "title": "Done", "body": "…",
                 "createdAt": "2026-03-01T10:01:00Z"}],
            "hasMore": false
        }))
        .unwrap();
        assert_eq!(feed.notifications[0].kind, "approval.requested");
        assert_eq!(feed.last_id(), Some("ntf_2"));
        assert_eq!(
            NotificationPage {
                notifications: vec![],
                has_more: false
            }
            .last_id(),
            None
        );
    }

    #[test]
    fn a_decision_reads_the_approval_and_its_task() {
        let decision: Decision = serde_json::from_str(
            &json!({
                "approval": {"id": "apr_TASK", "taskId": "task_TASK", "agentId": "ag_AGENT",
                    "ownerId": "usr_OWNER", "taskType": "code_review", "amount": 4000,
                    "status": "approved", "createdAt": "2026-03-01T10:00:00Z",
                    "expiresAt": "2026-03-02T10:00:00Z", "decidedAt": "2026-03-01T10:05:00Z"},
                "task": {"id": "task_TASK", "taskType": "code_review", "status": "submitted",
                    "input": {"description": "Review the auth module"}, "maxBudget": 4000,
                    "agentId": null, "callerOwnerId": "usr_OWNER", "callerAgentId": "ag_AGENT",
                    "parentTaskId": null, "directHire": false, "sandboxId": null, "output": null,
                    "qualityScore": null, "selfReportedScore": null, "creditsCharged": null,
                    "executionTimeMs": null, "feedback": null, "failureReason": null,
                    "errorMessage": null, "routingAttempts": 0, "createdAt": "2026-03-01T10:00:00Z",
                    "updatedAt": "2026-03-01T10:05:00Z", "completedAt": null}
            })
            .to_string()
            .replace("TASK", TASK)
            .replace("AGENT", AGENT)
            .replace("OWNER", OWNER),
        )
        .unwrap();
        assert_eq!(decision.approval.status, "approved");
        assert_eq!(decision.task.id.to_string(), format!("task_{TASK}"));
        assert_eq!(decision.task.status.as_str(), "submitted");
    }

    #[test]
    fn a_deny_sends_its_reason_only_when_there_is_one() {
        assert_eq!(deny_body(None), json!({}));
        assert_eq!(deny_body(Some("too dear")), json!({"reason": "too dear"}));
    }
}
