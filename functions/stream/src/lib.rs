//! `stream`: `GET /api/v1/tasks/{id}/stream`, a task's events as server-sent events.
//!
//! Every data event carries `id:` (the event's sequence number) and an event name
//! (`status`, `progress`, `complete`, `error`, `dispute`); a client that reconnects with
//! `Last-Event-ID` gets only what came after. A comment line is sent as a heartbeat when
//! nothing happened for a while; the stream closes after the task's terminal event, or
//! after a bounded time with a `reconnect` event so the client resumes.
//! Same authorization as `GET /tasks/:id`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use aicity_domain::ids::TaskId;
use aicity_domain::task::model::Event;
use aicity_domain::{ApiError, ErrorCode};
use aicity_http::Context;
use aicity_http::auth;
use aicity_store::{StoreError, tasks as task_store};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::StreamBody;
use http_body_util::combinators::UnsyncBoxBody;
use lambda_http::{Request, Response};
use serde_json::Value;
use tokio::time::Instant;

/// The response body: a stream of SSE frames (or one JSON error body).
pub type SseBody = UnsyncBoxBody<Bytes, Infallible>;

#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// How often to look for new events.
    pub poll: Duration,
    /// A comment after this long without anything sent.
    pub heartbeat: Duration,
    /// The longest a connection stays open (Lambda allows 15 minutes).
    pub max_duration: Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(500),
            heartbeat: Duration::from_secs(15),
            max_duration: Duration::from_secs(14 * 60),
        }
    }
}

pub struct Streamer {
    pub ctx: Context,
    pub limits: StreamLimits,
}

fn body_of(bytes: Bytes) -> SseBody {
    let once =
        futures::stream::once(async move { Ok::<_, Infallible>(http_body::Frame::data(bytes)) });
    UnsyncBoxBody::new(StreamBody::new(once))
}

fn error_response(err: &ApiError) -> Response<SseBody> {
    let envelope = aicity_http::response::error_response(err);
    let (parts, body) = envelope.into_parts();
    let bytes = match body {
        lambda_http::Body::Text(text) => Bytes::from(text),
        lambda_http::Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    Response::from_parts(parts, body_of(bytes))
}

/// The task id of `/api/v1/tasks/{id}/stream`, from the path parameters (HTTP API) or
/// the raw path (a Function URL has no routes).
fn task_id(request: &Request) -> Result<TaskId, ApiError> {
    let from_path = request
        .uri()
        .path()
        .trim_end_matches('/')
        .rsplit('/')
        .nth(1)
        .map(str::to_owned);
    aicity_http::path_param(request, "id")
        .ok()
        .or(from_path)
        .and_then(|id| id.parse().ok())
        .ok_or_else(aicity_tasks::change::task_not_found)
}

/// `Last-Event-ID` (header, as EventSource sends it, or `lastEventId` in the query).
fn last_event_id(request: &Request) -> Result<u64, ApiError> {
    let raw = request
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| aicity_http::request::query_param(request, "lastEventId"));
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(0),
        Some(text) => text.parse().map_err(|_| {
            ApiError::invalid_field("Last-Event-ID", "must be an event sequence number")
        }),
    }
}

/// Checks the caller and answers with the stream, or with the error envelope.
pub async fn handle(streamer: &Streamer, request: Request) -> Response<SseBody> {
    // Boxed: the auth and store futures nest deep.
    match Box::pin(open(streamer, &request)).await {
        Ok((task, after)) => {
            let mut response = Response::new(UnsyncBoxBody::new(StreamBody::new(
                events(streamer.ctx.clone(), task, after, streamer.limits)
                    .map(|frame| Ok::<_, Infallible>(http_body::Frame::data(frame))),
            )));
            let headers = response.headers_mut();
            headers.insert(
                "content-type",
                "text/event-stream; charset=utf-8".parse().expect("static"),
            );
            headers.insert("cache-control", "no-cache".parse().expect("static"));
            headers.insert("x-accel-buffering", "no".parse().expect("static"));
            response
        }
        Err(err) => error_response(&err),
    }
}

async fn open(streamer: &Streamer, request: &Request) -> Result<(TaskId, u64), ApiError> {
    let ctx = &streamer.ctx;
    let caller = auth::caller(ctx, request).await?;
    let id = task_id(request)?;
    let after = last_event_id(request)?;
    let record = match task_store::get(ctx.db(), &ctx.table, &id).await {
        Ok(record) => record,
        Err(StoreError::NotFound) => return Err(aicity_tasks::change::task_not_found()),
        Err(err) => return Err(err.into()),
    };
    if !aicity_tasks::access::may_read(&caller, &record.task) {
        return Err(ApiError::with_message(
            ErrorCode::TaskForbidden,
            "You are not the submitter or the assigned agent of this task",
        ));
    }
    Ok((id, after))
}

/// One SSE frame for an event.
pub fn frame(event: &Event) -> Bytes {
    let kind = serde_json::to_value(event.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut data = event.data.clone();
    if let Value::Object(map) = &mut data {
        map.insert("seq".into(), Value::from(event.seq));
        map.insert("at".into(), Value::String(event.at.clone()));
    }
    Bytes::from(format!(
        "id: {}\nevent: {kind}\ndata: {data}\n\n",
        event.seq
    ))
}

struct State {
    ctx: Context,
    task: TaskId,
    after: u64,
    limits: StreamLimits,
    started: Instant,
    last_sent: Instant,
    pending: VecDeque<Bytes>,
    done: bool,
}

/// The frames: events after `after` as they happen, heartbeats, and a last frame.
pub fn events(
    ctx: Context,
    task: TaskId,
    after: u64,
    limits: StreamLimits,
) -> impl futures::Stream<Item = Bytes> + Send {
    let now = Instant::now();
    let state = State {
        ctx,
        task,
        after,
        limits,
        started: now,
        last_sent: now,
        pending: VecDeque::new(),
        done: false,
    };
    futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(frame) = s.pending.pop_front() {
                s.last_sent = Instant::now();
                return Some((frame, s));
            }
            if s.done {
                return None;
            }
            if s.started.elapsed() >= s.limits.max_duration {
                s.done = true;
                s.pending.push_back(reconnect(s.after));
                continue;
            }
            match poll(&s.ctx, &s.task, s.after).await {
                Ok((new, terminal)) => {
                    for event in &new {
                        s.after = event.seq;
                        s.pending.push_back(frame(event));
                    }
                    if terminal {
                        s.done = true;
                    }
                    if !s.pending.is_empty() || s.done {
                        continue;
                    }
                }
                Err(err) => {
                    // Tell the client to come back rather than end silently.
                    tracing::warn!(task = %s.task, error = %err, "event read failed");
                    s.done = true;
                    s.pending.push_back(reconnect(s.after));
                    continue;
                }
            }
            if s.last_sent.elapsed() >= s.limits.heartbeat {
                s.pending.push_back(Bytes::from_static(b": heartbeat\n\n"));
                continue;
            }
            tokio::time::sleep(s.limits.poll).await;
        }
    })
}

fn reconnect(after: u64) -> Bytes {
    Bytes::from(format!(
        "event: reconnect\ndata: {{\"lastEventId\":{after}}}\n\n"
    ))
}

/// New events, and whether the task has finished and every event is in hand.
async fn poll(ctx: &Context, task: &TaskId, after: u64) -> Result<(Vec<Event>, bool), StoreError> {
    let record = task_store::get(ctx.db(), &ctx.table, task).await?;
    let events = if record.last_event_seq > after {
        task_store::events(ctx.db(), &ctx.table, task, after).await?
    } else {
        Vec::new()
    };
    let seen = events.last().map_or(after, |e| e.seq);
    Ok((
        events,
        record.task.status.is_terminal() && seen >= record.last_event_seq,
    ))
}
