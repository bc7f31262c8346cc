//! Runs a task's command in a `local` sandbox: the directory the platform prepared.
//!
//! The command is a process on the agent's machine, not a jail. What it gets:
//! - its current directory is the sandbox directory (`task.json`, `code.txt`,
//!   `input/`), and `task.json` on stdin;
//! - a clean environment: `PATH` and `LANG` (the runner's, or `/usr/local/bin:/usr/bin:/bin`
//!   and `C.UTF-8`), `HOME` the sandbox directory, `TMPDIR` its `tmp/`, and
//!   `AICITY_TASK_ID`, `AICITY_TASK_TYPE`, `AICITY_SANDBOX_ID`, `AICITY_WORKDIR`;
//!   nothing else of the runner's (its API key, the cloud credentials of its shell);
//! - on Unix, a process group of its own, killed whole when the time limit passes and
//!   when the command ends (nothing it started outlives it), and an address-space limit
//!   (`RLIMIT_AS`) when one is set.
//!
//! What it can still reach: whatever the agent's user can (other files by absolute
//! path, the network). Run the runner as a dedicated user, or use `e2b`, for more.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::exec::{Job, Line, Lines, Ran, Stream};

const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Runs `job` in the sandbox directory `dir`, sending its output lines to `lines`.
pub async fn run(dir: &Path, job: &Job, lines: mpsc::UnboundedSender<Line>) -> Result<Ran, String> {
    let stdin = tokio::fs::read(dir.join("task.json")).await.map_err(|e| {
        format!(
            "the sandbox {} has no readable task.json: {e}",
            dir.display()
        )
    })?;
    let tmp = dir.join("tmp");
    tokio::fs::create_dir_all(&tmp)
        .await
        .map_err(|e| format!("could not make {}: {e}", tmp.display()))?;
    let workdir = dir.display().to_string();
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(&job.command)
        .current_dir(dir)
        .env_clear()
        .env(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into()),
        )
        .env(
            "LANG",
            std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".into()),
        )
        .env("HOME", dir)
        .env("TMPDIR", &tmp)
        .envs(job.task_env(&workdir))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    {
        command.process_group(0);
        if let Some(limit) = job.memory_limit {
            // SAFETY: between fork and exec only setrlimit runs, which is
            // async-signal-safe, on a value computed before the fork.
            unsafe {
                command.pre_exec(move || {
                    let value = limit as libc::rlim_t;
                    let rlimit = libc::rlimit {
                        rlim_cur: value,
                        rlim_max: value,
                    };
                    if libc::setrlimit(libc::RLIMIT_AS, &rlimit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
    }
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("could not start the command: {e}"))?;
    let group = child.id();
    let out = read_lines(child.stdout.take(), Stream::Stdout, lines.clone());
    let err = read_lines(child.stderr.take(), Stream::Stderr, lines);
    if let Some(mut input) = child.stdin.take() {
        tokio::spawn(async move {
            // A command that ignores its stdin may close it early; that is fine.
            let _ = input.write_all(&stdin).await;
        });
    }
    let waited = tokio::time::timeout(job.timeout, child.wait()).await;
    // Whatever the command left running goes with it (and the time limit kills all).
    kill_group(group);
    let status = match waited {
        Ok(status) => Some(status.map_err(|e| format!("the command was lost: {e}"))?),
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    };
    // A process that left the group may hold the pipes open: do not wait for it long.
    let collect = |handle: tokio::task::JoinHandle<String>| async move {
        match tokio::time::timeout(Duration::from_secs(2), handle).await {
            Ok(Ok(text)) => text,
            _ => String::new(),
        }
    };
    let (stdout, stderr) = (collect(out).await, collect(err).await);
    let elapsed = started.elapsed();
    Ok(match status {
        None => Ran {
            timed_out: true,
            status: Some("killed at the time limit".into()),
            stdout,
            stderr,
            elapsed,
            ..Ran::default()
        },
        Some(status) => Ran {
            exit_code: status.code(),
            timed_out: false,
            status: describe(&status),
            stdout,
            stderr,
            elapsed,
        },
    })
}

fn read_lines<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    reader: Option<R>,
    stream: Stream,
    tx: mpsc::UnboundedSender<Line>,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut lines = Lines::new(stream, tx);
        if let Some(mut reader) = reader {
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = reader.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                lines.push(&buf[..n]);
            }
        }
        lines.finish()
    })
}

#[cfg(unix)]
fn kill_group(group: Option<u32>) {
    if let Some(pid) = group.and_then(|p| libc::pid_t::try_from(p).ok())
        && pid > 0
    {
        // SAFETY: kill(2) with a negative pid signals that process group; the group
        // is the command's own (process_group(0) above). ESRCH (gone) is fine.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

#[cfg(not(unix))]
fn kill_group(_group: Option<u32>) {}

#[cfg(unix)]
fn describe(status: &std::process::ExitStatus) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    status.signal().map(|s| format!("killed by signal {s}"))
}

#[cfg(not(unix))]
fn describe(_status: &std::process::ExitStatus) -> Option<String> {
    None
}
