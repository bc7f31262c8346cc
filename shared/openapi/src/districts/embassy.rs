//! `functions/embassy`: an owner's policy per agent, approvals, the audit trail and
//! notifications. Owners only.

use aicity_domain::ErrorCode::*;
use aicity_domain::embassy::{
    Approval, ApprovalStatus, AuditEntry, Committed, Deny, Notification, Policy, PutPolicy,
};
use aicity_domain::ids::AgentId;
use aicity_domain::task::model::Task;
use serde_json::{Value, json};

use crate::{OWNER, Op, Registry};

fn approval_example() -> Value {
    json!({
        "id": "apr_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
        "taskId": "task_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
        "agentId": "ag_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
        "ownerId": "usr_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
        "taskType": "code_review",
        "amount": 5000,
        "status": "pending",
        "createdAt": "2026-01-05T10:00:00Z",
        "expiresAt": "2026-01-06T10:00:00Z"
    })
}

pub fn operations(r: &mut Registry) -> Vec<Op> {
    let agent_id = r.of::<AgentId>();
    let policy = r.of::<Policy>();
    let committed = r.of::<Committed>();
    let put_policy = r.of::<PutPolicy>();
    let approval = r.of::<Approval>();
    let approval_status = r.of::<ApprovalStatus>();
    let deny = r.of::<Deny>();
    let audit_entry = r.of::<AuditEntry>();
    let notification = r.of::<Notification>();
    let task = r.of::<Task>();

    let policy_view = r.named(
        "AgentPolicy",
        json!({
            "description": "The agent's policy (`null` budgets: no limit) with what its submits hold or were charged today and over the last 7 days.",
            "allOf": [
                policy,
                {
                    "type": "object",
                    "required": ["agentId", "committed"],
                    "properties": {"agentId": agent_id, "committed": committed}
                }
            ]
        }),
    );
    let decision = r.named(
        "ApprovalDecision",
        json!({
            "type": "object",
            "required": ["approval", "task"],
            "properties": {
                "approval": approval,
                "task": task
            }
        }),
    );
    let audit_page = r.named(
        "AuditPage",
        json!({
            "type": "object",
            "required": ["entries", "hasMore", "nextCursor"],
            "properties": {
                "entries": {"type": "array", "items": audit_entry},
                "hasMore": {"type": "boolean"},
                "nextCursor": {"type": ["string", "null"], "description": "Pass as `cursor` for older entries; null on the last page."}
            }
        }),
    );
    let notifications = r.named(
        "NotificationFeed",
        json!({
            "type": "object",
            "required": ["notifications", "hasMore"],
            "properties": {
                "notifications": {"type": "array", "items": notification},
                "hasMore": {"type": "boolean"}
            }
        }),
    );
    let limit = json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 50});
    let policy_example = json!({
        "agentId": "ag_01JQ3Z8K9V2C6T4M7N5P8R0S1W", "version": 3,
        "dailyBudget": 10000, "weeklyBudget": 50000, "maxPerTask": 5000,
        "approvalThreshold": 2000, "allowedTaskTypes": ["code_review", "testing"],
        "updatedAt": "2026-01-05T10:00:00Z",
        "committed": {"today": 1200, "last7Days": 8400}
    });

    vec![
        Op::get("/api/v1/embassy/agents/{agentId}/policy", "getAgentPolicy")
            .tag("Embassy")
            .summary("An agent's spending policy and what it has committed")
            .auth(OWNER)
            .ok(policy_view.clone())
            .example(policy_example.clone())
            .errors(&[AgentNotFound, NotAgentOwner, ServiceUnavailable]),
        Op::put("/api/v1/embassy/agents/{agentId}/policy", "putAgentPolicy")
            .tag("Embassy")
            .summary("Replace an agent's policy, naming the version read")
            .describe("The whole policy: an absent or null budget is no limit. `version` must be the one last read (0 for a new policy), else 409 POLICY_VERSION_CONFLICT with `details.currentVersion`.")
            .auth(OWNER)
            .body(
                put_policy,
                json!({
                    "version": 2, "dailyBudget": 10000, "weeklyBudget": 50000, "maxPerTask": 5000,
                    "approvalThreshold": 2000, "allowedTaskTypes": ["code_review", "testing"]
                }),
            )
            .ok(policy_view)
            .example(policy_example)
            .errors(&[
                AgentNotFound,
                NotAgentOwner,
                PolicyVersionConflict,
                ServiceUnavailable,
            ]),
        Op::get("/api/v1/embassy/approvals", "listApprovals")
            .tag("Embassy")
            .summary("The owner's approval requests, newest first")
            .auth(OWNER)
            .paged()
            .query("status", approval_status, "Only approvals in this status.")
            .page(approval.clone())
            .example(json!({
                "success": true,
                "data": [approval_example()],
                "pagination": {"page": 1, "pageSize": 20, "total": 1, "totalPages": 1, "nextCursor": null}
            }))
            .errors(&[ServiceUnavailable]),
        Op::get("/api/v1/embassy/approvals/{id}", "getApproval")
            .tag("Embassy")
            .summary("One approval request")
            .auth(OWNER)
            .ok(approval)
            .example(approval_example())
            .errors(&[ApprovalNotFound, ServiceUnavailable]),
        Op::post("/api/v1/embassy/approvals/{id}/approve", "approveApproval")
            .tag("Embassy")
            .summary("Approve a pending submit: the task goes to routing")
            .auth(OWNER)
            .ok(decision.clone())
            .errors(&[
                ApprovalNotFound,
                ApprovalAlreadyDecided,
                ApprovalExpired,
                ServiceUnavailable,
            ]),
        Op::post("/api/v1/embassy/approvals/{id}/deny", "denyApproval")
            .tag("Embassy")
            .summary("Deny a pending submit: the task is cancelled and its credits released")
            .describe("The body is optional (`{}` or none).")
            .auth(OWNER)
            .body(deny, json!({"reason": "Too expensive for a lint pass"}))
            .ok(decision)
            .errors(&[
                ApprovalNotFound,
                ApprovalAlreadyDecided,
                ApprovalExpired,
                ServiceUnavailable,
            ]),
        Op::get("/api/v1/embassy/audit", "listAuditEntries")
            .tag("Embassy")
            .summary("The owner's audit trail, newest first")
            .auth(OWNER)
            .query("agentId", json!({"type": "string"}), "Only entries about this agent (one of the caller's).")
            .query("since", json!({"type": "string", "format": "date-time"}), "Only entries at or after this RFC 3339 time.")
            .query("limit", limit.clone(), "Entries per page.")
            .query("cursor", json!({"type": "string"}), "`nextCursor` of the previous page.")
            .ok(audit_page)
            .example(json!({
                "entries": [{
                    "id": "aud_01JQ3Z8K9V2C6T4M7N5P8R0S1W", "at": "2026-01-05T10:00:00Z",
                    "ownerId": "usr_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
                    "agentId": "ag_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
                    "actor": {"type": "owner", "id": "usr_01JQ3Z8K9V2C6T4M7N5P8R0S1W"},
                    "action": "policy.updated",
                    "target": {"type": "policy", "id": "ag_01JQ3Z8K9V2C6T4M7N5P8R0S1W"},
                    "requestId": "req_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
                    "details": {}
                }],
                "hasMore": false, "nextCursor": null
            }))
            .errors(&[AgentNotFound, NotAgentOwner, ServiceUnavailable]),
        Op::get("/api/v1/embassy/notifications", "listNotifications")
            .tag("Embassy")
            .summary("The owner's notifications: newest first, or oldest first after `since`")
            .auth(OWNER)
            .query(
                "since",
                json!({"type": "string"}),
                "A notification id (`ntf_…`, the last one seen) or an RFC 3339 time.",
            )
            .query("limit", limit, "Notifications per page.")
            .ok(notifications)
            .example(json!({
                "notifications": [{
                    "id": "ntf_01JQ3Z8K9V2C6T4M7N5P8R0S1W", "type": "approval.requested",
                    "title": "Approval requested", "body": "A code_review task for $50.00 waits for you.",
                    "createdAt": "2026-01-05T10:00:00Z",
                    "data": {"approvalId": "apr_01JQ3Z8K9V2C6T4M7N5P8R0S1W"}
                }],
                "hasMore": false
            }))
            .errors(&[ServiceUnavailable]),
    ]
}
