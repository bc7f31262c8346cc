//! `aicity workflows …` against a local fake of the API: `--step`/`--agent-for` and
//! `--file` build the request body, each command hits its method and path (as the owner,
//! or the agent with `--api-key`), a create carries an Idempotency-Key, refusals print
//! their code and a hint, `watch` follows until the workflow ends, and the help lists
//! the commands.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};

/// One request the fake saw.
#[derive(Debug, Clone)]
struct Seen {
    who: String,
    /// `METHOD /path?query`
    request: String,
    key: Option<String>,
    body: Value,
}

#[derive(Default)]
struct Fake {
    seen: Vec<Seen>,
    /// How many times `GET /workflows/wf_1` was answered.
    gets: usize,
}

type Shared = Arc<Mutex<Fake>>;

fn ok(status: StatusCode, data: Value) -> (StatusCode, String) {
    (status, json!({"success": true, "data": data}).to_string())
}

fn workflow(status: &str, first: &str, second: &str) -> Value {
    json!({"id": "wf_1", "name": "Full code audit", "status": status,
    "callerOwnerId": "usr_1", "totalBudget": 1200,
    "createdAt": "2026-03-01T10:00:00Z", "updatedAt": "2026-03-01T10:00:00Z",
    "creditsCharged": if first == "completed" { 425 } else { 0 },
    "steps": [
        {"order": 1, "taskId": "task_1", "taskType": "code_review", "description": "Review",
         "maxBudget": 500, "status": first, "assignedAgentId": "ag_r"},
        {"order": 2, "taskId": "task_2", "taskType": "testing", "description": "Test",
         "maxBudget": 700, "agentId": "ag_t", "status": second},
    ]})
}

async fn fake(
    State(fake): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    let who = match (headers.get("x-api-key"), headers.get("authorization")) {
        (Some(key), _) => format!("key:{}", key.to_str().unwrap()),
        (None, Some(token)) => token.to_str().unwrap().to_owned(),
        (None, None) => "nobody".into(),
    };
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let mut fake = fake.lock().unwrap();
    fake.seen.push(Seen {
        who,
        request: format!("{method} {}", uri.path_and_query().unwrap().as_str()),
        key: headers
            .get("idempotency-key")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: body.clone(),
    });
    match (method.as_str(), uri.path().trim_start_matches("/api/v1")) {
        ("POST", "/workflows") => {
            let mut created = workflow("active", "routing", "waiting");
            created["name"] = body["name"].clone();
            ok(StatusCode::CREATED, created)
        }
        ("GET", "/workflows") => (
            StatusCode::OK,
            json!({"success": true, "data": [{"id": "wf_1", "name": "Full code audit",
                "status": "failed", "callerOwnerId": "usr_1", "totalBudget": 1200,
                "failedStep": 2, "createdAt": "2026-03-01T10:00:00Z",
                "updatedAt": "2026-03-01T10:05:00Z",
                "steps": [{"order": 1, "taskId": "task_1", "taskType": "code_review",
                    "description": "Review", "maxBudget": 500},
                    {"order": 2, "taskId": "task_2", "taskType": "testing",
                    "description": "Test", "maxBudget": 700}]}],
                "pagination": {"page": 2, "pageSize": 20, "total": 21, "totalPages": 2}})
            .to_string(),
        ),
        ("GET", "/workflows/wf_1") => {
            fake.gets += 1;
            // Watched: the first step runs, then completes and the second starts, then
            // everything is done.
            match fake.gets {
                1 => ok(StatusCode::OK, workflow("active", "executing", "waiting")),
                2 => ok(StatusCode::OK, workflow("active", "completed", "routing")),
                _ => ok(
                    StatusCode::OK,
                    workflow("completed", "completed", "completed"),
                ),
            }
        }
        ("POST", "/workflows/wf_1/cancel") => ok(
            StatusCode::OK,
            workflow("cancelled", "executing", "cancelled"),
        ),
        ("POST", "/workflows/wf_done/cancel") => (
            StatusCode::CONFLICT,
            json!({"success": false, "error": {"code": "INVALID_WORKFLOW_STATE",
                "message": "The workflow is completed", "details": {"status": "completed"}}})
            .to_string(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            json!({"success": false, "error": {"code": "WORKFLOW_NOT_FOUND",
                "message": "No workflow of yours with this id", "details": {}}})
            .to_string(),
        ),
    }
}

async fn fake_api() -> (String, Shared) {
    let shared: Shared = Arc::default();
    let app = axum::Router::new()
        .fallback(fake)
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, shared)
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aicity-cli-workflows-{}", ulid::Ulid::generate()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A config file holding an owner session.
fn signed_in() -> PathBuf {
    let path = temp_dir().join("config.json");
    std::fs::write(&path, r#"{"token": "ses_owner"}"#).unwrap();
    path
}

async fn aicity(base: &str, config: &Path, args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aicity"));
    command
        .args(["--base-url", base, "--config", config.to_str().unwrap()])
        .args(args)
        .env_remove("AICITY_API_KEY");
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn taken(fake: &Shared) -> Vec<Seen> {
    std::mem::take(&mut fake.lock().unwrap().seen)
}

/// The names in a help text's "Commands:" section.
fn commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| line.trim() != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_help_lists_workflows_and_their_commands() {
    let help = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_aicity"))
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let top = help(&["--help"]);
    assert!(commands(&top).contains(&"workflows".to_owned()), "{top}");
    let text = help(&["workflows", "--help"]);
    let listed = commands(&text);
    for command in ["create", "list", "get", "cancel", "watch"] {
        assert!(
            listed.contains(&command.to_owned()),
            "{command} missing: {listed:?}\n{text}"
        );
    }
    let create = help(&["workflows", "create", "--help"]);
    for flag in [
        "--name",
        "--step",
        "--agent-for",
        "--file",
        "--idempotency-key",
    ] {
        assert!(create.contains(flag), "{flag} missing:\n{create}");
    }
}

#[tokio::test]
async fn steps_on_the_command_line_become_the_request_body() {
    let (base, fake) = fake_api().await;
    let config = signed_in();

    let (code, out, err) = aicity(
        &base,
        &config,
        &[
            "workflows",
            "create",
            "--name",
            "Full code audit",
            "--step",
            "code_review:500:Review src/auth: the login path",
            "--step",
            "testing:700:Test it",
            "--agent-for",
            "2=ag_t",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("created wf_1\n"), "{out}");
    assert!(out.contains("1. code_review"), "{out}");
    assert!(out.contains("2. testing"), "{out}");

    let seen = taken(&fake);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].who, "Bearer ses_owner");
    assert_eq!(seen[0].request, "POST /api/v1/workflows");
    assert_eq!(
        seen[0].body,
        json!({"name": "Full code audit", "steps": [
            {"taskType": "code_review", "description": "Review src/auth: the login path",
             "maxBudget": 500},
            {"taskType": "testing", "description": "Test it", "maxBudget": 700,
             "agentId": "ag_t"},
        ]})
    );
    let key = seen[0].key.clone().expect("an Idempotency-Key");
    assert!(!key.is_empty());

    // The caller's key, as the agent, and --json.
    let (code, out, err) = aicity(
        &base,
        &config,
        &[
            "--api-key",
            "ac_live_buyer",
            "--json",
            "workflows",
            "create",
            "--name",
            "x",
            "--step",
            "code_review:500:a",
            "--step",
            "code_review:600:b",
            "--idempotency-key",
            "wf-run-7",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed["id"], "wf_1");
    assert_eq!(printed["steps"][1]["status"], "waiting");
    let seen = taken(&fake);
    assert_eq!(seen[0].who, "key:ac_live_buyer");
    assert_eq!(seen[0].key.as_deref(), Some("wf-run-7"));
    assert_ne!(seen[0].key.as_deref(), Some(key.as_str()));
}

#[tokio::test]
async fn a_file_holds_the_whole_request() {
    let (base, fake) = fake_api().await;
    let config = signed_in();
    let file = temp_dir().join("steps.json");
    let body = json!({"name": "From a file", "steps": [
        {"taskType": "code_review", "description": "Review", "maxBudget": 500,
         "input": {"repo": "https://github.com/o/r"}},
        {"taskType": "testing", "description": "Test", "maxBudget": 700, "agentId": "ag_t"},
    ]});
    std::fs::write(&file, body.to_string()).unwrap();

    let (code, out, err) = aicity(
        &base,
        &config,
        &["workflows", "create", "--file", file.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let seen = taken(&fake);
    assert_eq!(seen[0].request, "POST /api/v1/workflows");
    assert_eq!(seen[0].body, body);

    // Not a workflow: said so, nothing sent.
    std::fs::write(&file, r#"{"name": "x", "stepz": []}"#).unwrap();
    let (code, _, err) = aicity(
        &base,
        &config,
        &["workflows", "create", "--file", file.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("not a workflow"), "{err}");
    // A file and steps at once: refused by the parser.
    let (code, _, err) = aicity(
        &base,
        &config,
        &[
            "workflows",
            "create",
            "--file",
            file.to_str().unwrap(),
            "--step",
            "code_review:5:a",
        ],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(taken(&fake).is_empty());
}

#[tokio::test]
async fn bad_steps_are_refused_before_anything_is_sent() {
    let (base, fake) = fake_api().await;
    let config = signed_in();
    for (args, said) in [
        (
            vec!["--name", "x", "--step", "code_review:12.50:a"],
            "whole cents",
        ),
        (vec!["--name", "x", "--step", "code_review"], "<taskType>"),
        (
            vec![
                "--name",
                "x",
                "--step",
                "code_review:5:a",
                "--agent-for",
                "two=ag_1",
            ],
            "numbered from 1",
        ),
        (vec!["--step", "code_review:5:a"], "--name"),
    ] {
        let mut all = vec!["workflows", "create"];
        all.extend(args);
        let (code, _, err) = aicity(&base, &config, &all).await;
        assert_eq!(code, 2, "{all:?}: {err}");
        assert!(err.contains(said), "{all:?}: {err}");
    }
    let (code, _, err) = aicity(
        &base,
        &config,
        &[
            "workflows",
            "create",
            "--name",
            "x",
            "--step",
            "code_review:5:a",
            "--step",
            "testing:5:b",
            "--agent-for",
            "3=ag_1",
        ],
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("only 2 steps"), "{err}");
    let (code, _, err) = aicity(&base, &config, &["workflows", "list", "--status", "done"]).await;
    assert_eq!(code, 2);
    assert!(
        err.contains("active, completed, failed, cancelled"),
        "{err}"
    );
    assert!(taken(&fake).is_empty());
}

#[tokio::test]
async fn list_get_and_cancel_hit_their_routes() {
    let (base, fake) = fake_api().await;
    let config = signed_in();

    let (code, out, err) = aicity(
        &base,
        &config,
        &["workflows", "list", "--status", "failed", "--page", "2"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("wf_1  failed"), "{out}");
    assert!(out.contains("(page 2 of 2, 21 in all)"), "{out}");
    let (code, out, _) = aicity(&base, &config, &["--json", "workflows", "list"]).await;
    assert_eq!(code, 0);
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed[0]["failedStep"], 2);

    let (code, out, err) = aicity(&base, &config, &["workflows", "get", "wf_1"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("wf_1  active  Full code audit  budget $12.00"),
        "{out}"
    );
    assert!(out.contains("executing"), "{out}");

    let (code, out, err) = aicity(&base, &config, &["workflows", "cancel", "wf_1"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("wf_1  cancelled"), "{out}");

    let (code, _, err) = aicity(&base, &config, &["workflows", "cancel", "wf_done"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("INVALID_WORKFLOW_STATE (409)"), "{err}");
    assert!(err.contains("aicity workflows get"), "{err}");
    let (code, _, err) = aicity(&base, &config, &["workflows", "get", "wf_nope"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("WORKFLOW_NOT_FOUND (404)"), "{err}");

    let sent: Vec<String> = taken(&fake).into_iter().map(|s| s.request).collect();
    assert_eq!(
        sent,
        [
            "GET /api/v1/workflows?status=failed&page=2",
            "GET /api/v1/workflows",
            "GET /api/v1/workflows/wf_1",
            "POST /api/v1/workflows/wf_1/cancel",
            "POST /api/v1/workflows/wf_done/cancel",
            "GET /api/v1/workflows/wf_nope",
        ]
    );
}

#[tokio::test]
async fn watch_prints_each_move_until_the_workflow_ends() {
    let (base, fake) = fake_api().await;
    let config = signed_in();
    let (code, out, err) = aicity(
        &base,
        &config,
        &["workflows", "watch", "wf_1", "--poll-seconds", "1"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "step 1 code_review: executing",
            "step 2 testing: waiting",
            "workflow active",
            "step 1 code_review: executing → completed",
            "step 2 testing: waiting → routing",
            "step 2 testing: routing → completed",
            "workflow completed: charged $4.25 of $12.00",
        ]
    );
    assert_eq!(fake.lock().unwrap().gets, 3, "stopped once it ended");
}
