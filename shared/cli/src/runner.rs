//! The reference agent runner: `aicity agent run --exec "<command>"`.
//!
//! Polls for tasks assigned to the agent; for each: provisions a sandbox, marks the
//! task executing, runs the command in that sandbox (the task's `task.json` on stdin,
//! its files under `input/`), posts its output lines as progress, completes with the
//! command's output (JSON if it prints JSON, else `{"result": "<text>"}`) or fails with
//! its error (`timeout` past the time limit, else `execution_error`), and destroys the
//! sandbox. A stop request (Ctrl-C) lets the task in hand finish first, so no task is
//! left half done.
//!
//! Where the command runs is what the sandbox answer says:
//! - `local`: in the sandbox directory the platform prepared, as a process of this
//!   machine with a clean environment, a time limit and a memory limit ([`local`]);
//!   the directory must be on this machine (the API runs here, as with `make dev`).
//! - `e2b`: in the E2B sandbox, through its envd's process API ([`e2b`]).
//! - An API that names no provider (older than this runner): in a private directory
//!   of the runner's own, made like a local sandbox, under the same limits.
//!
//! With `--webhook` ([`run_with_assignments`]) a verified `task.assigned` delivery
//! starts the work at once; polling goes on, slower, as a safety net.

pub mod e2b;
pub mod exec;
pub mod local;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aicity_domain::task::TaskStatus;
use aicity_domain::task::model::{Task, is_safe_file_name};
use aicity_sdk::resources::SandboxAccess;
use aicity_sdk::{AgentCity, Error};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use exec::{Job, Ran};

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Run with `sh -c`.
    pub command: String,
    pub poll: Duration,
    /// A task's command is stopped (and the task failed with `timeout`) after this.
    pub timeout: Duration,
    /// Where working directories are made for an API that names no sandbox provider.
    pub work_root: PathBuf,
    /// The command's address space, in MiB (`None`: no limit).
    pub memory_limit_mb: Option<u64>,
    /// At most one progress message of the command's output lines this often.
    pub progress_every: Duration,
}

impl RunnerConfig {
    /// The defaults of `aicity agent run`: a 2 s poll, 600 s, 1 GiB, progress every 2 s.
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            poll: Duration::from_secs(2),
            timeout: Duration::from_secs(600),
            work_root: std::env::temp_dir().join("aicity-agent-runner"),
            memory_limit_mb: Some(1024),
            progress_every: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed(String),
    Failed(String),
}

fn tail(text: &str, max: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    chars[chars.len().saturating_sub(max)..].iter().collect()
}

/// For an API that names no provider: a private directory laid out like a local
/// sandbox (`task.json`, `code.txt`, `input/`), removed afterwards.
async fn own_directory(
    config: &RunnerConfig,
    task: &Task,
    sandbox: &str,
) -> std::io::Result<PathBuf> {
    let dir = config.work_root.join(task.id.to_string());
    let input = dir.join("input");
    tokio::fs::create_dir_all(&input).await?;
    let manifest = json!({
        "taskId": task.id, "taskType": task.task_type, "sandboxId": sandbox, "input": task.input,
    });
    tokio::fs::write(dir.join("task.json"), manifest.to_string()).await?;
    if let Some(code) = &task.input.code {
        tokio::fs::write(dir.join("code.txt"), code).await?;
    }
    for file in task
        .input
        .files
        .iter()
        .filter(|f| is_safe_file_name(&f.name))
    {
        tokio::fs::write(input.join(&file.name), &file.content).await?;
    }
    Ok(dir)
}

/// Runs the command where the sandbox answer says; `(where, what it gave back)`.
async fn run_in_sandbox(
    config: &RunnerConfig,
    task: &Task,
    access: &SandboxAccess,
    lines: mpsc::UnboundedSender<exec::Line>,
) -> Result<Ran, String> {
    let job = Job {
        command: config.command.clone(),
        task_id: task.id.to_string(),
        task_type: task.task_type.as_str().to_owned(),
        sandbox_id: access.sandbox_id.clone(),
        timeout: config.timeout,
        memory_limit: config.memory_limit_mb.map(|mb| mb * 1024 * 1024),
    };
    match (access.provider.as_deref(), &access.local, &access.e2b) {
        (Some("local"), Some(local), _) => {
            let dir = PathBuf::from(&local.path);
            if !dir.is_dir() {
                return Err(format!(
                    "the local sandbox {} is not on this machine: a local sandbox is a \
                     directory on the API's machine (make dev); a deployed API uses e2b",
                    dir.display()
                ));
            }
            local::run(&dir, &job, lines).await
        }
        (Some("e2b"), _, Some(e2b)) => {
            let workdir = access.workdir.as_deref().unwrap_or("/home/user/task");
            e2b::Envd::new(e2b.clone()).run(workdir, &job, lines).await
        }
        (None, _, _) => {
            let dir = own_directory(config, task, &access.sandbox_id)
                .await
                .map_err(|e| format!("could not prepare a working directory: {e}"))?;
            let ran = local::run(&dir, &job, lines).await;
            let _ = tokio::fs::remove_dir_all(&dir).await;
            ran
        }
        (Some(other), _, _) => Err(format!(
            "the API gave a {other} sandbox this runner cannot reach"
        )),
    }
}

/// Works one assigned task from start to finish.
pub async fn work(city: &AgentCity, config: &RunnerConfig, task: &Task) -> Result<Outcome, Error> {
    let tasks = city.tasks();
    let id = task.id.to_string();
    let access = tasks.provision_sandbox_access(&id).await?;
    let sandbox = access.sandbox_id.clone();
    tasks.mark_executing(&id, &sandbox).await?;
    let place = match (access.provider.as_deref(), access.workdir.as_deref()) {
        (Some(provider), Some(workdir)) => {
            format!(" in the {provider} sandbox {sandbox} ({workdir})")
        }
        _ => String::new(),
    };
    let started = format!("running {}{place}", config.command);
    let started: String = started
        .chars()
        .take(aicity_domain::task::model::MAX_PROGRESS_CHARS)
        .collect();
    tasks.progress(&id, &started, Some(10)).await?;
    let (lines, received) = mpsc::unbounded_channel();
    let forwarder = tokio::spawn(exec::forward_progress(
        city.clone(),
        id.clone(),
        received,
        config.progress_every,
    ));
    let ran = run_in_sandbox(config, task, &access, lines).await;
    // Every line is posted before the task completes or fails.
    let _ = forwarder.await;
    let outcome = match ran {
        Ok(ran) if ran.success() => {
            tasks.progress(&id, "command finished", Some(90)).await?;
            let text = ran.stdout.trim();
            let output = serde_json::from_str::<Value>(text)
                .ok()
                .filter(|v| !v.is_null())
                .unwrap_or_else(|| json!({ "result": text }));
            tasks
                .complete(&id, &output, ran.elapsed.as_millis() as u64, None)
                .await?;
            Outcome::Completed(id.clone())
        }
        Ok(ran) => {
            let (reason, message) = if ran.timed_out {
                (
                    "timeout",
                    format!("the command ran past {:?}", config.timeout),
                )
            } else {
                let how = match (ran.exit_code, &ran.status) {
                    (Some(code), _) => format!("exit code {code}"),
                    (None, Some(status)) => status.clone(),
                    (None, None) => "no exit code".into(),
                };
                (
                    "execution_error",
                    format!(
                        "the command failed ({how}): {}",
                        tail(ran.stderr.trim(), 1_500)
                    ),
                )
            };
            tasks.fail(&id, reason, Some(&message)).await?;
            Outcome::Failed(id.clone())
        }
        Err(err) => {
            tasks
                .fail(
                    &id,
                    "execution_error",
                    Some(&format!("could not run the command: {}", tail(&err, 1_500))),
                )
                .await?;
            Outcome::Failed(id.clone())
        }
    };
    if let Err(err) = tasks.destroy_sandbox(&id, &sandbox).await {
        tracing::warn!(task = id, error = %err, "sandbox not destroyed; the sweeper will");
    }
    Ok(outcome)
}

/// Works every task waiting now; returns what happened to each.
pub async fn run_once(city: &AgentCity, config: &RunnerConfig) -> Result<Vec<Outcome>, Error> {
    let mut outcomes = Vec::new();
    for task in city.tasks().list_submitted().await? {
        outcomes.push(work(city, config, &task).await?);
    }
    Ok(outcomes)
}

/// Polls and works until `stop` is set; the task in hand always finishes first.
pub async fn run(
    city: &AgentCity,
    config: &RunnerConfig,
    stop: Arc<AtomicBool>,
    on_outcome: impl FnMut(&Outcome),
) -> Result<(), Error> {
    run_loop(city, config, stop, None, on_outcome).await
}

/// Like [`run`], and also works each task whose id arrives on `assigned` (from verified
/// `task.assigned` deliveries) as soon as it arrives; `me` is the agent's id. The poll
/// every `config.poll` stays as a safety net (a delivery lost or late, a receiver down).
pub async fn run_with_assignments(
    city: &AgentCity,
    config: &RunnerConfig,
    stop: Arc<AtomicBool>,
    me: &str,
    assigned: mpsc::UnboundedReceiver<String>,
    on_outcome: impl FnMut(&Outcome),
) -> Result<(), Error> {
    run_loop(city, config, stop, Some((me, assigned)), on_outcome).await
}

/// Works a task a delivery named, if it is still waiting for this agent (a poll, a
/// retry or a redelivery may have come first). `None` when there was nothing to do.
pub async fn take(
    city: &AgentCity,
    config: &RunnerConfig,
    me: &str,
    task_id: &str,
) -> Result<Option<Outcome>, Error> {
    let task = match city.tasks().get(task_id).await {
        Ok(task) => task,
        Err(Error::NotFound(_)) | Err(Error::Forbidden(_)) => return Ok(None),
        Err(err) if err.is_retryable() => {
            // The next poll picks it up.
            tracing::warn!(task = task_id, error = %err, "assigned task not fetched");
            return Ok(None);
        }
        Err(err) => return Err(err),
    };
    let mine = task.agent_id.map(|a| a.to_string()).as_deref() == Some(me);
    if !mine || task.status != TaskStatus::Submitted {
        return Ok(None);
    }
    match work(city, config, &task).await {
        Ok(outcome) => Ok(Some(outcome)),
        // Somebody else moved the task (cancelled, timed out): go on.
        Err(Error::Conflict(_)) | Err(Error::Forbidden(_)) => Ok(None),
        Err(err) => Err(err),
    }
}

/// What woke the runner between polls.
enum Wake {
    Assigned(String),
    Tick,
    /// The receiver is gone: polling only from now on.
    Closed,
}

async fn run_loop(
    city: &AgentCity,
    config: &RunnerConfig,
    stop: Arc<AtomicBool>,
    mut assigned: Option<(&str, mpsc::UnboundedReceiver<String>)>,
    mut on_outcome: impl FnMut(&Outcome),
) -> Result<(), Error> {
    while !stop.load(Ordering::SeqCst) {
        match city.tasks().list_submitted().await {
            Ok(waiting) => {
                for task in waiting {
                    match work(city, config, &task).await {
                        Ok(outcome) => on_outcome(&outcome),
                        // Somebody else moved the task (cancelled, timed out): go on.
                        Err(Error::Conflict(_)) | Err(Error::Forbidden(_)) => {}
                        Err(err) => return Err(err),
                    }
                    if stop.load(Ordering::SeqCst) {
                        return Ok(());
                    }
                }
            }
            Err(err) if err.is_retryable() => tracing::warn!(error = %err, "poll failed; retrying"),
            Err(err) => return Err(err),
        }
        let deadline = Instant::now() + config.poll;
        while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
            let wake = match assigned.as_mut() {
                None => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Wake::Tick
                }
                Some((_, receiver)) => tokio::select! {
                    id = receiver.recv() => id.map_or(Wake::Closed, Wake::Assigned),
                    _ = tokio::time::sleep(Duration::from_millis(100)) => Wake::Tick,
                },
            };
            match wake {
                Wake::Tick => {}
                Wake::Closed => assigned = None,
                Wake::Assigned(task_id) => {
                    let me = assigned.as_ref().map(|(me, _)| *me).unwrap_or_default();
                    if let Some(outcome) = take(city, config, me, &task_id).await? {
                        on_outcome(&outcome);
                    }
                    if stop.load(Ordering::SeqCst) {
                        return Ok(());
                    }
                }
            }
        }
    }
    Ok(())
}
