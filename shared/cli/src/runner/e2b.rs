//! Runs a task's command in its E2B sandbox through the sandbox's envd, as E2B's SDKs
//! do: Connect-RPC `process.Process/Start` (JSON codec, server streaming).
//!
//! The request: `POST {envdUrl}/process.Process/Start`, `Content-Type:
//! application/connect+json`, one enveloped message (a flags byte, a big-endian `u32`
//! length, the JSON `StartRequest`), with `E2b-Sandbox-Id`, `E2b-Sandbox-Port`, the
//! sandbox's access token in `X-Access-Token`, the user in `Authorization: Basic
//! base64("user:")`, the deadline in `Connect-Timeout-Ms` and `Keepalive-Ping-Interval`.
//! The answer: enveloped `StartResponse`s, `{"event": {"start": {"pid"}}}`, `{"event":
//! {"data": {"stdout" | "stderr": base64}}}`, `{"event": {"end": {"exitCode", "exited",
//! "status", "error"}}}`, `{"event": {"keepalive": {}}}`, then an end-of-stream envelope
//! (flags `0x02`) holding `{}` or `{"error": {"code", "message"}}`. At the time limit
//! the runner also sends `process.Process/SendSignal` (`SIGNAL_SIGKILL`) for the pid.
//!
//! The command runs as `/bin/bash -l -c 'ulimit -v <KiB> && exec /bin/sh -c "$0" <
//! "$1"' <command> <workdir>/task.json` in the task's directory, with only the task's
//! variables added to the sandbox's environment.

use std::time::{Duration, Instant};

use aicity_sdk::resources::E2bSandboxAccess;
use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::exec::{Job, Line, Lines, Ran, Stream};

/// Connect's end-of-stream flag.
const END_STREAM: u8 = 0x02;
/// Connect's compressed flag (never asked for, so never accepted).
const COMPRESSED: u8 = 0x01;

/// A Connect envelope around one JSON message.
pub fn envelope(message: &Value) -> Vec<u8> {
    let body = message.to_string().into_bytes();
    let mut framed = Vec::with_capacity(body.len() + 5);
    framed.push(0);
    framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
    framed.extend_from_slice(&body);
    framed
}

/// The envelopes complete in `buffer` (flags, JSON), taken out of it.
fn take_envelopes(buffer: &mut Vec<u8>) -> Result<Vec<(u8, Value)>, String> {
    let mut out = Vec::new();
    loop {
        if buffer.len() < 5 {
            return Ok(out);
        }
        let length = u32::from_be_bytes([buffer[1], buffer[2], buffer[3], buffer[4]]) as usize;
        if buffer.len() < 5 + length {
            return Ok(out);
        }
        let flags = buffer[0];
        let frame: Vec<u8> = buffer.drain(..5 + length).skip(5).collect();
        if flags & COMPRESSED != 0 {
            return Err("envd sent a compressed message, which was not asked for".into());
        }
        let message = serde_json::from_slice(&frame)
            .map_err(|e| format!("envd sent a message that is not JSON: {e}"))?;
        out.push((flags, message));
    }
}

pub struct Envd {
    http: reqwest::Client,
    access: E2bSandboxAccess,
}

impl Envd {
    pub fn new(access: E2bSandboxAccess) -> Self {
        Self {
            // No overall timeout: the stream lasts as long as the command.
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(15))
                .build()
                .unwrap_or_default(),
            access,
        }
    }

    fn post(&self, procedure: &str) -> reqwest::RequestBuilder {
        let url = format!(
            "{}/process.Process/{procedure}",
            self.access.envd_url.trim_end_matches('/')
        );
        let user =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:", self.access.user));
        let mut request = self
            .http
            .post(url)
            .header("E2b-Sandbox-Id", &self.access.sandbox_id)
            .header("E2b-Sandbox-Port", self.access.envd_port.to_string())
            .header("Authorization", format!("Basic {user}"))
            .header("Connect-Protocol-Version", "1");
        if let Some(token) = &self.access.access_token {
            request = request.header("X-Access-Token", token);
        }
        request
    }

    /// Kills the process (best effort: the sandbox is destroyed right after anyway).
    async fn kill(&self, pid: u64) {
        let sent = self
            .post("SendSignal")
            .header("Content-Type", "application/json")
            .timeout(Duration::from_secs(10))
            .body(json!({"process": {"pid": pid}, "signal": "SIGNAL_SIGKILL"}).to_string())
            .send()
            .await;
        if let Err(err) = sent.and_then(|r| r.error_for_status()) {
            tracing::warn!(pid, error = %err, "the timed-out command was not killed");
        }
    }

    /// Runs `job` in `workdir` of the sandbox, sending its output lines to `lines`.
    pub async fn run(
        &self,
        workdir: &str,
        job: &Job,
        lines: mpsc::UnboundedSender<Line>,
    ) -> Result<Ran, String> {
        let started = Instant::now();
        let mut out = Lines::new(Stream::Stdout, lines.clone());
        let mut err = Lines::new(Stream::Stderr, lines);
        let mut state = State::default();
        let streamed = tokio::time::timeout(
            job.timeout,
            self.stream(workdir, job, &mut out, &mut err, &mut state),
        )
        .await;
        let mut ran = Ran {
            elapsed: started.elapsed(),
            ..Ran::default()
        };
        match streamed {
            Err(_) => {
                if let Some(pid) = state.pid {
                    self.kill(pid).await;
                }
                ran.timed_out = true;
                ran.status = Some("killed at the time limit".into());
            }
            Ok(Err(Failure::DeadlineExceeded)) => {
                ran.timed_out = true;
                ran.status = Some("envd's deadline passed".into());
            }
            Ok(Err(Failure::Other(message))) => return Err(message),
            Ok(Ok(())) => match state.end {
                Some(end) => {
                    let exited = end["exited"].as_bool().unwrap_or(false);
                    // proto3 JSON leaves a zero exit code out.
                    let code = end["exitCode"].as_i64().unwrap_or(0) as i32;
                    ran.exit_code = exited.then_some(code);
                    let status = end["status"].as_str().unwrap_or_default();
                    let error = end["error"].as_str().unwrap_or_default();
                    if !exited || !error.is_empty() {
                        ran.status = Some(format!("{status} {error}").trim().to_owned())
                            .filter(|s| !s.is_empty());
                    }
                }
                None => {
                    return Err("the sandbox's stream ended without the command's end".into());
                }
            },
        }
        ran.stdout = out.finish();
        ran.stderr = err.finish();
        Ok(ran)
    }

    async fn stream(
        &self,
        workdir: &str,
        job: &Job,
        out: &mut Lines,
        err: &mut Lines,
        state: &mut State,
    ) -> Result<(), Failure> {
        let mut script = String::new();
        if let Some(bytes) = job.memory_limit {
            script.push_str(&format!("ulimit -v {} && ", bytes / 1024));
        }
        script.push_str("exec /bin/sh -c \"$0\" < \"$1\"");
        let envs: serde_json::Map<String, Value> = job
            .task_env(workdir)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v)))
            .collect();
        let request = json!({
            "process": {
                "cmd": "/bin/bash",
                "args": ["-l", "-c", script, job.command, format!("{workdir}/task.json")],
                "envs": envs,
                "cwd": workdir,
            },
            "stdin": false,
        });
        let mut response = self
            .post("Start")
            .header("Content-Type", "application/connect+json")
            .header("Connect-Timeout-Ms", job.timeout.as_millis().to_string())
            .header("Keepalive-Ping-Interval", "50")
            .body(envelope(&request))
            .send()
            .await
            .map_err(|e| Failure::Other(format!("could not reach the sandbox's envd: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            let detail = response.text().await.unwrap_or_default();
            return Err(Failure::Other(format!(
                "the sandbox's envd answered {status}: {}",
                detail.chars().take(300).collect::<String>()
            )));
        }
        let decode = |data: &Value| {
            base64::engine::general_purpose::STANDARD
                .decode(data.as_str().unwrap_or_default())
                .map_err(|e| Failure::Other(format!("envd sent output that is not base64: {e}")))
        };
        let mut buffer = Vec::new();
        loop {
            let chunk = response
                .chunk()
                .await
                .map_err(|e| Failure::Other(format!("the sandbox's stream broke: {e}")))?;
            let Some(chunk) = chunk else {
                return Err(Failure::Other(
                    "the sandbox's stream ended without its end-of-stream message".into(),
                ));
            };
            buffer.extend_from_slice(&chunk);
            for (flags, message) in take_envelopes(&mut buffer).map_err(Failure::Other)? {
                if flags & END_STREAM != 0 {
                    let error = &message["error"];
                    if error.is_null() {
                        return Ok(());
                    }
                    if error["code"] == "deadline_exceeded" {
                        return Err(Failure::DeadlineExceeded);
                    }
                    return Err(Failure::Other(format!(
                        "the sandbox's envd failed: {} {}",
                        error["code"].as_str().unwrap_or("unknown"),
                        error["message"].as_str().unwrap_or_default()
                    )));
                }
                let event = &message["event"];
                if let Some(pid) = event["start"]["pid"].as_u64() {
                    state.pid = Some(pid);
                } else if event["data"].is_object() {
                    let data = &event["data"];
                    if !data["stdout"].is_null() {
                        out.push(&decode(&data["stdout"])?);
                    }
                    if !data["stderr"].is_null() {
                        err.push(&decode(&data["stderr"])?);
                    }
                } else if event["end"].is_object() {
                    state.end = Some(event["end"].clone());
                }
            }
        }
    }
}

#[derive(Default)]
struct State {
    pid: Option<u64>,
    end: Option<Value>,
}

enum Failure {
    DeadlineExceeded,
    Other(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_wait_for_whole_frames() {
        let mut buffer = envelope(&json!({"event": {"keepalive": {}}}));
        let mut end = envelope(&json!({}));
        end[0] = END_STREAM;
        buffer.extend_from_slice(&end[..3]);
        let got = take_envelopes(&mut buffer).unwrap();
        assert_eq!(got, vec![(0, json!({"event": {"keepalive": {}}}))]);
        assert_eq!(buffer.len(), 3, "half a frame waits");
        buffer.extend_from_slice(&end[3..]);
        assert_eq!(
            take_envelopes(&mut buffer).unwrap(),
            vec![(END_STREAM, json!({}))]
        );
        assert!(buffer.is_empty());
    }
}
