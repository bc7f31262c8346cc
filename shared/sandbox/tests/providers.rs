//! Both sandbox providers: local on a real directory, E2B against a local fake.

use std::sync::{Arc, Mutex};

use aicity_domain::ids::TaskId;
use aicity_domain::task::model::{InputFile, TaskInput};
use aicity_sandbox::{E2bSandboxes, LocalSandboxes, SandboxProvider};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, post};

fn input() -> TaskInput {
    TaskInput {
        description: "Review".into(),
        repo: None,
        code: Some("fn main() {}".into()),
        files: vec![
            InputFile {
                name: "auth.rs".into(),
                content: "fn check() {}".into(),
            },
            InputFile {
                name: "db.rs".into(),
                content: "fn query() {}".into(),
            },
        ],
    }
}

#[tokio::test]
async fn a_local_sandbox_is_a_private_directory_with_the_input() {
    let root = std::env::temp_dir().join(format!("aicity-sandbox-test-{}", ulid::Ulid::generate()));
    let provider = LocalSandboxes::new(&root);
    let task = TaskId::new();
    let sandbox = provider.create(&task, &input()).await.unwrap();
    assert!(sandbox.id.starts_with("sbx_"));
    let dir = provider.path_of(&sandbox.id).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("input/auth.rs")).unwrap(),
        "fn check() {}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("code.txt")).unwrap(),
        "fn main() {}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("task.json")).unwrap()).unwrap();
    assert_eq!(manifest["taskId"], task.to_string());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
    let other = provider.create(&TaskId::new(), &input()).await.unwrap();
    assert_ne!(other.id, sandbox.id, "one sandbox per call, isolated");

    assert!(provider.destroy(&sandbox.id).await.unwrap());
    assert!(!dir.exists());
    assert!(
        !provider.destroy(&sandbox.id).await.unwrap(),
        "nothing left to destroy"
    );
    assert!(provider.destroy("../../etc").await.is_err(), "never a path");

    let mut bad = input();
    bad.files[0].name = "../escape".into();
    assert!(provider.create(&TaskId::new(), &bad).await.is_err());
    std::fs::remove_dir_all(root).ok();
}

#[derive(Default, Clone)]
struct Seen(Arc<Mutex<Vec<String>>>);

async fn created(
    State(seen): State<Seen>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    if headers.get("x-api-key").map(|v| v.as_bytes()) != Some(b"e2b_key") {
        return (StatusCode::UNAUTHORIZED, "{}".into());
    }
    seen.0.lock().unwrap().push(body);
    (
        StatusCode::CREATED,
        r#"{"sandboxID":"isb123","clientID":"c1","templateID":"base"}"#.into(),
    )
}

async fn deleted(Path(id): Path<String>) -> StatusCode {
    if id == "isb123" {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

#[tokio::test]
async fn e2b_sandboxes_are_created_and_destroyed_over_its_api() {
    let seen = Seen::default();
    let app = axum::Router::new()
        .route("/sandboxes", post(created))
        .route("/sandboxes/{id}", delete(deleted))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let provider = E2bSandboxes::new(&base, "e2b_key", "base");
    let task = TaskId::new();
    let sandbox = provider.create(&task, &input()).await.unwrap();
    assert_eq!(sandbox.id, "isb123");
    let body: serde_json::Value = serde_json::from_str(&seen.0.lock().unwrap()[0]).unwrap();
    assert_eq!(body["templateID"], "base");
    assert_eq!(body["metadata"]["taskId"], task.to_string());
    assert!(provider.destroy("isb123").await.unwrap());
    assert!(!provider.destroy("gone").await.unwrap());
    assert!(provider.destroy("../x").await.is_err());

    let wrong_key = E2bSandboxes::new(&base, "nope", "base");
    assert!(matches!(
        wrong_key.create(&task, &input()).await,
        Err(aicity_sandbox::SandboxError::NotConfigured(_))
    ));
}
