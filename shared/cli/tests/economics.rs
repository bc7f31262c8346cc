//! `aicity tasks estimate` and `aicity agents profitability` against a fake of their
//! two routes: the flags reach the query string, the figures are printed.

use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::http::{StatusCode, Uri};
use axum::routing::get;
use serde_json::{Value, json};

type Seen = Arc<Mutex<Vec<String>>>;

async fn api() -> (String, Seen) {
    let seen = Seen::default();
    let (for_estimate, for_profit) = (seen.clone(), seen.clone());
    let app = axum::Router::new()
        .route(
            "/api/v1/tasks/estimate",
            get(move |uri: Uri| async move {
                for_estimate.lock().unwrap().push(uri.to_string());
                axum::Json(json!({"success": true, "data": {
                    "taskType": "code_review", "maxBudget": 2500, "eligibleAgents": 2,
                    "price": {"min": 1000, "p50": 1000, "p90": 2000, "max": 2000},
                    "history": {"completed": 4, "avgCharged": 1750, "avgQualityScore": 84,
                                "avgExecutionTimeMs": 2500}}}))
            }),
        )
        .route(
            "/api/v1/agents/me/profitability",
            get(move |uri: Uri| async move {
                for_profit.lock().unwrap().push(uri.to_string());
                if uri.query().is_some_and(|q| q.contains("period=7d")) {
                    return (
                        StatusCode::BAD_REQUEST,
                        axum::Json(json!({"success": false, "error": {"code": "VALIDATION_ERROR",
                            "message": "Invalid input", "details": {"fields": [{"field": "period", "message": "must be one of 30d, 90d, all"}]}}})),
                    );
                }
                let line = json!({"tasks": 2, "revenue": 2000, "fees": 150, "refunds": 1000, "net": 850});
                (
                    StatusCode::OK,
                    axum::Json(json!({"success": true, "data": {
                        "agentId": "ag_1", "period": "90d", "since": "2026-01-01",
                        "categories": {"code_review": line}, "totals": line}})),
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

fn aicity(base: &str, args: &[&str]) -> (i32, String, String) {
    let config = std::env::temp_dir()
        .join(format!("aicity-cli-test-{}", ulid::Ulid::generate()))
        .join("config.json");
    let output = Command::new(env!("CARGO_BIN_EXE_aicity"))
        .args(["--base-url", base, "--config", config.to_str().unwrap()])
        .args(["--api-key", "ac_live_x"])
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

async fn run(base: &str, args: &'static [&'static str]) -> (i32, String, String) {
    let base = base.to_owned();
    tokio::task::spawn_blocking(move || aicity(&base, args))
        .await
        .unwrap()
}

#[tokio::test]
async fn estimate_and_profitability_pass_their_flags_and_print_the_figures() {
    let (base, seen) = api().await;
    let (code, out, err) = run(
        &base,
        &[
            "tasks",
            "estimate",
            "--type",
            "code_review",
            "--max-budget",
            "2500",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("code_review within a budget of $25.00: 2 eligible agents"),
        "{out}"
    );
    assert!(out.contains("p90 $20.00"), "{out}");
    let (code, out, err) = run(
        &base,
        &["--json", "agents", "profitability", "--period", "90d"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["totals"]["net"], 850);
    let (code, out, err) = run(&base, &["agents", "profitability"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("total"), "{out}");
    let (code, _, err) = run(&base, &["agents", "profitability", "--period", "7d"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("period"), "{err}");
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "/api/v1/tasks/estimate?taskType=code_review&maxBudget=2500",
            "/api/v1/agents/me/profitability?period=90d",
            "/api/v1/agents/me/profitability?period=30d",
            "/api/v1/agents/me/profitability?period=7d",
        ]
    );
}
