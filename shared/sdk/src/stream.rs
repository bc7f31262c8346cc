//! A task's live events (server-sent events), resuming with `Last-Event-ID` whenever a
//! connection ends early: on the server's `reconnect` event or a network error.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::Value;

use crate::{AgentCity, Error};

/// One event: its sequence number (`id:`), name (`status`, `progress`, `complete`,
/// `error`, `dispute`) and data.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    pub id: Option<u64>,
    pub event: String,
    pub data: Value,
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Reconnects after a network error at most this often in a row.
const MAX_RECONNECTS: u32 = 5;

pub struct TaskStream {
    client: AgentCity,
    task: String,
    last_id: u64,
    buffer: String,
    body: Option<Body>,
    done: bool,
    failures: u32,
}

/// One frame from the front of `buffer`, if a whole one is there.
fn take_frame(buffer: &mut String) -> Option<(Option<u64>, String, Option<String>)> {
    let end = buffer.find("\n\n")?;
    let block: String = buffer.drain(..end + 2).collect();
    let (mut id, mut event, mut data) = (None, "message".to_owned(), None);
    for line in block.lines() {
        if line.starts_with(':') {
            continue;
        } else if let Some(v) = line.strip_prefix("id:") {
            id = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("event:") {
            event = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("data:") {
            data = Some(v.trim().to_owned());
        }
    }
    Some((id, event, data))
}

impl TaskStream {
    pub(crate) fn new(client: AgentCity, task: String) -> Self {
        Self {
            client,
            task,
            last_id: 0,
            buffer: String::new(),
            body: None,
            done: false,
            failures: 0,
        }
    }

    /// Resume after this event (as a reconnect does).
    pub fn resume_after(mut self, last_event_id: u64) -> Self {
        self.last_id = last_event_id;
        self
    }

    pub fn last_event_id(&self) -> u64 {
        self.last_id
    }

    async fn connect(&mut self) -> Result<(), Error> {
        let (url, headers) = self.client.tasks().stream_url(&self.task)?;
        let mut request = self
            .client
            .http()
            .get(url)
            .timeout(Duration::from_secs(16 * 60));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if self.last_id > 0 {
            request = request.header("last-event-id", self.last_id.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| Error::Network(e.to_string()))?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            return Err(Error::from_status(status, &body, None));
        }
        self.body = Some(Box::pin(response.bytes_stream()));
        Ok(())
    }

    /// The next event; `None` once the task finished and every event was delivered.
    pub async fn next(&mut self) -> Option<Result<StreamEvent, Error>> {
        loop {
            while let Some((id, event, data)) = take_frame(&mut self.buffer) {
                let Some(data) = data else { continue };
                if event == "reconnect" {
                    self.body = None;
                    self.buffer.clear();
                    continue;
                }
                if let Some(id) = id {
                    self.last_id = id;
                }
                let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                return Some(Ok(StreamEvent { id, event, data }));
            }
            if self.done {
                return None;
            }
            let Some(body) = self.body.as_mut() else {
                match self.connect().await {
                    Ok(()) => continue,
                    Err(err) if err.is_retryable() && self.failures < MAX_RECONNECTS => {
                        self.failures += 1;
                        tokio::time::sleep(Duration::from_millis(250 * u64::from(self.failures)))
                            .await;
                        continue;
                    }
                    Err(err) => {
                        self.done = true;
                        return Some(Err(err));
                    }
                }
            };
            match body.next().await {
                Some(Ok(chunk)) => {
                    self.failures = 0;
                    self.buffer.push_str(&String::from_utf8_lossy(&chunk));
                }
                Some(Err(_)) => {
                    // Dropped mid-stream: come back after the last event seen.
                    self.body = None;
                    self.buffer.clear();
                }
                // The server closes after the terminal event (a timed-out connection
                // sends `reconnect` first, handled above).
                None => {
                    self.body = None;
                    self.done = true;
                }
            }
        }
    }
}
