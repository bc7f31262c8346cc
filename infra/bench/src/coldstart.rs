//! One cold start: spawn a function under a fresh Runtime API, time its init and its
//! first invocation, read its peak RSS, kill it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::runtime_api::{Outcome, RuntimeApi};

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Sample {
    /// exec → the first `GET /runtime/invocation/next`.
    pub init: Duration,
    /// The event handed out → the whole response (or error) received.
    pub first_invocation: Duration,
    /// `VmHWM` after the first invocation, in KiB.
    pub peak_rss_kib: u64,
    /// A short account of the answer (`401`, `ok`, `error: …`), to check what ran.
    pub answer: String,
}

/// A function to start: its binary and the environment Lambda would give it.
#[derive(Debug, Clone)]
pub struct Launch {
    pub name: String,
    pub binary: PathBuf,
    /// The template's and the emulators' variables; Lambda's own are added here.
    pub env: Vec<(String, String)>,
    /// Where the function's stdout and stderr go (overwritten each run).
    pub log: PathBuf,
    pub memory_mb: u32,
    pub timeout: Duration,
}

/// Runs `launch` once with `event` as its first invocation.
pub async fn run_once(launch: &Launch, event: &serde_json::Value) -> Result<Sample, String> {
    let api = RuntimeApi::start(serde_json::to_vec(event).map_err(|e| e.to_string())?)
        .await
        .map_err(|e| format!("runtime API: {e}"))?;
    let log = std::fs::File::create(&launch.log).map_err(|e| format!("log file: {e}"))?;
    let log_err = log.try_clone().map_err(|e| format!("log file: {e}"))?;
    let mut command = tokio::process::Command::new(&launch.binary);
    command
        .env_clear()
        .envs(lambda_environment(launch, &api.address()))
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(launch.binary.parent().unwrap_or(Path::new("/")))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", launch.binary.display()))?;
    let pid = child.id().unwrap_or_default();
    let timeline = tokio::select! {
        timeline = api.finished() => timeline,
        status = child.wait() => {
            return Err(format!("exited ({}) before answering; see {}",
                status.map(|s| s.to_string()).unwrap_or_default(), launch.log.display()));
        }
        () = tokio::time::sleep(launch.timeout) => {
            return Err(format!("no answer within {:?}; see {}", launch.timeout, launch.log.display()));
        }
    };
    let peak_rss_kib = peak_rss_kib(pid).unwrap_or_default();
    let _ = child.start_kill();
    let _ = child.wait().await;
    let answer = match &timeline.outcome {
        Some(Outcome::Response(body)) => describe(body),
        Some(Outcome::Error(body)) => format!("error: {}", truncate(body, 120)),
        Some(Outcome::InitError(body)) => {
            return Err(format!("init error: {}", truncate(body, 200)));
        }
        None => return Err("no outcome".into()),
    };
    let (Some(first_next), Some(handed_out), Some(answered)) =
        (timeline.first_next, timeline.handed_out, timeline.answered)
    else {
        return Err("incomplete timeline".into());
    };
    Ok(Sample {
        init: first_next.duration_since(started),
        first_invocation: answered.duration_since(handed_out),
        peak_rss_kib,
        answer,
    })
}

/// The variables the Lambda service sets for a `provided.al2023` function (its own
/// environment is otherwise empty: nothing of this machine's leaks in).
fn lambda_environment(launch: &Launch, runtime_api: &str) -> Vec<(String, String)> {
    let task_root = launch
        .binary
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", launch.name.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            launch.memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", launch.name),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".to_owned()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".to_owned()),
        ("LAMBDA_TASK_ROOT", task_root),
        ("_HANDLER", "bootstrap".to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("LANG", "en_US.UTF-8".to_owned()),
        ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// `VmHWM` of a live process, in KiB (Linux).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `401` for an API Gateway answer, `ok` for anything else that is JSON, else the
/// byte count (a streamed answer).
fn describe(body: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => match value.get("statusCode").and_then(|s| s.as_u64()) {
            Some(status) => status.to_string(),
            None => "ok".to_owned(),
        },
        // A streamed response: a JSON prelude (status, headers), 8 NUL bytes, the body.
        Err(_) => match streamed_status(body) {
            Some(status) => format!("{status} (streamed)"),
            None => format!("{} bytes", body.len()),
        },
    }
}

fn streamed_status(body: &[u8]) -> Option<u64> {
    let end = body.windows(8).position(|w| w == [0u8; 8])?;
    let prelude: serde_json::Value = serde_json::from_slice(&body[..end]).ok()?;
    prelude.get("statusCode")?.as_u64()
}

fn truncate(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_described_by_their_status() {
        assert_eq!(describe(br#"{"statusCode":401,"body":"{}"}"#), "401");
        assert_eq!(describe(br#"{"batchItemFailures":[]}"#), "ok");
        let mut streamed = br#"{"statusCode":200,"headers":{}}"#.to_vec();
        streamed.extend_from_slice(&[0; 8]);
        streamed.extend_from_slice(b"data: x\n\n");
        assert_eq!(describe(&streamed), "200 (streamed)");
    }

    #[test]
    fn own_peak_rss_is_readable() {
        assert!(peak_rss_kib(std::process::id()).unwrap() > 0);
    }
}
