//! What running a task's command gives back, wherever it runs, and how its output
//! lines become progress events.

use std::collections::VecDeque;
use std::time::Duration;

use aicity_domain::task::model::MAX_PROGRESS_CHARS;
use aicity_sdk::AgentCity;
use tokio::sync::mpsc;

/// The command of a task, and the limits it runs under.
#[derive(Debug, Clone)]
pub struct Job {
    /// Run with `sh -c`.
    pub command: String,
    pub task_id: String,
    pub task_type: String,
    pub sandbox_id: String,
    /// Stopped (killed) after this.
    pub timeout: Duration,
    /// The command's address space, in bytes (`RLIMIT_AS` / `ulimit -v`).
    pub memory_limit: Option<u64>,
}

impl Job {
    /// What the command finds in its environment besides the basics.
    pub fn task_env(&self, workdir: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AICITY_TASK_ID", self.task_id.clone()),
            ("AICITY_TASK_TYPE", self.task_type.clone()),
            ("AICITY_SANDBOX_ID", self.sandbox_id.clone()),
            ("AICITY_WORKDIR", workdir.to_owned()),
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line the command printed.
pub type Line = (Stream, String);

/// What the command gave back.
#[derive(Debug, Clone, Default)]
pub struct Ran {
    /// Its exit code; `None` when it did not exit by itself (a signal, the time limit).
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// How it ended when not by a plain exit (e.g. `signal: killed`).
    pub status: Option<String>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Ran {
    pub fn success(&self) -> bool {
        !self.timed_out && self.exit_code == Some(0)
    }
}

/// Most of stdout kept (the task's output is far smaller); stderr keeps its tail.
pub const MAX_STDOUT: usize = 4 * 1024 * 1024;
pub const MAX_STDERR: usize = 64 * 1024;

/// Splits a stream of bytes into lines, keeps the text, and sends each line on.
pub struct Lines {
    stream: Stream,
    partial: Vec<u8>,
    pub text: String,
    max: usize,
    tx: mpsc::UnboundedSender<Line>,
}

impl Lines {
    pub fn new(stream: Stream, tx: mpsc::UnboundedSender<Line>) -> Self {
        let max = match stream {
            Stream::Stdout => MAX_STDOUT,
            Stream::Stderr => MAX_STDERR,
        };
        Self {
            stream,
            partial: Vec::new(),
            text: String::new(),
            max,
            tx,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
        while let Some(at) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=at).collect();
            self.line(&line);
        }
    }

    pub fn finish(mut self) -> String {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
        }
        self.text
    }

    fn line(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        if self.stream == Stream::Stderr && self.text.len() + text.len() > self.max {
            // Keep the tail: the end of stderr says what went wrong.
            let keep = self.text.len().saturating_sub(self.max / 2);
            let cut = (keep..=self.text.len())
                .find(|i| self.text.is_char_boundary(*i))
                .unwrap_or(self.text.len());
            self.text.drain(..cut);
        }
        if self.stream == Stream::Stderr || self.text.len() + text.len() <= self.max {
            self.text.push_str(&text);
        }
        let trimmed = text.trim_end_matches(['\n', '\r']);
        if !trimmed.trim().is_empty() {
            let _ = self.tx.send((self.stream, trimmed.to_owned()));
        }
    }
}

/// A line as shown in a progress message (stderr marked), at most this long.
const MAX_LINE_CHARS: usize = 300;
/// Lines kept between two progress messages; older ones are only counted.
const MAX_PENDING_LINES: usize = 100;

fn shown(line: &Line) -> String {
    let (stream, text) = line;
    let text: String = if text.chars().count() > MAX_LINE_CHARS {
        let cut: String = text.chars().take(MAX_LINE_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        text.clone()
    };
    match stream {
        Stream::Stdout => text,
        Stream::Stderr => format!("stderr: {text}"),
    }
}

/// One progress message of the newest lines, within the API's limit; the lines left
/// out are counted at the top.
pub fn batch_message(lines: &VecDeque<Line>, dropped: usize) -> String {
    let mut kept: Vec<String> = Vec::new();
    let mut used = 0;
    let mut left_out = dropped;
    let header_room = 40;
    for line in lines.iter().rev() {
        let text = shown(line);
        let cost = text.chars().count() + 1;
        if used + cost + header_room > MAX_PROGRESS_CHARS {
            left_out += lines.len() - kept.len();
            break;
        }
        used += cost;
        kept.push(text);
    }
    kept.reverse();
    let body = kept.join("\n");
    if left_out > 0 {
        format!("[{left_out} earlier line(s) not shown]\n{body}")
    } else {
        body
    }
}

/// Posts the command's lines as progress events while it runs: at most one message
/// every `every`, holding the lines printed since the last one (newest first kept),
/// until the sender side is dropped; then what is left.
pub async fn forward_progress(
    city: AgentCity,
    task_id: String,
    mut rx: mpsc::UnboundedReceiver<Line>,
    every: Duration,
) {
    let mut pending: VecDeque<Line> = VecDeque::new();
    let mut dropped = 0usize;
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    let post = |pending: &mut VecDeque<Line>, dropped: &mut usize| {
        let message = batch_message(pending, *dropped);
        pending.clear();
        *dropped = 0;
        let (city, task_id) = (city.clone(), task_id.clone());
        async move {
            if let Err(err) = city.tasks().progress(&task_id, &message, None).await {
                tracing::warn!(task = task_id, error = %err, "progress not posted");
            }
        }
    };
    loop {
        tokio::select! {
            line = rx.recv() => match line {
                Some(line) => {
                    pending.push_back(line);
                    if pending.len() > MAX_PENDING_LINES {
                        pending.pop_front();
                        dropped += 1;
                    }
                }
                None => break,
            },
            _ = ticker.tick() => {
                if !pending.is_empty() {
                    post(&mut pending, &mut dropped).await;
                }
            }
        }
    }
    if !pending.is_empty() {
        post(&mut pending, &mut dropped).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_keeps_the_newest_lines_within_the_limit() {
        let lines: VecDeque<Line> = (0..500)
            .map(|i| {
                let stream = if i % 2 == 0 {
                    Stream::Stdout
                } else {
                    Stream::Stderr
                };
                (stream, format!("line {i} {}", "x".repeat(i % 400)))
            })
            .collect();
        let message = batch_message(&lines, 7);
        assert!(message.chars().count() <= MAX_PROGRESS_CHARS, "{message}");
        assert!(message.starts_with('['), "{message}");
        assert!(message.contains("line 499 "), "the newest is kept");
        assert!(!message.contains("line 0 "));
        let few: VecDeque<Line> = [(Stream::Stdout, "a".into()), (Stream::Stderr, "b".into())]
            .into_iter()
            .collect();
        assert_eq!(batch_message(&few, 0), "a\nstderr: b");
    }

    #[test]
    fn lines_are_split_kept_and_sent() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut lines = Lines::new(Stream::Stdout, tx);
        lines.push(b"one\ntw");
        lines.push(b"o\n\nthree");
        let text = lines.finish();
        assert_eq!(text, "one\ntwo\n\nthree");
        let mut got = Vec::new();
        while let Ok((_, line)) = rx.try_recv() {
            got.push(line);
        }
        assert_eq!(got, ["one", "two", "three"]);
    }
}
