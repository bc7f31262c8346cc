//! `tasks watch` reads the stream from `--stream-url` / `AICITY_STREAM_URL` (the stack's
//! `StreamUrl`) when given, from `--base-url` otherwise, and `tasks list` passes its
//! paging on.

use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::Value;

type Seen = Arc<Mutex<Vec<String>>>;

/// Records each request's path and query; answers a stream path with a finished task's
/// events and anything else with an empty page.
async fn answer(State(seen): State<Seen>, request: Request) -> axum::response::Response {
    let uri = request.uri();
    seen.lock()
        .unwrap()
        .push(uri.path_and_query().unwrap().to_string());
    if uri.path().ends_with("/stream") {
        (
            StatusCode::OK,
            [("content-type", "text/event-stream")],
            "id: 1\nevent: status\ndata: {\"status\":\"executing\"}\n\nid: 2\nevent: complete\ndata: {\"status\":\"completed\"}\n\n",
        )
            .into_response()
    } else {
        axum::Json(
            serde_json::json!({"success": true, "data": [], "pagination":
            {"page": 2, "pageSize": 5, "total": 5, "totalPages": 1, "nextCursor": null}}),
        )
        .into_response()
    }
}

async fn server() -> (String, Seen) {
    let seen = Seen::default();
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

fn aicity(base: &str, args: &[&str], stream_env: Option<&str>) -> (i32, String, String) {
    let config = std::env::temp_dir()
        .join(format!("aicity-cli-test-{}", ulid::Ulid::generate()))
        .join("config.json");
    let mut command = Command::new(env!("CARGO_BIN_EXE_aicity"));
    command
        .args(["--base-url", base, "--config", config.to_str().unwrap()])
        .args(["--api-key", "ac_live_k", "--json"])
        .args(args)
        .env_remove("AICITY_API_KEY")
        .env_remove("AICITY_STREAM_URL");
    if let Some(url) = stream_env {
        command.env("AICITY_STREAM_URL", url);
    }
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn events(out: &str) -> Vec<String> {
    out.lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap();
            event["event"].as_str().unwrap().to_owned()
        })
        .collect()
}

async fn run(base: String, args: Vec<String>, env: Option<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        aicity(&base, &args, env.as_deref())
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn watch_reads_the_stream_url_when_given() {
    let (api, api_seen) = server().await;
    let (stream, stream_seen) = server().await;
    let watch = |extra: &[&str]| {
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        args.extend(["tasks", "watch", "task_1"].map(String::from));
        args
    };

    // The flag.
    let (code, out, err) = run(
        api.clone(),
        watch(&["--stream-url", &format!("{stream}/")]),
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(events(&out), ["status", "complete"]);
    // The variable.
    let (code, out, err) = run(api.clone(), watch(&[]), Some(stream.clone())).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(events(&out), ["status", "complete"]);
    assert_eq!(
        *stream_seen.lock().unwrap(),
        ["/api/v1/tasks/task_1/stream", "/api/v1/tasks/task_1/stream"]
    );
    assert!(api_seen.lock().unwrap().is_empty(), "{api_seen:?}");

    // Neither: the base URL.
    let (code, out, err) = run(api.clone(), watch(&[]), None).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(events(&out), ["status", "complete"]);
    assert_eq!(*api_seen.lock().unwrap(), ["/api/v1/tasks/task_1/stream"]);
}

#[tokio::test]
async fn tasks_list_passes_page_page_size_and_cursor() {
    let (api, seen) = server().await;
    let args = "tasks list --status completed --page 2 --page-size 5"
        .split(' ')
        .map(String::from)
        .collect();
    let (code, out, err) = run(api.clone(), args, None).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "[]");
    let args = "tasks list --role assigned --page-size 100 --cursor eyJ="
        .split(' ')
        .map(String::from)
        .collect();
    let (code, _, err) = run(api, args, None).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "/api/v1/tasks?status=completed&page=2&pageSize=5",
            "/api/v1/tasks?role=assigned&pageSize=100&cursor=eyJ%3D"
        ]
    );
}
