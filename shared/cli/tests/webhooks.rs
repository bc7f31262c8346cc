//! `aicity webhooks …` against a local fake of the API: the subscription commands,
//! `webhooks listen` (registers a loopback receiver, prints a correctly signed event,
//! answers a badly signed one with 400, forwards, deletes the subscription on SIGTERM),
//! and `agent run --webhook` taking a task the moment its `task.assigned` arrives.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aicity_domain::webhooks::signature_header;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};

const SECRET: &str = "whsec_listen_test";
const TASK: &str = "task_01JQ3Z8X4Y2K7M9N0P1R2S3T4V";
const ME: &str = "ag_01JQ3Z8X4Y2K7M9N0P1R2S3T4W";
const BUYER: &str = "ag_01JQ3Z8X4Y2K7M9N0P1R2S3T4Y";
const OWNER: &str = "usr_01JQ3Z8X4Y2K7M9N0P1R2S3T4X";

/// What the fake API was asked (`METHOD /path?query` and body), and what was forwarded.
#[derive(Default)]
struct Seen {
    requests: Vec<(String, Value)>,
    forwarded: Vec<(HeaderMap, String)>,
    /// The task's status as the fake keeps it.
    task_status: String,
}

type Shared = Arc<Mutex<Seen>>;

fn ok(status: StatusCode, data: Value) -> (StatusCode, String) {
    (status, json!({"success": true, "data": data}).to_string())
}

fn webhook(url: &Value, events: &Value) -> Value {
    json!({"id": "wh_1", "url": url, "events": events, "status": "active",
        "createdAt": "2026-03-01T10:00:00Z"})
}

fn task(status: &str) -> Value {
    json!({"id": TASK, "taskType": "code_review", "status": status,
        "input": {"description": "Review"}, "maxBudget": 4000, "agentId": ME,
        "callerOwnerId": OWNER, "callerAgentId": BUYER, "parentTaskId": null,
        "directHire": false, "sandboxId": null, "output": null, "qualityScore": null,
        "selfReportedScore": null, "creditsCharged": null, "executionTimeMs": null,
        "feedback": null, "failureReason": null, "errorMessage": null, "routingAttempts": 0,
        "createdAt": "2026-03-01T10:00:00Z", "updatedAt": "2026-03-01T10:05:00Z",
        "completedAt": null})
}

async fn fake(
    State(seen): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    let path = uri.path().to_owned();
    if path == "/forwarded" {
        seen.lock().unwrap().forwarded.push((headers, body));
        return (StatusCode::NO_CONTENT, String::new());
    }
    // A server without WEBHOOK_ALLOW_LOOPBACK.
    if headers.get("authorization").map(|v| v.as_bytes()) == Some(b"Bearer ses_strict") {
        return (
            StatusCode::BAD_REQUEST,
            json!({"success": false, "error": {"code": "VALIDATION_ERROR", "message": "Invalid request",
                "details": {"fields": [{"field": "url", "message": "loopback addresses are not allowed"}]}}}).to_string(),
        );
    }
    let authorized = headers.get("authorization").map(|v| v.as_bytes())
        == Some(b"Bearer ses_owner")
        || headers.get("x-api-key").map(|v| v.as_bytes()) == Some(b"ac_live_me");
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            json!({"success": false, "error": {"code": "UNAUTHORIZED", "message": "Authentication required", "details": {}}}).to_string(),
        );
    }
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let target = uri.path_and_query().unwrap().as_str().to_owned();
    let mut seen = seen.lock().unwrap();
    seen.requests
        .push((format!("{method} {target}"), body.clone()));
    let path = path.trim_start_matches("/api/v1");
    let task_path = format!("/tasks/{TASK}");
    match (method.as_str(), path) {
        ("POST", "/webhooks") => {
            let mut created = webhook(&body["url"], &body["events"]);
            created["secret"] = json!(SECRET);
            ok(StatusCode::CREATED, created)
        }
        ("GET", "/webhooks") => (
            StatusCode::OK,
            json!({"success": true, "data": [
                webhook(&json!("https://example.com/hooks"), &json!(["task.assigned"])),
                {"id": "wh_2", "url": "https://example.com/old", "events": ["task.failed"],
                 "status": "disabled", "createdAt": "2026-02-01T10:00:00Z",
                 "failingSince": "2026-02-20T10:00:00Z", "disabledAt": "2026-02-23T10:00:00Z"}],
                "pagination": {"page": 1, "pageSize": 20, "total": 2, "totalPages": 1}})
            .to_string(),
        ),
        ("DELETE", "/webhooks/wh_1") => {
            ok(StatusCode::OK, json!({"id": "wh_1", "deleted": true}))
        }
        ("POST", "/webhooks/wh_2/enable") => {
            let mut enabled = webhook(&json!("https://example.com/old"), &json!(["task.failed"]));
            enabled["id"] = json!("wh_2");
            ok(StatusCode::OK, enabled)
        }
        ("GET", "/webhooks/wh_1/deliveries") => ok(
            StatusCode::OK,
            json!({"deliveries": [{"id": "whd_1", "eventId": "evt_1", "eventType": "task.completed",
                "status": "failed", "attempts": [
                    {"at": "2026-03-01T10:00:00Z", "statusCode": 500, "latencyMs": 31},
                    {"at": "2026-03-01T10:00:30Z", "latencyMs": 10000, "error": "timed out"}],
                "createdAt": "2026-03-01T10:00:00Z", "updatedAt": "2026-03-01T10:00:30Z"}],
                "hasMore": true, "nextCursor": "whd_1"}),
        ),
        ("POST", "/webhooks/wh_1/deliveries/whd_1/redeliver") => ok(
            StatusCode::ACCEPTED,
            json!({"id": "whd_1", "eventId": "evt_1", "eventType": "task.completed",
                "status": "pending", "attempts": [], "createdAt": "2026-03-01T10:00:00Z",
                "updatedAt": "2026-03-01T10:01:00Z"}),
        ),
        ("GET", "/agents/me") => ok(StatusCode::OK, json!({"id": ME, "displayName": "Runner"})),
        // Nothing by polling: work can only come from the webhook.
        ("GET", "/tasks/submitted") => ok(StatusCode::OK, json!([])),
        ("GET", p) if p == task_path => {
            let status = seen.task_status.clone();
            ok(StatusCode::OK, task(&status))
        }
        ("POST", p) if p == format!("{task_path}/sandbox") => {
            ok(StatusCode::OK, json!({"sandboxId": "sbx_1"}))
        }
        ("POST", p) if p == format!("{task_path}/executing") => {
            seen.task_status = "executing".into();
            ok(StatusCode::OK, task("executing"))
        }
        ("POST", p) if p == format!("{task_path}/progress") => ok(StatusCode::OK, json!({})),
        ("POST", p) if p == format!("{task_path}/complete") => {
            seen.task_status = "quality_check".into();
            ok(StatusCode::OK, task("quality_check"))
        }
        ("DELETE", p) if p == format!("{task_path}/sandbox/sbx_1") => {
            ok(StatusCode::OK, json!({"destroyed": true}))
        }
        _ => (
            StatusCode::NOT_FOUND,
            json!({"success": false, "error": {"code": "WEBHOOK_NOT_FOUND", "message": "Webhook subscription not found", "details": {}}}).to_string(),
        ),
    }
}

async fn fake_api() -> (String, Shared) {
    let seen: Shared = Arc::new(Mutex::new(Seen {
        task_status: "submitted".into(),
        ..Seen::default()
    }));
    let app = axum::Router::new().fallback(fake).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

fn signed_in() -> PathBuf {
    let path = std::env::temp_dir()
        .join(format!("aicity-cli-webhooks-{}", ulid::Ulid::generate()))
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

/// The lines a stream gives, as they come.
fn lines(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `needle`; every line read on the way.
async fn wait_for(rx: &Receiver<String>, needle: &str, read: &mut Vec<String>) -> String {
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no line with {needle:?} in {read:#?}"
        );
        match rx.try_recv() {
            Ok(line) => {
                read.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "it did not stop"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The URL the CLI registered (the body of its `POST /webhooks`).
fn registered(seen: &Shared) -> (String, Value) {
    let seen = seen.lock().unwrap();
    let (_, body) = seen
        .requests
        .iter()
        .find(|(request, _)| request == "POST /api/v1/webhooks")
        .expect("POST /webhooks");
    (
        body["url"].as_str().unwrap().to_owned(),
        body["events"].clone(),
    )
}

async fn deliver(url: &str, secret: &str, body: &str) -> u16 {
    let header = signature_header(secret.as_bytes(), now(), body.as_bytes());
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("aicity-event-id", "evt_1")
        .header("aicity-signature", header)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn subscriptions_are_added_listed_removed_enabled_and_their_log_read() {
    let (base, seen) = fake_api().await;
    let config = signed_in();

    let (code, out, err) = aicity(
        &base,
        &config,
        &[
            "webhooks",
            "add",
            "https://example.com/hooks",
            "--events",
            "task.completed,task.failed",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("created wh_1  active"), "{out}");
    assert!(out.contains("shown only now"), "{out}");
    assert!(out.contains(&format!("\n    {SECRET}\n")), "{out}");
    assert_eq!(
        seen.lock().unwrap().requests[0].1,
        json!({"url": "https://example.com/hooks", "events": ["task.completed", "task.failed"]})
    );

    // Without --events: everything an owner may have.
    let (code, out, err) = aicity(
        &base,
        &config,
        &["--json", "webhooks", "add", "https://example.com/all"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["secret"], SECRET);
    assert_eq!(created["events"].as_array().unwrap().len(), 8);

    let (code, _, err) = aicity(
        &base,
        &config,
        &[
            "webhooks",
            "add",
            "https://example.com/h",
            "--events",
            "task.done",
        ],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown event \"task.done\""), "{err}");

    let (code, out, err) = aicity(&base, &config, &["webhooks", "list"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let listed: Vec<&str> = out.lines().collect();
    assert_eq!(
        listed[0],
        "wh_1  active   https://example.com/hooks  task.assigned"
    );
    assert!(
        listed[1].contains("disabled") && listed[1].contains("aicity webhooks enable wh_2"),
        "{out}"
    );

    let (code, out, err) = aicity(&base, &config, &["webhooks", "enable", "wh_2"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("wh_2  active"), "{out}");

    let (code, out, err) = aicity(
        &base,
        &config,
        &[
            "webhooks",
            "deliveries",
            "wh_1",
            "--limit",
            "5",
            "--cursor",
            "whd_9",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("whd_1  failed    task.completed"), "{out}");
    assert!(
        out.contains("500  31 ms") && out.contains("timed out  10000 ms"),
        "{out}"
    );
    assert!(out.contains("(older deliveries: --cursor whd_1)"), "{out}");

    let (code, out, err) =
        aicity(&base, &config, &["webhooks", "redeliver", "wh_1", "whd_1"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("redelivering whd_1") && out.contains("pending"),
        "{out}"
    );

    let (code, out, err) = aicity(&base, &config, &["webhooks", "rm", "wh_1"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "deleted wh_1");

    let (code, _, err) = aicity(&base, &config, &["webhooks", "rm", "wh_nope"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("WEBHOOK_NOT_FOUND (404)"), "{err}");
    assert!(err.contains("aicity webhooks list"), "{err}");

    let requests: Vec<String> = seen
        .lock()
        .unwrap()
        .requests
        .iter()
        .map(|(r, _)| r.clone())
        .collect();
    assert!(
        requests.contains(&"GET /api/v1/webhooks/wh_1/deliveries?limit=5&cursor=whd_9".into()),
        "{requests:?}"
    );
}

// Multi-threaded: the test reads the child's lines while the fake API serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_registers_prints_signed_events_refuses_bad_ones_and_cleans_up() {
    let (base, seen) = fake_api().await;
    let config = signed_in();
    let mut child = command(&base, &config)
        .args([
            "webhooks",
            "listen",
            "--events",
            "task.completed,task.assigned",
            "--forward-to",
            &format!("{base}/forwarded"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());
    let mut read = Vec::new();
    let ready = wait_for(&err, "Ready:", &mut read).await;
    let (url, events) = registered(&seen);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(ready.contains(&url), "{ready}");
    assert_eq!(events, json!(["task.completed", "task.assigned"]));
    wait_for(&err, SECRET, &mut read).await;

    let body = json!({"id": "evt_1", "type": "task.completed", "createdAt": "2026-03-01T10:00:00Z",
        "data": {"taskId": TASK, "taskType": "code_review", "status": "completed",
            "agentId": ME, "creditsCharged": 2500, "qualityScore": 91}})
    .to_string();
    assert_eq!(deliver(&url, SECRET, &body).await, 200);
    let printed = wait_for(&out, "evt_1", &mut read).await;
    assert_eq!(
        printed,
        format!(
            "2026-03-01T10:00:00Z  task.completed     evt_1  {TASK} code_review completed → {ME}, charged $25.00, quality 91"
        )
    );

    // Signed with another secret, or tampered with: 400, and nothing printed or forwarded.
    assert_eq!(deliver(&url, "whsec_wrong", &body).await, 400);
    wait_for(&err, "rejected a delivery (400)", &mut read).await;
    let tampered = body.replace("2500", "1");
    let header = signature_header(SECRET.as_bytes(), now(), body.as_bytes());
    let status = reqwest::Client::new()
        .post(&url)
        .header("aicity-signature", header)
        .body(tampered)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 400);
    wait_for(&err, "rejected a delivery (400)", &mut read).await;

    // A retry of the same event prints again, marked.
    assert_eq!(deliver(&url, SECRET, &body).await, 200);
    let again = wait_for(&out, "evt_1", &mut read).await;
    assert!(again.ends_with("(again)"), "{again}");

    // The verified ones were forwarded as received.
    let started = Instant::now();
    while seen.lock().unwrap().forwarded.len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "not forwarded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    {
        let seen = seen.lock().unwrap();
        let (headers, forwarded) = &seen.forwarded[0];
        assert_eq!(forwarded, &body);
        assert_eq!(headers["aicity-event-id"], "evt_1");
        assert!(
            headers["aicity-signature"]
                .to_str()
                .unwrap()
                .starts_with("t=")
        );
        assert_eq!(seen.forwarded.len(), 2);
    }

    let status = terminate(&mut child).await;
    assert!(status.success(), "{status:?}");
    let requests: Vec<String> = seen
        .lock()
        .unwrap()
        .requests
        .iter()
        .map(|(r, _)| r.clone())
        .collect();
    assert_eq!(
        requests,
        ["POST /api/v1/webhooks", "DELETE /api/v1/webhooks/wh_1"]
    );
    wait_for(&err, "deleted subscription wh_1", &mut read).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_json_prints_the_raw_event() {
    let (base, seen) = fake_api().await;
    let config = signed_in();
    let mut child = command(&base, &config)
        .args(["--json", "webhooks", "listen", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());
    let mut read = Vec::new();
    wait_for(&err, "Ready:", &mut read).await;
    let (url, events) = registered(&seen);
    assert_eq!(events.as_array().unwrap().len(), 8, "{events}");
    let body = json!({"id": "evt_7", "type": "approval.requested",
        "createdAt": "2026-03-01T10:00:00Z", "data": {"approvalId": "apr_1"}})
    .to_string();
    assert_eq!(deliver(&url, SECRET, &body).await, 200);
    let printed = wait_for(&out, "evt_7", &mut read).await;
    assert_eq!(printed, body);
    assert!(terminate(&mut child).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_takes_a_task_when_its_assignment_arrives() {
    let (base, seen) = fake_api().await;
    let config = signed_in();
    let mut child = command(&base, &config)
        .args([
            "--api-key",
            "ac_live_me",
            "agent",
            "run",
            "--webhook",
            "--exec",
            "echo '{\"verdict\": \"fine\"}'",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());
    let mut read = Vec::new();
    wait_for(&err, "taking task.assigned webhooks", &mut read).await;
    let (url, events) = registered(&seen);
    assert_eq!(events, json!(["task.assigned"]));

    // The buyer's copy of an assignment (to another agent) is not work.
    let theirs = json!({"id": "evt_2", "type": "task.assigned", "createdAt": "2026-03-01T10:00:00Z",
        "data": {"taskId": TASK, "taskType": "code_review", "status": "submitted", "agentId": BUYER}})
    .to_string();
    assert_eq!(deliver(&url, SECRET, &theirs).await, 200);
    // A forged one is refused.
    let mine = json!({"id": "evt_1", "type": "task.assigned", "createdAt": "2026-03-01T10:00:00Z",
        "data": {"taskId": TASK, "taskType": "code_review", "status": "submitted", "agentId": ME}})
    .to_string();
    assert_eq!(deliver(&url, "whsec_forged", &mine).await, 400);
    assert_eq!(deliver(&url, SECRET, &mine).await, 200);
    let started = Instant::now();
    let done = wait_for(&out, "completed", &mut read).await;
    assert_eq!(done, format!("completed {TASK}"));
    // Long before the 30 s poll could have found it (nothing is polled here anyway).
    assert!(started.elapsed() < Duration::from_secs(15));
    // A redelivery of the same assignment finds the task started: nothing more to do.
    assert_eq!(deliver(&url, SECRET, &mine).await, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let status = terminate(&mut child).await;
    assert!(status.success(), "{status:?}");
    let requests: Vec<String> = seen
        .lock()
        .unwrap()
        .requests
        .iter()
        .map(|(r, _)| r.clone())
        .collect();
    let count = |prefix: &str| requests.iter().filter(|r| r.starts_with(prefix)).count();
    assert_eq!(
        count(&format!("POST /api/v1/tasks/{TASK}/sandbox")),
        1,
        "{requests:#?}"
    );
    assert_eq!(
        count(&format!("POST /api/v1/tasks/{TASK}/complete")),
        1,
        "{requests:#?}"
    );
    assert_eq!(count("GET /api/v1/tasks/submitted"), 1, "{requests:#?}");
    assert_eq!(requests.last().unwrap(), "DELETE /api/v1/webhooks/wh_1");
    let complete = seen
        .lock()
        .unwrap()
        .requests
        .iter()
        .find(|(r, _)| r.ends_with("/complete"))
        .map(|(_, body)| body.clone())
        .unwrap();
    assert_eq!(complete["output"], json!({"verdict": "fine"}));
}

#[tokio::test]
async fn listen_says_why_when_the_api_refuses_loopback() {
    let (base, _) = fake_api().await;
    let config = signed_in();
    std::fs::write(&config, r#"{"token": "ses_strict"}"#).unwrap();
    let (code, out, err) = aicity(&base, &config, &["webhooks", "listen"]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("url: loopback addresses are not allowed"),
        "{err}"
    );
    assert!(err.contains("WEBHOOK_ALLOW_LOOPBACK=1"), "{err}");
}
