//! The reference agent runner: `aicity agent run --exec "<command>"`.
//!
//! Polls for tasks assigned to the agent; for each: provisions a sandbox, marks the
//! task executing, runs the command in a fresh working directory (the task's input
//! files under `input/`) with the task as JSON on stdin, posts progress, completes with
//! the command's output (JSON if it prints JSON, else `{"result": "<text>"}`) or fails
//! with its error, and destroys the sandbox. A stop request (Ctrl-C) lets the task in
//! hand finish first, so no task is left half done.
//!
//! With `--webhook` ([`run_with_assignments`]) a verified `task.assigned` delivery
//! starts the work at once; polling goes on, slower, as a safety net.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aicity_domain::task::TaskStatus;
use aicity_domain::task::model::{Task, is_safe_file_name};
use aicity_sdk::{AgentCity, Error};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Run with `sh -c`.
    pub command: String,
    pub poll: Duration,
    /// A task's command is stopped (and the task failed with `timeout`) after this.
    pub timeout: Duration,
    /// Where working directories are made.
    pub work_root: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed(String),
    Failed(String),
}

/// What the command gave back.
struct Ran {
    success: bool,
    timed_out: bool,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

fn tail(text: &str, max: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    chars[chars.len().saturating_sub(max)..].iter().collect()
}

async fn run_command(config: &RunnerConfig, task: &Task) -> std::io::Result<Ran> {
    let dir = config.work_root.join(task.id.to_string());
    let input = dir.join("input");
    tokio::fs::create_dir_all(&input).await?;
    for file in task
        .input
        .files
        .iter()
        .filter(|f| is_safe_file_name(&f.name))
    {
        tokio::fs::write(input.join(&file.name), &file.content).await?;
    }
    let started = Instant::now();
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&config.command)
        .current_dir(&dir)
        .env("AICITY_TASK_ID", task.id.to_string())
        .env("AICITY_TASK_TYPE", task.task_type.as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        let payload = json!({ "taskId": task.id, "taskType": task.task_type, "input": task.input });
        // A command that ignores its stdin may close it early; that is fine.
        let _ = stdin.write_all(payload.to_string().as_bytes()).await;
    }
    let result = tokio::time::timeout(config.timeout, child.wait_with_output()).await;
    let _ = tokio::fs::remove_dir_all(&dir).await;
    Ok(match result {
        Ok(output) => {
            let output = output?;
            Ran {
                success: output.status.success(),
                timed_out: false,
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
                elapsed: started.elapsed(),
            }
        }
        Err(_) => Ran {
            success: false,
            timed_out: true,
            stdout: String::new(),
            stderr: String::new(),
            elapsed: started.elapsed(),
        },
    })
}

/// Works one assigned task from start to finish.
pub async fn work(city: &AgentCity, config: &RunnerConfig, task: &Task) -> Result<Outcome, Error> {
    let tasks = city.tasks();
    let id = task.id.to_string();
    let sandbox = tasks.provision_sandbox(&id).await?;
    tasks.mark_executing(&id, &sandbox).await?;
    tasks
        .progress(&id, &format!("running {}", config.command), Some(10))
        .await?;
    let ran = run_command(config, task).await;
    let outcome = match ran {
        Ok(ran) if ran.success => {
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
                (
                    "execution_error",
                    format!("the command failed: {}", tail(ran.stderr.trim(), 1_500)),
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
                    Some(&format!("could not run the command: {err}")),
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
