//! `aicity agent run` works in the sandbox it provisioned: a `local` one is the
//! directory the platform prepared (clean environment, time and memory limits), an
//! `e2b` one is reached through a fake of E2B's envd speaking its process API.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use base64::Engine;
use serde_json::{Value, json};

const TASK: &str = "task_01JQ3Z8X4Y2K7M9N0P1R2S3T4A";
const ME: &str = "ag_01JQ3Z8X4Y2K7M9N0P1R2S3T4W";
const SANDBOX: &str = "sbx_01JQ3Z8X4Y2K7M9N0P1R2S3T4S";
const API_KEY: &str = "ac_live_runner_secret_key";

fn task(status: &str) -> Value {
    json!({"id": TASK, "taskType": "code_review", "status": status,
        // The task's own file: the runner must not write it anywhere itself.
        "input": {"description": "Review", "files": [{"name": "from-task.rs", "content": "x"}]},
        "maxBudget": 4000, "agentId": ME, "callerOwnerId": "usr_01JQ3Z8X4Y2K7M9N0P1R2S3T4X",
        "directHire": false, "routingAttempts": 0, "createdAt": "2026-03-01T10:00:00Z",
        "updatedAt": "2026-03-01T10:05:00Z"})
}

#[derive(Default)]
struct Api {
    sandbox_answer: Value,
    status: String,
    requests: Vec<(String, Value)>,
}

type Shared = Arc<Mutex<Api>>;

/// The agent's side of the API for one task, answering the sandbox call with
/// `sandbox_answer`.
async fn fake_api(sandbox_answer: Value) -> (String, Shared) {
    async fn handle(
        axum::extract::State(api): axum::extract::State<Shared>,
        method: Method,
        uri: Uri,
        body: String,
    ) -> axum::Json<Value> {
        let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let path = uri.path().trim_start_matches("/api/v1").to_owned();
        let mut api = api.lock().unwrap();
        api.requests.push((format!("{method} {path}"), body));
        let task_path = format!("/tasks/{TASK}");
        let data = match (method.as_str(), path.as_str()) {
            ("GET", "/agents/me") => json!({"id": ME, "displayName": "Runner"}),
            ("GET", "/tasks/submitted") if api.status == "submitted" => json!([task("submitted")]),
            ("GET", "/tasks/submitted") => json!([]),
            ("POST", p) if p == format!("{task_path}/sandbox") => api.sandbox_answer.clone(),
            ("DELETE", p) if p == format!("{task_path}/sandbox/{SANDBOX}") => {
                json!({"destroyed": true})
            }
            ("POST", p) if p == format!("{task_path}/progress") => {
                json!({"taskId": TASK, "seq": 1})
            }
            ("POST", p) => {
                let next = match p.rsplit('/').next().unwrap() {
                    "executing" => "executing",
                    "complete" => "quality_check",
                    "fail" => "failed",
                    other => panic!("unexpected {other}"),
                };
                api.status = next.into();
                task(next)
            }
            _ => panic!("unexpected {method} {path}"),
        };
        axum::Json(json!({"success": true, "data": data}))
    }
    let api: Shared = Arc::new(Mutex::new(Api {
        sandbox_answer,
        status: "submitted".into(),
        requests: Vec::new(),
    }));
    let app = axum::Router::new().fallback(handle).with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, api)
}

/// A local sandbox as the platform makes it: `task.json` and `input/`, holding a file
/// the task itself does not have (so only the platform's directory has it).
fn platform_sandbox() -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("aicity-runner-test-{}", ulid::Ulid::generate()))
        .join(SANDBOX);
    std::fs::create_dir_all(dir.join("input")).unwrap();
    std::fs::write(
        dir.join("task.json"),
        json!({"taskId": TASK, "taskType": "code_review", "sandboxId": SANDBOX,
            "input": {"description": "Review"}})
        .to_string(),
    )
    .unwrap();
    std::fs::write(dir.join("input/placed-by-platform.rs"), "fn main() {}").unwrap();
    dir
}

fn local_answer(dir: &Path) -> Value {
    let path = dir.display().to_string();
    json!({"sandboxId": SANDBOX, "provider": "local", "workdir": path, "local": {"path": path}})
}

/// `aicity agent run --once` with `args`, the API key (a secret the command must not
/// see) in the environment; its stdout and stderr.
async fn run_once(base: &str, exec: &str, args: &[&str]) -> (String, String) {
    let config = std::env::temp_dir()
        .join(format!("aicity-runner-test-{}", ulid::Ulid::generate()))
        .join("config.json");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_aicity"));
    command
        .args(["--base-url", base, "--config", config.to_str().unwrap()])
        .args(["agent", "run", "--once", "--exec", exec])
        .args(args)
        .env("AICITY_API_KEY", API_KEY)
        .env("AICITY_RUNNER_SECRET", "do-not-leak");
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the runner hung")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stdout}\n{stderr}");
    (stdout, stderr)
}

fn request(api: &Shared, what: &str) -> Option<Value> {
    api.lock()
        .unwrap()
        .requests
        .iter()
        .find(|(r, _)| r == what)
        .map(|(_, body)| body.clone())
}

fn progress(api: &Shared) -> Vec<String> {
    api.lock()
        .unwrap()
        .requests
        .iter()
        .filter(|(r, _)| r.ends_with("/progress"))
        .map(|(_, body)| body["message"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_local_command_runs_in_the_platforms_directory_with_a_clean_environment() {
    let dir = platform_sandbox();
    let (base, api) = fake_api(local_answer(&dir)).await;
    // Prints where it runs, what it finds, what it was given, on stdout as JSON.
    // The environment as the command gets it (`env`, before python3 or a version
    // manager's shim adds its own).
    let exec = r#"env > tmp/env.txt; python3 -c '
import json, os, sys
stdin = json.load(sys.stdin)
env = dict(l.rstrip("\n").split("=", 1) for l in open("tmp/env.txt") if "=" in l)
print("working in", os.getcwd(), file=sys.stderr)
print(json.dumps({"cwd": os.getcwd(), "input": sorted(os.listdir("input")),
  "stdinTaskType": stdin["taskType"], "env": env}))
'"#;
    let (stdout, stderr) = run_once(&base, exec, &[]).await;
    assert_eq!(stdout.trim(), format!("completed {TASK}"), "{stderr}");
    let output = request(&api, &format!("POST /tasks/{TASK}/complete")).unwrap()["output"].clone();
    assert_eq!(
        std::fs::canonicalize(output["cwd"].as_str().unwrap()).unwrap(),
        std::fs::canonicalize(&dir).unwrap(),
        "the command runs in the sandbox directory"
    );
    assert_eq!(
        output["input"],
        json!(["placed-by-platform.rs"]),
        "the platform's files, nothing copied by the runner"
    );
    assert_eq!(output["stdinTaskType"], "code_review", "task.json on stdin");
    let env = output["env"].as_object().unwrap();
    let mut names: Vec<&str> = env.keys().map(String::as_str).collect();
    names.sort();
    let allowed = [
        "AICITY_SANDBOX_ID",
        "AICITY_TASK_ID",
        "AICITY_TASK_TYPE",
        "AICITY_WORKDIR",
        "HOME",
        "LANG",
        "OLDPWD",
        "PATH",
        "PWD",
        "SHLVL",
        "TMPDIR",
        "_",
    ];
    assert!(
        names.iter().all(|n| allowed.contains(n)),
        "only a clean environment: {names:?}"
    );
    let text = output["env"].to_string();
    assert!(
        !text.contains("do-not-leak"),
        "the runner's variables stay out"
    );
    assert!(!text.contains(API_KEY), "the agent's key stays out");
    assert_eq!(env["HOME"], dir.display().to_string());
    assert_eq!(env["TMPDIR"], dir.join("tmp").display().to_string());
    assert_eq!(env["AICITY_SANDBOX_ID"], SANDBOX);
    // Its stderr came back as progress, and the start says where it ran.
    let progress = progress(&api);
    assert!(
        progress
            .iter()
            .any(|m| m.contains(&format!("in the local sandbox {SANDBOX}"))),
        "{progress:?}"
    );
    assert!(
        progress.iter().any(|m| m.contains("stderr: working in")),
        "{progress:?}"
    );
    assert!(request(&api, &format!("DELETE /tasks/{TASK}/sandbox/{SANDBOX}")).is_some());
    std::fs::remove_dir_all(dir.parent().unwrap()).ok();
}

#[tokio::test]
async fn a_command_past_the_time_limit_is_killed_with_all_it_started() {
    let dir = platform_sandbox();
    let (base, api) = fake_api(local_answer(&dir)).await;
    let exec = "sleep 60 & echo $! > sleeper.pid; wait";
    let started = Instant::now();
    let (stdout, stderr) = run_once(&base, exec, &["--timeout-seconds", "1"]).await;
    assert_eq!(stdout.trim(), format!("failed {TASK}"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let failed = request(&api, &format!("POST /tasks/{TASK}/fail")).unwrap();
    assert_eq!(failed["reason"], "timeout", "{failed}");
    let pid = std::fs::read_to_string(dir.join("sleeper.pid")).unwrap();
    // Gone, or a zombie waiting for a reaper (what this container's init may not be).
    let state = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
        .ok()
        .and_then(|stat| stat.rsplit(')').next().map(|rest| rest.trim().to_owned()))
        .unwrap_or_default();
    let alive = if Path::new("/proc/self/stat").exists() {
        !state.is_empty() && !state.starts_with('Z')
    } else {
        Command::new("kill")
            .args(["-0", pid.trim()])
            .status()
            .unwrap()
            .success()
    };
    assert!(
        !alive,
        "the command's background sleep was killed too ({state})"
    );
    std::fs::remove_dir_all(dir.parent().unwrap()).ok();
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_command_over_the_memory_limit_fails() {
    let allocate = |mb: u32| {
        format!(
            r#"python3 -c 'b = bytearray({mb} * 1024 * 1024); print("{{\"allocated\": {mb}}}")'"#
        )
    };
    // Within the limit: fine.
    let dir = platform_sandbox();
    let (base, api) = fake_api(local_answer(&dir)).await;
    let (stdout, stderr) = run_once(&base, &allocate(50), &["--memory-mb", "300"]).await;
    assert_eq!(stdout.trim(), format!("completed {TASK}"), "{stderr}");
    assert_eq!(
        request(&api, &format!("POST /tasks/{TASK}/complete")).unwrap()["output"],
        json!({"allocated": 50})
    );
    // Over it: the allocation fails, so does the task.
    let (base, api) = fake_api(local_answer(&dir)).await;
    let (stdout, stderr) = run_once(&base, &allocate(600), &["--memory-mb", "300"]).await;
    assert_eq!(stdout.trim(), format!("failed {TASK}"), "{stderr}");
    let failed = request(&api, &format!("POST /tasks/{TASK}/fail")).unwrap();
    assert_eq!(failed["reason"], "execution_error");
    assert!(
        failed["errorMessage"]
            .as_str()
            .unwrap()
            .contains("MemoryError"),
        "{failed}"
    );
    std::fs::remove_dir_all(dir.parent().unwrap()).ok();
}

#[tokio::test]
async fn a_chatty_command_posts_few_progress_messages_within_the_limit() {
    let dir = platform_sandbox();
    let (base, api) = fake_api(local_answer(&dir)).await;
    let exec = "i=0; while [ $i -lt 3000 ]; do echo \"line $i $(printf '%0100d' 0)\"; i=$((i+1)); done >&2; echo '{\"done\": true}'";
    let (stdout, stderr) = run_once(&base, exec, &[]).await;
    assert_eq!(stdout.trim(), format!("completed {TASK}"), "{stderr}");
    let progress = progress(&api);
    // The start, a batch or two of lines, the finish: not 3000.
    assert!(progress.len() <= 8, "{}", progress.len());
    assert!(progress.iter().all(|m| m.chars().count() <= 1_000));
    assert!(
        progress.iter().any(|m| m.contains("stderr: line 2999 ")),
        "the last lines are shown: {progress:?}"
    );
    assert!(
        progress
            .iter()
            .any(|m| m.contains("earlier line(s) not shown"))
    );
    std::fs::remove_dir_all(dir.parent().unwrap()).ok();
}

#[tokio::test]
async fn a_local_sandbox_on_another_machine_is_not_worked_around() {
    let (base, api) = fake_api(local_answer(Path::new("/nonexistent/aicity/sbx"))).await;
    let (stdout, stderr) = run_once(&base, "echo '{}'", &[]).await;
    assert_eq!(stdout.trim(), format!("failed {TASK}"), "{stderr}");
    let failed = request(&api, &format!("POST /tasks/{TASK}/fail")).unwrap();
    assert_eq!(failed["reason"], "execution_error");
    assert!(
        failed["errorMessage"]
            .as_str()
            .unwrap()
            .contains("not on this machine"),
        "{failed}"
    );
}

// E2B: a fake envd speaking the process API's Connect wire format.

const ENVD_TOKEN: &str = "envd_token_of_this_sandbox";

#[derive(Default)]
struct Envd {
    starts: Vec<(HeaderMap, Value)>,
    signals: Vec<Value>,
}

type EnvdShared = Arc<Mutex<Envd>>;

fn frame(flags: u8, message: &Value) -> Vec<u8> {
    let body = message.to_string().into_bytes();
    let mut out = vec![flags];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// `process.Process/Start`: checks what envd checks, then plays the script the
/// command names (`exit3`, `json`, `hang`).
async fn envd_start(
    axum::extract::State(envd): axum::extract::State<EnvdShared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("x-access-token") != Some(ENVD_TOKEN) {
        return (StatusCode::UNAUTHORIZED, "invalid access token").into_response();
    }
    if header("e2b-sandbox-id") != Some("isb_e2b1") || header("e2b-sandbox-port") != Some("49983") {
        return (StatusCode::BAD_GATEWAY, "sandbox not found").into_response();
    }
    if header("content-type") != Some("application/connect+json") {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "").into_response();
    }
    assert_eq!(body[0], 0, "an uncompressed message");
    let length = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    assert_eq!(body.len(), 5 + length, "one enveloped message");
    let request: Value = serde_json::from_slice(&body[5..]).unwrap();
    envd.lock()
        .unwrap()
        .starts
        .push((headers.clone(), request.clone()));
    let command = request["process"]["args"][3].as_str().unwrap_or_default();
    let mut frames = vec![frame(0, &json!({"event": {"start": {"pid": 4242}}}))];
    let data =
        |stream: &str, text: &str| frame(0, &json!({"event": {"data": {stream: b64(text)}}}));
    let hang = command == "hang";
    match command {
        "exit3" => {
            frames.push(data("stdout", "first li"));
            frames.push(data("stdout", "ne\nsecond line\n"));
            frames.push(data("stderr", "it went wrong\n"));
            frames.push(frame(
                0,
                &json!({"event": {"end": {"exitCode": 3, "exited": true, "status": "exit status 3"}}}),
            ));
        }
        "json" => {
            frames.push(data("stdout", "{\"review\": \"from e2b\"}\n"));
            // A zero exit code is left out, as proto3 JSON does.
            frames.push(frame(
                0,
                &json!({"event": {"end": {"exited": true, "status": "exit status 0"}}}),
            ));
        }
        _ => frames.push(frame(0, &json!({"event": {"keepalive": {}}}))),
    }
    if !hang {
        frames.push(frame(0x02, &json!({})));
    }
    let chunks = futures::stream::iter(
        frames
            .into_iter()
            .map(|f| Ok::<_, std::io::Error>(axum::body::Bytes::from(f))),
    );
    let body = if hang {
        axum::body::Body::from_stream(futures::StreamExt::chain(
            chunks,
            futures::stream::pending(),
        ))
    } else {
        axum::body::Body::from_stream(chunks)
    };
    ([("content-type", "application/connect+json")], body).into_response()
}

async fn envd_signal(
    axum::extract::State(envd): axum::extract::State<EnvdShared>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    if headers.get("x-access-token").map(|v| v.as_bytes()) != Some(ENVD_TOKEN.as_bytes()) {
        return (StatusCode::UNAUTHORIZED, String::new());
    }
    envd.lock()
        .unwrap()
        .signals
        .push(serde_json::from_str(&body).unwrap());
    (StatusCode::OK, "{}".into())
}

async fn fake_envd() -> (String, EnvdShared) {
    let envd: EnvdShared = Default::default();
    let app = axum::Router::new()
        .route("/process.Process/Start", axum::routing::post(envd_start))
        .route(
            "/process.Process/SendSignal",
            axum::routing::post(envd_signal),
        )
        .with_state(envd.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, envd)
}

fn e2b_answer(envd: &str) -> Value {
    json!({"sandboxId": SANDBOX, "provider": "e2b", "workdir": "/home/user/task",
        "e2b": {"sandboxId": "isb_e2b1", "envdUrl": envd, "envdPort": 49983,
            "accessToken": ENVD_TOKEN, "user": "user"}})
}

#[tokio::test]
async fn an_e2b_command_runs_through_envd_and_its_output_streams_back() {
    let (envd_url, envd) = fake_envd().await;
    let (base, api) = fake_api(e2b_answer(&envd_url)).await;
    let (stdout, stderr) = run_once(&base, "exit3", &["--memory-mb", "512"]).await;
    assert_eq!(stdout.trim(), format!("failed {TASK}"), "{stderr}");

    let (headers, start) = envd.lock().unwrap().starts[0].clone();
    assert_eq!(
        headers.get("authorization").unwrap(),
        &format!("Basic {}", b64("user:"))
    );
    assert_eq!(headers.get("connect-timeout-ms").unwrap(), "600000");
    let process = &start["process"];
    assert_eq!(process["cmd"], "/bin/bash");
    assert_eq!(process["cwd"], "/home/user/task");
    assert_eq!(
        process["args"],
        json!([
            "-l",
            "-c",
            "ulimit -v 524288 && exec /bin/sh -c \"$0\" < \"$1\"",
            "exit3",
            "/home/user/task/task.json"
        ])
    );
    assert_eq!(process["envs"]["AICITY_TASK_ID"], TASK);
    assert_eq!(process["envs"]["AICITY_SANDBOX_ID"], SANDBOX);
    let sent = start.to_string();
    assert!(!sent.contains("do-not-leak") && !sent.contains(API_KEY));
    assert_eq!(start["stdin"], false);

    let failed = request(&api, &format!("POST /tasks/{TASK}/fail")).unwrap();
    assert_eq!(failed["reason"], "execution_error");
    let message = failed["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("exit code 3") && message.contains("it went wrong"),
        "{message}"
    );
    let progress = progress(&api).join("\n");
    assert!(progress.contains("in the e2b sandbox"), "{progress}");
    assert!(progress.contains("first line\nsecond line"), "{progress}");
    assert!(progress.contains("stderr: it went wrong"), "{progress}");
    assert!(request(&api, &format!("DELETE /tasks/{TASK}/sandbox/{SANDBOX}")).is_some());

    // Exit 0: its stdout is the task's output.
    let (base, api) = fake_api(e2b_answer(&envd_url)).await;
    let (stdout, stderr) = run_once(&base, "json", &[]).await;
    assert_eq!(stdout.trim(), format!("completed {TASK}"), "{stderr}");
    assert_eq!(
        request(&api, &format!("POST /tasks/{TASK}/complete")).unwrap()["output"],
        json!({"review": "from e2b"})
    );
}

#[tokio::test]
async fn an_e2b_command_past_the_time_limit_is_killed_and_the_task_times_out() {
    let (envd_url, envd) = fake_envd().await;
    let (base, api) = fake_api(e2b_answer(&envd_url)).await;
    let started = Instant::now();
    let (stdout, stderr) = run_once(&base, "hang", &["--timeout-seconds", "1"]).await;
    assert_eq!(stdout.trim(), format!("failed {TASK}"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let failed = request(&api, &format!("POST /tasks/{TASK}/fail")).unwrap();
    assert_eq!(failed["reason"], "timeout");
    assert_eq!(
        envd.lock().unwrap().signals,
        vec![json!({"process": {"pid": 4242}, "signal": "SIGNAL_SIGKILL"})]
    );
}
