//! `aicity embassy …` against a local fake of the API: a policy set keeps what is not
//! given and sends the version it read, approvals are listed and decided, the audit
//! and notifications print, and `notifications --follow` picks up new ones until stopped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};

const TASK: &str = "task_01JQ3Z8X4Y2K7M9N0P1R2S3T4V";
const AGENT: &str = "ag_01JQ3Z8X4Y2K7M9N0P1R2S3T4W";
const OWNER: &str = "usr_01JQ3Z8X4Y2K7M9N0P1R2S3T4X";

/// The policy bodies the fake was sent, and the notification requests it answered.
#[derive(Default)]
struct Seen {
    puts: Vec<Value>,
    feeds: Vec<String>,
}

type Shared = Arc<Mutex<Seen>>;

fn ok(data: Value) -> (StatusCode, String) {
    (
        StatusCode::OK,
        json!({"success": true, "data": data}).to_string(),
    )
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

fn notification(n: u32) -> Value {
    json!({"id": format!("ntf_{n}"), "type": "approval.requested", "title": format!("Approval {n}"),
        "body": "$40.00 for code_review", "createdAt": format!("2026-03-01T10:00:0{n}Z"),
        "data": {}})
}

async fn fake(
    State(seen): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    if headers.get("authorization").map(|v| v.as_bytes()) != Some(b"Bearer ses_owner") {
        return (
            StatusCode::UNAUTHORIZED,
            json!({"success": false, "error": {"code": "UNAUTHORIZED", "message": "Authentication required", "details": {}}}).to_string(),
        );
    }
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let path = uri.path().trim_start_matches("/api/v1/embassy").to_owned();
    let query = uri.query().unwrap_or("").to_owned();
    let policy_path = format!("/agents/{AGENT}/policy");
    match (method.as_str(), path.as_str()) {
        ("GET", p) if p == policy_path => ok(json!({"agentId": AGENT, "version": 3,
            "dailyBudget": 20000, "weeklyBudget": 50000, "maxPerTask": null,
            "approvalThreshold": 3000, "allowedTaskTypes": ["code_review"],
            "updatedAt": "2026-03-01T09:00:00Z", "committed": {"today": 2500, "last7Days": 9000}})),
        ("PUT", p) if p == policy_path => {
            seen.lock().unwrap().puts.push(body.clone());
            let mut policy = body.clone();
            policy["agentId"] = json!(AGENT);
            policy["version"] = json!(body["version"].as_u64().unwrap_or(0) + 1);
            policy["updatedAt"] = json!("2026-03-01T10:00:00Z");
            policy["committed"] = json!({"today": 2500, "last7Days": 9000});
            ok(policy)
        }
        ("GET", "/approvals") => (
            StatusCode::OK,
            json!({"success": true, "data": [approval("pending")],
                "pagination": {"page": 1, "pageSize": 20, "total": 1, "totalPages": 1}})
            .to_string(),
        ),
        ("POST", "/approvals/apr_1/approve") => {
            ok(json!({"approval": approval("approved"), "task": task("submitted")}))
        }
        ("POST", "/approvals/apr_1/deny") => {
            let mut denied = approval("denied");
            denied["reason"] = body["reason"].clone();
            ok(json!({"approval": denied, "task": task("cancelled")}))
        }
        ("GET", "/audit") => ok(json!({"entries": [{"id": "aud_2", "at": "2026-03-01T10:05:00Z",
            "ownerId": OWNER, "actor": {"type": "owner", "id": OWNER},
            "action": "approval.approved", "target": {"type": "approval", "id": "apr_1"},
            "details": {}}], "hasMore": true, "nextCursor": "aud_2"})),
        ("GET", "/notifications") => {
            let calls = {
                let mut seen = seen.lock().unwrap();
                seen.feeds.push(query.clone());
                seen.feeds.len()
            };
            // The first look: two; later, one more arrives after the second.
            let list = if !query.contains("since=") {
                vec![notification(1), notification(2)]
            } else if query.contains("since=ntf_2") && calls >= 3 {
                vec![notification(3)]
            } else {
                vec![]
            };
            ok(json!({"notifications": list, "hasMore": false}))
        }
        _ => (
            StatusCode::NOT_FOUND,
            json!({"success": false, "error": {"code": "NOT_FOUND", "message": "no route", "details": {}}}).to_string(),
        ),
    }
}

async fn fake_api() -> (String, Shared) {
    let seen: Shared = Arc::default();
    let app = axum::Router::new().fallback(fake).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

/// A config file holding an owner session.
fn signed_in() -> PathBuf {
    let path = std::env::temp_dir()
        .join(format!("aicity-cli-embassy-{}", ulid::Ulid::generate()))
        .join("config.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, r#"{"token": "ses_owner"}"#).unwrap();
    path
}

fn command(base: &str, config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aicity"));
    command
        .args(["--base-url", base, "--config", config.to_str().unwrap()])
        .env_remove("AICITY_API_KEY");
    command
}

async fn aicity(base: &str, config: &Path, args: &[&str]) -> (i32, String, String) {
    let mut command = command(base, config);
    command.args(args);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_policy_set_keeps_what_is_not_given_and_sends_the_version_read() {
    let (base, seen) = fake_api().await;
    let config = signed_in();

    let (code, out, err) = aicity(&base, &config, &["embassy", "policy", "get", AGENT]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("policy of {AGENT} (version 3")),
        "{out}"
    );
    assert!(out.contains("approval threshold  $30.00"), "{out}");

    let (code, out, err) = aicity(
        &base,
        &config,
        &[
            "embassy",
            "policy",
            "set",
            AGENT,
            "--max-per-task",
            "10000",
            "--weekly-budget",
            "none",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("(version 4"), "{out}");
    assert!(out.contains("max per task        $100.00"), "{out}");

    let (code, out, err) = aicity(
        &base,
        &config,
        &[
            "--json",
            "embassy",
            "policy",
            "set",
            AGENT,
            "--clear",
            "--approval-threshold",
            "100",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed["version"], 4);
    assert_eq!(printed["approvalThreshold"], 100);

    assert_eq!(
        seen.lock().unwrap().puts,
        vec![
            json!({"version": 3, "dailyBudget": 20000, "weeklyBudget": null, "maxPerTask": 10000,
                "approvalThreshold": 3000, "allowedTaskTypes": ["code_review"]}),
            json!({"version": 3, "dailyBudget": null, "weeklyBudget": null, "maxPerTask": null,
                "approvalThreshold": 100, "allowedTaskTypes": null}),
        ]
    );

    let (code, _, err) = aicity(&base, &config, &["embassy", "policy", "set", AGENT]).await;
    assert_eq!(code, 1);
    assert!(err.contains("nothing to change"), "{err}");
    let (code, _, err) = aicity(
        &base,
        &config,
        &["embassy", "policy", "set", AGENT, "--daily-budget", "12.5"],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("expected cents"), "{err}");
    assert_eq!(seen.lock().unwrap().puts.len(), 2);
}

#[tokio::test]
async fn approvals_are_listed_approved_and_denied() {
    let (base, _) = fake_api().await;
    let config = signed_in();

    let (code, out, err) = aicity(
        &base,
        &config,
        &["embassy", "approvals", "list", "--status", "pending"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("apr_1  pending"), "{out}");
    assert!(out.contains(TASK) && out.contains("$40.00"), "{out}");

    let (code, out, err) =
        aicity(&base, &config, &["--json", "embassy", "approvals", "list"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["taskId"], TASK);

    let (code, out, err) = aicity(
        &base,
        &config,
        &["embassy", "approvals", "approve", "apr_1"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.trim(),
        format!("approved apr_1; task {TASK} is submitted")
    );

    let (code, out, err) = aicity(
        &base,
        &config,
        &[
            "--json",
            "embassy",
            "approvals",
            "deny",
            "apr_1",
            "--reason",
            "too dear",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let decision: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(decision["approval"]["reason"], "too dear");
    assert_eq!(decision["task"]["status"], "cancelled");

    let (code, _, err) = aicity(
        &base,
        &config,
        &["embassy", "approvals", "approve", "apr_x"],
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("NOT_FOUND (404)"), "{err}");
}

#[tokio::test]
async fn the_audit_and_notifications_print() {
    let (base, _) = fake_api().await;
    let config = signed_in();
    let (code, out, err) = aicity(
        &base,
        &config,
        &["embassy", "audit", "--agent", AGENT, "--limit", "1"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("owner:{OWNER}  approval.approved  approval:apr_1")),
        "{out}"
    );
    assert!(out.contains("(older entries: --cursor aud_2)"), "{out}");
    let (code, _, err) = aicity(&base, &config, &["embassy", "audit", "--limit", "0"]).await;
    assert_eq!(code, 2, "{err}");

    let (code, out, err) = aicity(&base, &config, &["embassy", "notifications"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].contains("Approval 1"), "{out}");
}

// Multi-threaded: the test waits on the child's lines while the fake API serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_follow_picks_up_new_ones_until_stopped() {
    let (base, seen) = fake_api().await;
    let config = signed_in();
    let mut child = command(&base, &config)
        .args(["--json", "embassy", "notifications", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut ids = Vec::new();
    let started = Instant::now();
    while ids.len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "saw only {ids:?}"
        );
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            let notification: Value = serde_json::from_str(&line).unwrap();
            ids.push(notification["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(ids, ["ntf_1", "ntf_2", "ntf_3"]);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.feeds[0], "");
        assert!(
            seen.feeds[1..].iter().all(|q| q.starts_with("since=ntf_")),
            "{:?}",
            seen.feeds
        );
    }

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "--follow did not stop"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status:?}");
}
