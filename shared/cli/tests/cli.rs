//! The `aicity` binary against a local fake of the API: help, sign-in keeping the
//! session in a 0600 file, authenticated reads, `--json`, and clear error messages.

use std::path::PathBuf;
use std::process::Command;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};

async fn fake_api() -> String {
    let app = axum::Router::new()
        .route(
            "/api/v1/auth/sign-in",
            post(|| async {
                axum::Json(json!({"success": true, "data": {
                    "token": "ses_secret", "session": {"token": "ses_secret", "expiresAt": "2026-12-01T00:00:00Z"},
                    "user": {"id": "usr_1", "name": "Riley", "email": "riley@example.com"}}}))
            }),
        )
        .route(
            "/api/v1/vault/pool",
            get(|headers: HeaderMap| async move {
                if headers.get("authorization").map(|v| v.as_bytes()) != Some(b"Bearer ses_secret") {
                    return (StatusCode::UNAUTHORIZED, axum::Json(json!({"success": false, "error": {"code": "UNAUTHORIZED", "message": "Authentication required", "details": {}}})));
                }
                (StatusCode::OK, axum::Json(json!({"success": true, "data": {"balance": 12345, "held": 345, "available": 12000}})))
            }),
        )
        .route(
            "/api/v1/agents/me",
            get(|| async { axum::Json(json!({"success": true, "data": {"id": "ag_1", "displayName": "Runner"}})) }),
        )
        .route(
            "/api/v1/tasks/submitted",
            get(|| async { axum::Json(json!({"success": true, "data": []})) }),
        )
        .route(
            "/api/v1/tasks",
            post(|| async {
                (StatusCode::PAYMENT_REQUIRED, axum::Json(json!({"success": false, "error": {"code": "INSUFFICIENT_CREDITS", "message": "Not enough credits in the pool for this budget", "details": {"required": 5000, "available": 100}}})))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn config_path() -> PathBuf {
    std::env::temp_dir()
        .join(format!("aicity-cli-test-{}", ulid::Ulid::generate()))
        .join("config.json")
}

fn aicity(base: &str, config: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_aicity"))
        .args(["--base-url", base, "--config", config.to_str().unwrap()])
        .args(args)
        .env_remove("AICITY_API_KEY")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn help_lists_the_commands() {
    let output = Command::new(env!("CARGO_BIN_EXE_aicity"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    // The names in the "Commands:" section, each the first word of its line (so
    // `agent` is not found inside `agents`).
    let listed: Vec<&str> = text
        .lines()
        .skip_while(|line| line.trim() != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    for command in [
        "sign-up", "sign-in", "sign-out", "agents", "vault", "tasks", "agent", "embassy",
        "webhooks",
    ] {
        assert!(
            listed.contains(&command),
            "{command} missing from the commands in --help {listed:?}:\n{text}"
        );
    }
}

#[tokio::test]
async fn sign_in_keeps_the_session_private_and_later_commands_use_it() {
    let base = fake_api().await;
    let config = config_path();
    let (code, out, err) = tokio::task::spawn_blocking({
        let (base, config) = (base.clone(), config.clone());
        move || {
            aicity(
                &base,
                &config,
                &[
                    "sign-in",
                    "--email",
                    "riley@example.com",
                    "--password",
                    "pw",
                ],
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("signed in as riley@example.com"));
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(saved["token"], "ses_secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    let (code, out, _) = tokio::task::spawn_blocking({
        let (base, config) = (base.clone(), config.clone());
        move || aicity(&base, &config, &["vault", "pool"])
    })
    .await
    .unwrap();
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "balance $123.45  held $3.45  available $120.00");

    let (code, out, _) = tokio::task::spawn_blocking({
        let (base, config) = (base.clone(), config.clone());
        move || aicity(&base, &config, &["--json", "vault", "pool"])
    })
    .await
    .unwrap();
    assert_eq!(code, 0);
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["available"], 12000);
}

#[tokio::test]
async fn errors_say_what_went_wrong_and_what_to_do() {
    let base = fake_api().await;
    let config = config_path();
    let (code, _, err) = tokio::task::spawn_blocking({
        let (base, config) = (base.clone(), config.clone());
        move || aicity(&base, &config, &["vault", "pool"])
    })
    .await
    .unwrap();
    assert_eq!(code, 1);
    assert!(err.contains("needs an owner token"), "{err}");

    let (code, _, err) = tokio::task::spawn_blocking({
        let (base, config) = (base.clone(), config.clone());
        move || {
            aicity(
                &base,
                &config,
                &[
                    "--api-key",
                    "ac_live_x",
                    "tasks",
                    "submit",
                    "--type",
                    "code_review",
                    "--budget",
                    "5000",
                    "--description",
                    "d",
                ],
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code, 1);
    assert!(err.contains("INSUFFICIENT_CREDITS (402)"), "{err}");
    assert!(
        err.contains("required 5000 cents, available 100 cents"),
        "{err}"
    );
    assert!(err.contains("hint: top up the pool"), "{err}");

    // Nothing listens here: a port just bound and let go.
    let nowhere = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    // An agent key does not stand in for an owner: refused before any call is made.
    let (code, _, err) = tokio::task::spawn_blocking({
        let (nowhere, config) = (nowhere.clone(), config.clone());
        move || aicity(&nowhere, &config, &["--api-key", "k", "agents", "list"])
    })
    .await
    .unwrap();
    assert_eq!(code, 1);
    assert!(err.contains("needs an owner token"), "{err}");
    assert!(!err.contains("cannot reach the API"), "{err}");

    // An agent call to an API that is not there.
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        aicity(&nowhere, &config, &["--api-key", "k", "vault", "wallet"])
    })
    .await
    .unwrap();
    assert_eq!(code, 1);
    assert!(err.contains("cannot reach the API"), "{err}");
    assert!(err.contains("Is it running? (make dev)"), "{err}");
}

const TASK_A: &str = "task_01JQ3Z8X4Y2K7M9N0P1R2S3T4A";
const TASK_B: &str = "task_01JQ3Z8X4Y2K7M9N0P1R2S3T4B";
const RUNNER: &str = "ag_01JQ3Z8X4Y2K7M9N0P1R2S3T4W";

/// What the runner's fake API was asked (`METHOD /path` and body), and each task's
/// status as the fake keeps it.
#[derive(Default)]
struct RunnerSeen {
    requests: Vec<(String, Value)>,
    status: std::collections::HashMap<String, String>,
}

type Runner = std::sync::Arc<std::sync::Mutex<RunnerSeen>>;

fn runner_task(id: &str, status: &str) -> Value {
    json!({"id": id, "taskType": "code_review", "status": status,
        "input": {"description": "Review"}, "maxBudget": 4000, "agentId": RUNNER,
        "callerOwnerId": "usr_01JQ3Z8X4Y2K7M9N0P1R2S3T4X", "directHire": false,
        "routingAttempts": 0, "createdAt": "2026-03-01T10:00:00Z",
        "updatedAt": "2026-03-01T10:05:00Z"})
}

/// The agent's side of the API: two tasks waiting (A, then B), and the calls that work
/// one (sandbox, executing, progress, complete or fail, sandbox deleted).
async fn runner_api() -> (String, Runner) {
    async fn handle(
        axum::extract::State(seen): axum::extract::State<Runner>,
        method: axum::http::Method,
        uri: axum::http::Uri,
        body: String,
    ) -> axum::Json<Value> {
        let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let path = uri.path().trim_start_matches("/api/v1").to_owned();
        let mut seen = seen.lock().unwrap();
        seen.requests.push((format!("{method} {path}"), body));
        let data = match (method.as_str(), path.as_str()) {
            ("GET", "/agents/me") => json!({"id": RUNNER, "displayName": "Runner"}),
            ("GET", "/tasks/submitted") => [TASK_A, TASK_B]
                .iter()
                .filter(|id| seen.status[**id] == "submitted")
                .map(|id| runner_task(id, "submitted"))
                .collect(),
            (_, path) => {
                let rest = path.strip_prefix("/tasks/").unwrap_or_default();
                let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
                let next = match (method.as_str(), action) {
                    ("POST", "sandbox") => {
                        return axum::Json(
                            json!({"success": true, "data": {"sandboxId": "sbx_1"}}),
                        );
                    }
                    ("DELETE", "sandbox/sbx_1") => {
                        return axum::Json(json!({"success": true, "data": {"destroyed": true}}));
                    }
                    ("POST", "progress") => {
                        return axum::Json(json!({"success": true, "data": {}}));
                    }
                    ("POST", "executing") => "executing",
                    ("POST", "complete") => "quality_check",
                    ("POST", "fail") => "failed",
                    _ => panic!("unexpected {method} {path}"),
                };
                seen.status.insert(id.to_owned(), next.to_owned());
                runner_task(id, next)
            }
        };
        axum::Json(json!({"success": true, "data": data}))
    }
    let seen: Runner = Default::default();
    for id in [TASK_A, TASK_B] {
        seen.lock()
            .unwrap()
            .status
            .insert(id.to_owned(), "submitted".to_owned());
    }
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

/// Waits until `done` holds; fails after `limit` with `what`.
async fn wait_until(limit: std::time::Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_agent_runner_finishes_the_task_in_hand_on_sigterm_then_stops() {
    let (base, seen) = runner_api().await;
    let config = config_path();
    let marks = config.parent().unwrap().to_owned();
    std::fs::create_dir_all(&marks).unwrap();
    let (started, release) = (marks.join("started"), marks.join("release"));
    // The command says it has begun, then works until the test lets it finish.
    let exec = format!(
        "touch '{}'; while [ ! -e '{}' ]; do sleep 0.05; done; echo '{{\"review\": \"finished\"}}'",
        started.display(),
        release.display()
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_aicity"))
        .args([
            "--base-url",
            &base,
            "--config",
            config.to_str().unwrap(),
            "--api-key",
            "ac_live_x",
        ])
        .args(["agent", "run", "--poll-seconds", "1", "--exec", &exec])
        .env_remove("AICITY_API_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let stderr_lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let reader = std::thread::spawn({
        let stderr_lines = stderr_lines.clone();
        move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                stderr_lines.lock().unwrap().push(line);
            }
        }
    });
    let limit = std::time::Duration::from_secs(20);

    // Task A is in hand: its command is running.
    wait_until(limit, "the command of task A never started", || {
        started.exists()
    })
    .await;
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_until(limit, "the runner never acknowledged SIGTERM", || {
        stderr_lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("stopping after the task in hand"))
    })
    .await;
    // Still at work on A: not gone, and A neither completed nor failed yet.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the runner left with the task in hand"
    );
    assert_eq!(seen.lock().unwrap().status[TASK_A], "executing");

    // The command finishes: the runner completes A with its output, cleans up, exits.
    std::fs::write(&release, b"").unwrap();
    let mut status = None;
    wait_until(limit, "the runner did not stop", || {
        status = child.try_wait().unwrap();
        status.is_some()
    })
    .await;
    let status = status.unwrap();
    reader.join().unwrap();
    let stderr = stderr_lines.lock().unwrap().join("\n");
    assert!(status.success(), "{status:?}\n{stderr}");
    let mut stdout = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert_eq!(stdout.trim(), format!("completed {TASK_A}"), "{stderr}");
    assert!(stderr.contains("running as \"Runner\""), "{stderr}");

    let seen = seen.lock().unwrap();
    let requests: Vec<&str> = seen.requests.iter().map(|(r, _)| r.as_str()).collect();
    let complete = seen
        .requests
        .iter()
        .find(|(r, _)| *r == format!("POST /tasks/{TASK_A}/complete"))
        .unwrap_or_else(|| panic!("task A was not completed: {requests:#?}"));
    assert_eq!(complete.1["output"], json!({"review": "finished"}));
    assert!(
        requests.contains(&format!("DELETE /tasks/{TASK_A}/sandbox/sbx_1").as_str()),
        "{requests:#?}"
    );
    assert!(
        !requests.iter().any(|r| r.ends_with("/fail")),
        "nothing failed: {requests:#?}"
    );
    // Stopped after A: B, waiting too, was never started.
    assert_eq!(seen.status[TASK_A], "quality_check");
    assert_eq!(seen.status[TASK_B], "submitted", "{requests:#?}");
    assert!(
        !requests.iter().any(|r| r.contains(TASK_B)),
        "{requests:#?}"
    );
}

/// A fake of the two template routes, serving the domain's own templates.
async fn templates_api() -> String {
    use aicity_domain::identity::Category;
    use aicity_domain::task::templates;
    let app = axum::Router::new()
        .route(
            "/api/v1/tasks/templates",
            get(|| async { axum::Json(json!({"success": true, "data": templates::all()})) }),
        )
        .route(
            "/api/v1/tasks/templates/{task_type}",
            get(|axum::extract::Path(task_type): axum::extract::Path<String>| async move {
                match Category::parse(&task_type) {
                    Some(c) => (StatusCode::OK, axum::Json(json!({"success": true, "data": templates::template(c)}))),
                    None => (StatusCode::NOT_FOUND, axum::Json(json!({"success": false, "error": {"code": "TEMPLATE_NOT_FOUND", "message": "No task type", "details": {}}}))),
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test]
async fn tasks_templates_lists_every_type_or_shows_one() {
    let base = templates_api().await;
    let config = config_path();
    let run = |args: &'static [&'static str]| {
        let (base, config) = (base.clone(), config.clone());
        tokio::task::spawn_blocking(move || {
            let mut all = vec!["--api-key", "ac_live_x"];
            all.extend_from_slice(args);
            aicity(&base, &config, &all)
        })
    };
    let (code, out, err) = run(&["tasks", "templates"]).await.unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("bug_fix  Find and fix a bug"), "{out}");
    assert!(
        out.contains("    description: text  What the agent should do"),
        "{out}"
    );
    assert!(out.contains("    wordCount?: integer"), "{out}");

    let (code, out, err) = run(&["--json", "tasks", "templates", "bug_fix"])
        .await
        .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["taskType"], "bug_fix");
    assert_eq!(shown["output"]["fields"][0]["name"], "fix");
    assert_eq!(shown["fields"][5]["type"], "text");

    let (code, out, err) = run(&["tasks", "templates", "cooking"]).await.unwrap();
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("TEMPLATE_NOT_FOUND") || err.contains("No task type"),
        "{err}"
    );
}
