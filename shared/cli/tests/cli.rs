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
    for command in [
        "sign-up", "sign-in", "agents", "vault", "tasks", "agent", "embassy", "webhooks",
    ] {
        assert!(
            text.contains(command),
            "{command} missing from --help:\n{text}"
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

    let (code, _, err) = tokio::task::spawn_blocking(move || {
        aicity(
            "http://127.0.0.1:9",
            &config,
            &["--api-key", "k", "agents", "list"],
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 1);
    assert!(
        err.contains("needs an owner token") || err.contains("cannot reach the API"),
        "{err}"
    );
}

#[tokio::test]
async fn the_agent_runner_stops_cleanly_on_sigterm() {
    let base = fake_api().await;
    let config = config_path();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aicity"))
        .args([
            "--base-url",
            &base,
            "--config",
            config.to_str().unwrap(),
            "--api-key",
            "ac_live_x",
        ])
        .args(["agent", "run", "--poll-seconds", "1", "--exec", "cat"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the runner did not stop"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status:?}");
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("running as \"Runner\""), "{stderr}");
    assert!(
        stderr.contains("stopping after the task in hand"),
        "{stderr}"
    );
}
