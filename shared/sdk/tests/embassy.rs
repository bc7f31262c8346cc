//! The Embassy resource against a local fake of the API: what it sends (routes, owner
//! session, bodies, query strings) and how it reads answers and refusals.

use std::sync::{Arc, Mutex};

use aicity_sdk::embassy::{AuditQuery, PolicyUpdate};
use aicity_sdk::{AgentCity, Error};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};

const TASK: &str = "task_01JQ3Z8X4Y2K7M9N0P1R2S3T4V";
const AGENT: &str = "ag_01JQ3Z8X4Y2K7M9N0P1R2S3T4W";
const OWNER: &str = "usr_01JQ3Z8X4Y2K7M9N0P1R2S3T4X";

/// Every request the fake saw: method, path and query, body.
type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

fn refusal(status: StatusCode, code: &str) -> (StatusCode, String) {
    (
        status,
        json!({"success": false, "error": {"code": code, "message": "m", "details": {}}})
            .to_string(),
    )
}

fn ok(data: Value) -> (StatusCode, String) {
    (
        StatusCode::OK,
        json!({"success": true, "data": data}).to_string(),
    )
}

fn policy(version: u64, threshold: Option<i64>) -> Value {
    json!({"agentId": AGENT, "version": version, "dailyBudget": 20000, "weeklyBudget": null,
        "maxPerTask": null, "approvalThreshold": threshold, "allowedTaskTypes": null,
        "committed": {"today": 5000, "last7Days": 5000}})
}

fn approval(status: &str) -> Value {
    json!({"id": "apr_1", "taskId": TASK, "agentId": AGENT, "ownerId": OWNER,
        "taskType": "code_review", "amount": 4000, "status": status,
        "createdAt": "2026-03-01T10:00:00Z", "expiresAt": "2026-03-02T10:00:00Z"})
}

fn task(status: &str) -> Value {
    json!({"id": TASK, "taskType": "code_review", "status": status,
        "input": {"description": "Review"}, "maxBudget": 4000, "agentId": null,
        "callerOwnerId": OWNER, "callerAgentId": AGENT, "parentTaskId": null,
        "directHire": false, "sandboxId": null, "output": null, "qualityScore": null,
        "selfReportedScore": null, "creditsCharged": null, "executionTimeMs": null,
        "feedback": null, "failureReason": null, "errorMessage": null, "routingAttempts": 0,
        "createdAt": "2026-03-01T10:00:00Z", "updatedAt": "2026-03-01T10:05:00Z",
        "completedAt": null})
}

async fn fake(
    State(seen): State<Seen>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    if headers.get("authorization").map(|v| v.as_bytes()) != Some(b"Bearer ses_owner") {
        return refusal(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let target = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    seen.lock()
        .unwrap()
        .push((method.to_string(), target.clone(), body.clone()));
    let path = uri.path().trim_start_matches("/api/v1/embassy");
    match (method.as_str(), path) {
        ("GET", p) if p == format!("/agents/{AGENT}/policy") => ok(policy(3, None)),
        ("GET", "/agents/ag_other/policy") => refusal(StatusCode::FORBIDDEN, "NOT_AGENT_OWNER"),
        ("PUT", p) if p == format!("/agents/{AGENT}/policy") => {
            if body["version"] != 3 {
                return refusal(StatusCode::CONFLICT, "POLICY_VERSION_CONFLICT");
            }
            ok(policy(4, body["approvalThreshold"].as_i64()))
        }
        ("GET", "/approvals") => (
            StatusCode::OK,
            json!({"success": true, "data": [approval("pending")],
                "pagination": {"page": 1, "pageSize": 20, "total": 1, "totalPages": 1}})
            .to_string(),
        ),
        ("GET", "/approvals/apr_1") => ok(approval("pending")),
        ("POST", "/approvals/apr_1/approve") => {
            ok(json!({"approval": approval("approved"), "task": task("submitted")}))
        }
        ("POST", "/approvals/apr_1/deny") => {
            let mut denied = approval("denied");
            denied["reason"] = body["reason"].clone();
            ok(json!({"approval": denied, "task": task("cancelled")}))
        }
        ("POST", "/approvals/apr_old/approve") => refusal(StatusCode::GONE, "APPROVAL_EXPIRED"),
        ("POST", "/approvals/apr_done/approve") => {
            refusal(StatusCode::CONFLICT, "APPROVAL_ALREADY_DECIDED")
        }
        ("GET", "/approvals/apr_none") => refusal(StatusCode::NOT_FOUND, "APPROVAL_NOT_FOUND"),
        ("GET", "/audit") => ok(
            json!({"entries": [{"id": "aud_2", "at": "2026-03-01T10:05:00Z",
            "ownerId": OWNER, "actor": {"type": "owner", "id": OWNER},
            "action": "approval.approved", "target": {"type": "approval", "id": "apr_1"},
            "requestId": "req_1", "details": {}}], "hasMore": true, "nextCursor": "aud_2"}),
        ),
        ("GET", "/notifications") => ok(json!({"notifications": [{"id": "ntf_2",
            "type": "approval.requested", "title": "Approval needed", "body": "$40.00",
            "createdAt": "2026-03-01T10:00:00Z", "data": {"approvalId": "apr_1"}}],
            "hasMore": false})),
        _ => refusal(StatusCode::NOT_FOUND, "NOT_FOUND"),
    }
}

async fn city() -> (AgentCity, Seen) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new().fallback(fake).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let city = AgentCity::builder()
        .owner_token("ses_owner")
        // An agent key too: the Embassy must still act as the owner.
        .api_key("ac_live_agent")
        .base_url(base)
        .retries(0)
        .build()
        .unwrap();
    (city, seen)
}

#[tokio::test]
async fn a_policy_is_read_then_written_back_at_its_version() {
    let (city, seen) = city().await;
    let embassy = city.embassy();
    let current = embassy.policy(AGENT).await.unwrap();
    assert_eq!(current.version, 3);
    assert_eq!(current.committed.last_7_days, 5000);

    let mut update = PolicyUpdate::from(&current);
    update.approval_threshold = Some(3000);
    let written = embassy.set_policy(AGENT, &update).await.unwrap();
    assert_eq!(written.version, 4);
    assert_eq!(written.approval_threshold, Some(3000));
    let (method, path, body) = seen.lock().unwrap()[1].clone();
    assert_eq!(method, "PUT");
    assert_eq!(path, format!("/api/v1/embassy/agents/{AGENT}/policy"));
    assert_eq!(
        body,
        json!({"version": 3, "dailyBudget": 20000, "weeklyBudget": null, "maxPerTask": null,
            "approvalThreshold": 3000, "allowedTaskTypes": null})
    );

    update.version = 2;
    let stale = embassy.set_policy(AGENT, &update).await.unwrap_err();
    assert!(matches!(stale, Error::Conflict(_)), "{stale:?}");
    assert_eq!(stale.code(), Some("POLICY_VERSION_CONFLICT"));

    let other = embassy.policy("ag_other").await.unwrap_err();
    assert!(matches!(other, Error::Forbidden(_)), "{other:?}");
    assert_eq!(other.code(), Some("NOT_AGENT_OWNER"));
}

#[tokio::test]
async fn approvals_are_listed_decided_and_refused_with_the_api_codes() {
    let (city, seen) = city().await;
    let embassy = city.embassy();
    let page = embassy.approvals(Some("pending"), None).await.unwrap();
    assert_eq!(page.data.len(), 1);
    assert_eq!(page.pagination.total, 1);
    assert_eq!(
        seen.lock().unwrap()[0].1,
        "/api/v1/embassy/approvals?status=pending"
    );
    assert_eq!(embassy.approval("apr_1").await.unwrap().status, "pending");

    let approved = embassy.approve("apr_1").await.unwrap();
    assert_eq!(approved.approval.status, "approved");
    assert_eq!(approved.task.status.as_str(), "submitted");

    let denied = embassy.deny("apr_1", Some("too dear")).await.unwrap();
    assert_eq!(denied.approval.reason.as_deref(), Some("too dear"));
    assert_eq!(denied.task.status.as_str(), "cancelled");
    embassy.deny("apr_1", None).await.unwrap();
    let bodies: Vec<Value> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, path, _)| path.ends_with("/deny"))
        .map(|(_, _, body)| body.clone())
        .collect();
    assert_eq!(bodies, vec![json!({"reason": "too dear"}), json!({})]);

    let expired = embassy.approve("apr_old").await.unwrap_err();
    assert!(
        matches!(expired, Error::Other(ref f) if f.status == 410),
        "{expired:?}"
    );
    assert_eq!(expired.code(), Some("APPROVAL_EXPIRED"));
    let decided = embassy.approve("apr_done").await.unwrap_err();
    assert!(matches!(decided, Error::Conflict(_)), "{decided:?}");
    assert_eq!(decided.code(), Some("APPROVAL_ALREADY_DECIDED"));
    let missing = embassy.approval("apr_none").await.unwrap_err();
    assert!(matches!(missing, Error::NotFound(_)), "{missing:?}");
    assert_eq!(missing.code(), Some("APPROVAL_NOT_FOUND"));
}

#[tokio::test]
async fn the_audit_and_notifications_send_their_filters() {
    let (city, seen) = city().await;
    let embassy = city.embassy();
    let page = embassy
        .audit(&AuditQuery {
            agent_id: Some(AGENT.into()),
            since: Some("2026-03-01T00:00:00Z".into()),
            limit: Some(10),
            cursor: Some("aud_9".into()),
        })
        .await
        .unwrap();
    assert!(page.has_more);
    assert_eq!(page.next_cursor.as_deref(), Some("aud_2"));
    assert_eq!(page.entries[0].action, "approval.approved");

    let feed = embassy.notifications(Some("ntf_1"), Some(5)).await.unwrap();
    assert_eq!(feed.last_id(), Some("ntf_2"));
    assert_eq!(feed.notifications[0].data["approvalId"], "apr_1");

    let paths: Vec<String> = seen.lock().unwrap().iter().map(|s| s.1.clone()).collect();
    assert_eq!(
        paths,
        vec![
            format!(
                "/api/v1/embassy/audit?agentId={AGENT}&since=2026-03-01T00%3A00%3A00Z&limit=10&cursor=aud_9"
            ),
            "/api/v1/embassy/notifications?since=ntf_1&limit=5".to_owned(),
        ]
    );
}

#[tokio::test]
async fn without_an_owner_session_nothing_is_sent() {
    let city = AgentCity::builder()
        .api_key("ac_live_agent")
        .base_url("http://127.0.0.1:9")
        .build()
        .unwrap();
    let err = city.embassy().approvals(None, None).await.unwrap_err();
    assert!(
        matches!(&err, Error::Authentication(f) if f.message.contains("owner token")),
        "{err:?}"
    );
}
