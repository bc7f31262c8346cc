//! Both sandbox providers: local on a real directory, E2B against a local fake.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aicity_domain::ids::TaskId;
use aicity_domain::task::model::{InputFile, TaskInput};
use aicity_sandbox::{E2bSandboxes, LocalSandboxes, SandboxError, SandboxProvider};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, post};
use serde_json::{Value, json};

fn input() -> TaskInput {
    TaskInput {
        previous_output: None,
        fields: Default::default(),
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
    let sandbox = provider
        .create(&task, "code_review", &input())
        .await
        .unwrap();
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
    assert_eq!(manifest["taskType"], "code_review");

    // The agent is told where the directory is: absolute, the very one above.
    let answer = sandbox.answer();
    assert_eq!(answer["sandboxId"], sandbox.id);
    assert_eq!(answer["provider"], "local");
    assert!(std::path::Path::new(answer["workdir"].as_str().unwrap()).is_absolute());
    assert_eq!(answer["local"]["path"], answer["workdir"]);
    assert_eq!(
        std::fs::canonicalize(answer["workdir"].as_str().unwrap()).unwrap(),
        std::fs::canonicalize(&dir).unwrap()
    );
    assert!(answer.get("e2b").is_none());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
    let other = provider
        .create(&TaskId::new(), "code_review", &input())
        .await
        .unwrap();
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
    assert!(
        provider
            .create(&TaskId::new(), "code_review", &bad)
            .await
            .is_err()
    );
    std::fs::remove_dir_all(root).ok();
}

/// One sandbox of the fake: its envd token and its filesystem.
struct FakeSandbox {
    token: String,
    template: String,
    files: BTreeMap<String, Vec<u8>>,
}

/// A strict fake of E2B: the control plane (`POST /sandboxes`, `DELETE
/// /sandboxes/{id}`, the API key checked on every call) and envd (`POST /files`,
/// routed by `E2b-Sandbox-Id` as E2B's sandbox proxy does, the sandbox's access token
/// checked on every call, the multipart body parsed as envd parses it).
#[derive(Default, Clone)]
struct FakeE2b {
    sandboxes: Arc<Mutex<HashMap<String, FakeSandbox>>>,
    created: Arc<Mutex<Vec<Value>>>,
    calls: Arc<Mutex<u32>>,
}

const KEY: &str = "e2b_key";

fn e2b_error(status: StatusCode, message: &str) -> (StatusCode, String) {
    (
        status,
        json!({"code": status.as_u16(), "message": message}).to_string(),
    )
}

fn key_ok(headers: &HeaderMap) -> bool {
    headers.get("x-api-key").map(|v| v.as_bytes()) == Some(KEY.as_bytes())
}

async fn e2b_create(
    State(fake): State<FakeE2b>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    *fake.calls.lock().unwrap() += 1;
    if !key_ok(&headers) {
        return e2b_error(StatusCode::UNAUTHORIZED, "Invalid API key");
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return e2b_error(StatusCode::BAD_REQUEST, "invalid JSON");
    };
    let Some(template) = body["templateID"].as_str().map(str::to_owned) else {
        return e2b_error(StatusCode::BAD_REQUEST, "templateID is required");
    };
    fake.created.lock().unwrap().push(body.clone());
    let id = format!("i{}", ulid::Ulid::generate().to_string().to_lowercase());
    let token = format!("tok_{}", ulid::Ulid::generate());
    fake.sandboxes.lock().unwrap().insert(
        id.clone(),
        FakeSandbox {
            token: token.clone(),
            template: template.clone(),
            files: BTreeMap::new(),
        },
    );
    (
        StatusCode::CREATED,
        json!({
            "sandboxID": id, "clientID": "c1", "templateID": template,
            "envdVersion": "0.2.0", "envdAccessToken": token, "domain": null,
        })
        .to_string(),
    )
}

async fn e2b_delete(
    State(fake): State<FakeE2b>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    *fake.calls.lock().unwrap() += 1;
    if !key_ok(&headers) {
        return e2b_error(StatusCode::UNAUTHORIZED, "Invalid API key");
    }
    match fake.sandboxes.lock().unwrap().remove(&id) {
        Some(_) => (StatusCode::NO_CONTENT, String::new()),
        None => e2b_error(
            StatusCode::NOT_FOUND,
            &format!("sandbox \"{id}\" not found"),
        ),
    }
}

/// The `file` parts of a multipart body: (file name, content). `None` when the body
/// is not well-formed multipart.
fn parts(body: &[u8], boundary: &str) -> Option<Vec<(String, Vec<u8>)>> {
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let delimiter = format!("\r\n--{boundary}");
    let mut rest = body.strip_prefix(format!("--{boundary}\r\n").as_bytes())?;
    let mut out = Vec::new();
    loop {
        let end = find(rest, delimiter.as_bytes())?;
        let part = &rest[..end];
        let head_end = find(part, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&part[..head_end]).ok()?;
        let disposition = head
            .split("\r\n")
            .find_map(|l| l.strip_prefix("Content-Disposition: "))?;
        let filename = disposition
            .strip_prefix("form-data; name=\"file\"; filename=\"")?
            .strip_suffix('"')?
            .replace("\\\"", "\"");
        out.push((filename, part[head_end + 4..].to_vec()));
        rest = &rest[end + delimiter.len()..];
        if rest == b"--\r\n" || rest == b"--" {
            return Some(out);
        }
        rest = rest.strip_prefix(b"\r\n")?;
    }
}

async fn envd_files(
    State(fake): State<FakeE2b>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, String) {
    *fake.calls.lock().unwrap() += 1;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut sandboxes = fake.sandboxes.lock().unwrap();
    let Some(sandbox) = header("e2b-sandbox-id").and_then(|id| sandboxes.get_mut(id)) else {
        return e2b_error(StatusCode::BAD_GATEWAY, "sandbox not found");
    };
    if header("e2b-sandbox-port") != Some("49983") {
        return e2b_error(StatusCode::BAD_GATEWAY, "no service on that port");
    }
    if header("x-access-token") != Some(sandbox.token.as_str()) {
        return e2b_error(StatusCode::UNAUTHORIZED, "invalid access token");
    }
    if query.get("username").map(String::as_str) != Some("user") {
        return e2b_error(StatusCode::UNAUTHORIZED, "invalid user");
    }
    if sandbox.template == "full-disk" {
        return e2b_error(StatusCode::INSUFFICIENT_STORAGE, "not enough disk space");
    }
    let Some(boundary) =
        header("content-type").and_then(|ct| ct.strip_prefix("multipart/form-data; boundary="))
    else {
        return e2b_error(StatusCode::BAD_REQUEST, "unsupported content type");
    };
    let Some(parts) = parts(&body, boundary) else {
        return e2b_error(StatusCode::INTERNAL_SERVER_ERROR, "error reading form");
    };
    let mut written = Vec::new();
    for (path, content) in parts {
        if !path.starts_with('/') || path.contains("/../") {
            return e2b_error(StatusCode::BAD_REQUEST, "error resolving path");
        }
        if written.iter().any(|w: &Value| w["path"] == path) {
            return e2b_error(StatusCode::BAD_REQUEST, "same path twice in one upload");
        }
        let name = path.rsplit('/').next().unwrap_or_default().to_owned();
        written.push(json!({"path": path, "name": name, "type": "file"}));
        sandbox.files.insert(path, content);
    }
    (StatusCode::OK, Value::Array(written).to_string())
}

async fn fake_e2b() -> (FakeE2b, String) {
    let fake = FakeE2b::default();
    let app = axum::Router::new()
        .route("/sandboxes", post(e2b_create))
        .route("/sandboxes/{id}", delete(e2b_delete))
        .route("/files", post(envd_files))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, base)
}

fn file(fake: &FakeE2b, sandbox: &str, path: &str) -> Option<String> {
    let sandboxes = fake.sandboxes.lock().unwrap();
    let bytes = sandboxes.get(sandbox)?.files.get(path)?.clone();
    Some(String::from_utf8(bytes).unwrap())
}

#[tokio::test]
async fn an_e2b_sandbox_holds_the_task_and_its_input_files() {
    let (fake, base) = fake_e2b().await;
    let provider = E2bSandboxes::new(&base, KEY, "base").with_sandbox_url(&base);
    let task = TaskId::new();
    let sandbox = provider
        .create(&task, "code_review", &input())
        .await
        .unwrap();

    let body = fake.created.lock().unwrap()[0].clone();
    assert_eq!(body["templateID"], "base");
    assert_eq!(body["metadata"]["taskId"], task.to_string());
    assert_eq!(
        body["secure"], true,
        "envd answers only with the sandbox's token"
    );

    // What the local provider writes, under /home/user/task, byte for byte.
    assert_eq!(
        file(&fake, &sandbox.id, "/home/user/task/input/auth.rs").as_deref(),
        Some("fn check() {}")
    );
    assert_eq!(
        file(&fake, &sandbox.id, "/home/user/task/input/db.rs").as_deref(),
        Some("fn query() {}")
    );
    assert_eq!(
        file(&fake, &sandbox.id, "/home/user/task/code.txt").as_deref(),
        Some("fn main() {}")
    );
    let manifest: Value =
        serde_json::from_str(&file(&fake, &sandbox.id, "/home/user/task/task.json").unwrap())
            .unwrap();
    assert_eq!(manifest["taskId"], task.to_string());
    assert_eq!(manifest["taskType"], "code_review");
    assert_eq!(manifest["sandboxId"], sandbox.id);

    // The agent gets what it needs to reach envd: the URL, the token of this one
    // sandbox, the user; never the API key.
    let answer = sandbox.answer();
    assert_eq!(answer["sandboxId"], sandbox.id);
    assert_eq!(answer["provider"], "e2b");
    assert_eq!(answer["workdir"], "/home/user/task");
    assert_eq!(answer["e2b"]["sandboxId"], sandbox.id);
    assert_eq!(answer["e2b"]["envdUrl"], base.as_str());
    assert_eq!(answer["e2b"]["envdPort"], 49983);
    assert_eq!(answer["e2b"]["user"], "user");
    assert_eq!(
        answer["e2b"]["accessToken"],
        fake.sandboxes.lock().unwrap()[&sandbox.id].token.as_str()
    );
    assert!(!answer.to_string().contains(KEY), "the API key stays home");
    assert!(
        !format!("{sandbox:?}").contains("tok_"),
        "the token is not logged"
    );
    assert_eq!(manifest["input"]["description"], "Review");
    assert_eq!(
        fake.sandboxes.lock().unwrap()[&sandbox.id].files.len(),
        4,
        "nothing else"
    );

    // No code, a file name with a quote and a multi-line content: still exact.
    let mut other = input();
    other.code = None;
    other.files = vec![InputFile {
        name: "say \"hi\".txt".into(),
        content: "line 1\r\n--not a boundary\r\nline 3".into(),
    }];
    let second = provider
        .create(&TaskId::new(), "code_review", &other)
        .await
        .unwrap();
    assert_ne!(second.id, sandbox.id);
    assert_eq!(
        file(&fake, &second.id, "/home/user/task/input/say \"hi\".txt").as_deref(),
        Some("line 1\r\n--not a boundary\r\nline 3")
    );
    assert_eq!(file(&fake, &second.id, "/home/user/task/code.txt"), None);

    assert!(provider.destroy(&sandbox.id).await.unwrap());
    assert!(
        !provider.destroy(&sandbox.id).await.unwrap(),
        "already gone"
    );
    assert!(provider.destroy("../x").await.is_err(), "never a path");
}

#[tokio::test]
async fn e2b_checks_the_key_on_every_call() {
    let (fake, base) = fake_e2b().await;
    let good = E2bSandboxes::new(&base, KEY, "base").with_sandbox_url(&base);
    let sandbox = good
        .create(&TaskId::new(), "code_review", &input())
        .await
        .unwrap();

    let wrong_key = E2bSandboxes::new(&base, "nope", "base").with_sandbox_url(&base);
    assert!(matches!(
        wrong_key
            .create(&TaskId::new(), "code_review", &input())
            .await,
        Err(SandboxError::NotConfigured(_))
    ));
    assert!(
        matches!(
            wrong_key.destroy(&sandbox.id).await,
            Err(SandboxError::NotConfigured(_))
        ),
        "a rejected key is not 'nothing to destroy'"
    );
    assert_eq!(
        fake.sandboxes.lock().unwrap().len(),
        1,
        "nothing made, nothing destroyed"
    );
    assert!(good.destroy(&sandbox.id).await.unwrap());
}

#[tokio::test]
async fn an_e2b_sandbox_that_cannot_take_the_input_is_destroyed_not_handed_out() {
    let (fake, base) = fake_e2b().await;
    let provider = E2bSandboxes::new(&base, KEY, "full-disk").with_sandbox_url(&base);
    let result = provider
        .create(&TaskId::new(), "code_review", &input())
        .await;
    assert!(
        matches!(result, Err(SandboxError::Unavailable(_))),
        "{result:?}"
    );
    assert!(
        fake.sandboxes.lock().unwrap().is_empty(),
        "no leaked sandbox"
    );

    // An unsafe name is refused before E2B is asked for anything.
    let calls = *fake.calls.lock().unwrap();
    let mut bad = input();
    bad.files[0].name = "../escape".into();
    let provider = E2bSandboxes::new(&base, KEY, "base").with_sandbox_url(&base);
    assert!(matches!(
        provider.create(&TaskId::new(), "code_review", &bad).await,
        Err(SandboxError::Invalid(_))
    ));
    assert_eq!(*fake.calls.lock().unwrap(), calls);
}

#[tokio::test]
async fn e2b_without_a_key_answers_not_configured_instead_of_failing_to_start() {
    let provider = aicity_sandbox::Unconfigured::default_e2b();
    assert_eq!(provider.name(), "e2b");
    assert!(matches!(
        provider
            .create(&TaskId::new(), "code_review", &input())
            .await,
        Err(SandboxError::NotConfigured(_))
    ));
    assert!(matches!(
        provider.destroy("isb1").await,
        Err(SandboxError::NotConfigured(_))
    ));
}
