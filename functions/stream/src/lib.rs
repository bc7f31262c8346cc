//! `stream`: `GET /api/v1/tasks/{id}/stream`, a task's events as server-sent events.
//!
//! Every data event carries `id:` (the event's sequence number) and an event name
//! (`status`, `progress`, `complete`, `error`, `dispute`); a client that reconnects with
//! `Last-Event-ID` gets only what came after. A comment line is sent as a heartbeat when
//! nothing happened for a while; the stream closes after the task's terminal event, or
//! after a bounded time with a `reconnect` event so the client resumes.
//! Same authorization as `GET /tasks/:id`.
//!
//! Limits (an open stream holds a Lambda for up to 14 minutes, so each is capped):
//! - each poll is one strongly consistent Query for the events after the last one sent
//!   (at most [`EVENTS_PER_POLL`]): 1 RCU when nothing happened, whatever the task's
//!   size; the task item itself (its status and parties, billed by its whole size) is
//!   read when the stream opens and then only when new events arrived;
//! - at most [`StreamLimits::max_per_caller`] streams open at once per principal (an
//!   owner, whatever its sessions; an agent, whatever its keys): `429 RATE_LIMITED`
//!   beyond, with `details.retryAfter` and `details.limit`;
//! - access is checked again while the stream runs: the task's parties whenever new
//!   events arrived (a re-route always writes one), the caller's credentials every
//!   [`StreamLimits::recheck`] (a rotated or deactivated key, a signed-out or expired
//!   session, a suspended agent or owner). Either ends the stream with an `error` event carrying the code the API
//!   would answer (`{"code", "message"}`, no `id:`), then closes.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use aicity_domain::ids::TaskId;
use aicity_domain::task::model::Event;
use aicity_domain::{ApiError, ErrorCode};
use aicity_http::Context;
use aicity_http::auth::{self, Caller};
use aicity_store::config::MissingEnv;
use aicity_store::stream_slots::{self, Acquire};
use aicity_store::tasks::TaskParties;
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

/// The most events one poll reads (one Query page); more are read by the next poll,
/// without waiting.
pub const EVENTS_PER_POLL: u32 = 100;

#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// How often to look for new events (and whether the caller may still see the task).
    pub poll: Duration,
    /// A comment after this long without anything sent.
    pub heartbeat: Duration,
    /// The longest a connection stays open (Lambda allows 15 minutes).
    pub max_duration: Duration,
    /// How often the caller's credentials are checked again while the stream runs.
    pub recheck: Duration,
    /// Streams one principal (owner or agent) may have open at once.
    pub max_per_caller: u32,
    /// How long a stream's slot is held without renewal (renewed every third of it): a
    /// function that dies without giving its slot back blocks it no longer than this.
    pub lease: Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(500),
            heartbeat: Duration::from_secs(15),
            max_duration: Duration::from_secs(14 * 60),
            recheck: Duration::from_secs(2),
            max_per_caller: 10,
            lease: Duration::from_secs(60),
        }
    }
}

impl StreamLimits {
    /// The defaults, with `STREAM_MAX_PER_CALLER` if set.
    pub fn from_env() -> Result<Self, MissingEnv> {
        let mut limits = Self::default();
        if let Ok(value) = std::env::var("STREAM_MAX_PER_CALLER")
            && !value.trim().is_empty()
        {
            limits.max_per_caller = value
                .trim()
                .parse()
                .map_err(|_| MissingEnv("STREAM_MAX_PER_CALLER"))?;
        }
        Ok(limits)
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
        Ok(opened) => {
            let mut response = Response::new(UnsyncBoxBody::new(StreamBody::new(
                Box::pin(events(opened, streamer.limits))
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

/// A stream the caller may watch, its slot taken.
pub struct Opened {
    ctx: Context,
    caller: Caller,
    task: TaskId,
    after: u64,
    /// The task's last event number if it had finished when last read: the stream ends
    /// once that event is sent.
    finished_at: Option<u64>,
    slot: Slot,
}

/// The last event number of a finished task (`None` while it runs).
fn finished_at(parties: &TaskParties) -> Option<u64> {
    parties
        .status
        .is_terminal()
        .then_some(parties.last_event_seq)
}

/// Whom the per-caller cap counts: the owner (all its sessions) or the agent (all its
/// keys), never the token.
pub fn principal(caller: &Caller) -> String {
    match caller {
        Caller::Owner(owner) => owner.owner.id.to_string(),
        Caller::Agent(record) => record.agent.id.to_string(),
    }
}

fn forbidden() -> ApiError {
    ApiError::with_message(
        ErrorCode::TaskForbidden,
        "You are not the submitter or the assigned agent of this task",
    )
}

/// The answer to an open past the cap.
pub fn too_many_streams(cap: u32, retry_after: u64) -> ApiError {
    ApiError::with_message(
        ErrorCode::RateLimited,
        format!(
            "At most {cap} task streams may be open at once for one caller; close one, or retry after {retry_after} seconds"
        ),
    )
    .details(serde_json::json!({ "retryAfter": retry_after, "limit": cap }))
}

async fn open(streamer: &Streamer, request: &Request) -> Result<Opened, ApiError> {
    let ctx = &streamer.ctx;
    let limits = streamer.limits;
    let caller = auth::caller(ctx, request).await?;
    let id = task_id(request)?;
    let after = last_event_id(request)?;
    let parties = match task_store::parties(ctx.db(), &ctx.table, &id).await {
        Ok(parties) => parties,
        Err(StoreError::NotFound) => return Err(aicity_tasks::change::task_not_found()),
        Err(err) => return Err(err.into()),
    };
    if !aicity_tasks::access::may_read_parties(&caller, &parties) {
        return Err(forbidden());
    }
    let (who, lease_id) = (principal(&caller), ulid::Ulid::generate().to_string());
    let granted = stream_slots::acquire(
        ctx.db(),
        &ctx.table,
        &who,
        &lease_id,
        limits.max_per_caller,
        limits.lease,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .map_err(ApiError::from)?;
    if let Acquire::Full { retry_after } = granted {
        return Err(too_many_streams(limits.max_per_caller, retry_after));
    }
    Ok(Opened {
        ctx: ctx.clone(),
        caller,
        task: id,
        after,
        finished_at: finished_at(&parties),
        slot: Slot {
            ctx: ctx.clone(),
            principal: who,
            id: lease_id,
            renewed: Instant::now(),
            held: true,
        },
    })
}

/// A stream's slot under the per-caller cap: given back when the stream ends, or (the
/// client went away and the body was dropped) from `Drop` in the background; if the
/// function dies, its lease runs out.
struct Slot {
    ctx: Context,
    principal: String,
    id: String,
    renewed: Instant,
    held: bool,
}

impl Slot {
    async fn release(&mut self) {
        if !std::mem::replace(&mut self.held, false) {
            return;
        }
        let ctx = &self.ctx;
        if let Err(err) =
            stream_slots::release(ctx.db(), &ctx.table, &self.principal, &self.id).await
        {
            tracing::warn!(error = %err, "stream slot not given back; its lease will run out");
        }
    }

    /// Renews the lease when a third of it has passed; `false` once it is lost.
    async fn keep(&mut self, lease: Duration) -> Result<bool, StoreError> {
        if self.renewed.elapsed() < lease / 3 {
            return Ok(true);
        }
        let ctx = &self.ctx;
        let kept = stream_slots::renew(
            ctx.db(),
            &ctx.table,
            &self.principal,
            &self.id,
            lease,
            time::OffsetDateTime::now_utc(),
        )
        .await?;
        self.renewed = Instant::now();
        self.held = kept;
        Ok(kept)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !std::mem::replace(&mut self.held, false) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // Not a `Slot`: a task dropped unrun (a runtime shutting down) must not spawn again.
        let (ctx, principal, id) = (
            self.ctx.clone(),
            std::mem::take(&mut self.principal),
            std::mem::take(&mut self.id),
        );
        runtime.spawn(async move {
            if let Err(err) = stream_slots::release(ctx.db(), &ctx.table, &principal, &id).await {
                tracing::warn!(error = %err, "stream slot not given back; its lease will run out");
            }
        });
    }
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

/// The frame that ends a stream whose caller may no longer watch: an `error` event
/// with the code the API would answer (no `id:`, it is not one of the task's events).
pub fn error_frame(err: &ApiError) -> Bytes {
    let mut data = serde_json::json!({ "code": err.code.as_str(), "message": err.message });
    if let Some(details) = &err.details {
        data["details"] = details.clone();
    }
    Bytes::from(format!("event: error\ndata: {data}\n\n"))
}

struct State {
    opened: Opened,
    limits: StreamLimits,
    started: Instant,
    last_sent: Instant,
    last_check: Instant,
    pending: VecDeque<Bytes>,
    done: bool,
}

impl State {
    /// Ends the stream after what is pending and `last`.
    fn end(&mut self, last: Bytes) {
        self.done = true;
        self.pending.push_back(last);
    }

    /// Ends the stream over an error: refused access closes it for good (`error`), a
    /// failure on our side asks the client to come back (`reconnect`).
    fn end_with(&mut self, err: &ApiError) {
        if err.http_status() >= 500 {
            tracing::warn!(task = %self.opened.task, error = %err, "stream check failed");
            let after = self.opened.after;
            self.end(reconnect(after));
        } else {
            self.end(error_frame(err));
        }
    }
}

/// The frames: events after the opened position as they happen, heartbeats, and a last
/// frame.
pub fn events(opened: Opened, limits: StreamLimits) -> impl futures::Stream<Item = Bytes> + Send {
    let now = Instant::now();
    let state = State {
        opened,
        limits,
        started: now,
        last_sent: now,
        last_check: now,
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
                s.opened.slot.release().await;
                return None;
            }
            if s.started.elapsed() >= s.limits.max_duration {
                let after = s.opened.after;
                s.end(reconnect(after));
                continue;
            }
            if s.last_check.elapsed() >= s.limits.recheck {
                match Box::pin(auth::recheck(&s.opened.ctx, &s.opened.caller)).await {
                    Ok(caller) => {
                        s.opened.caller = caller;
                        s.last_check = Instant::now();
                    }
                    Err(err) => {
                        s.end_with(&err);
                        continue;
                    }
                }
            }
            match s.opened.slot.keep(s.limits.lease).await {
                Ok(true) => {}
                // The slot ran out (this stream stalled past its lease): open again.
                Ok(false) | Err(_) => {
                    let after = s.opened.after;
                    s.end(reconnect(after));
                    continue;
                }
            }
            match poll(&mut s.opened).await {
                Ok(Polled::Events(new)) => {
                    for event in &new {
                        s.opened.after = event.seq;
                        s.pending.push_back(frame(event));
                    }
                    if s.opened
                        .finished_at
                        .is_some_and(|last| s.opened.after >= last)
                    {
                        s.done = true;
                    }
                    if !s.pending.is_empty() || s.done {
                        continue;
                    }
                }
                Ok(Polled::Forbidden) => {
                    s.end_with(&forbidden());
                    continue;
                }
                Err(StoreError::NotFound) => {
                    s.end_with(&aicity_tasks::change::task_not_found());
                    continue;
                }
                Err(err) => {
                    // Tell the client to come back rather than end silently.
                    tracing::warn!(task = %s.opened.task, error = %err, "event read failed");
                    let after = s.opened.after;
                    s.end(reconnect(after));
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

enum Polled {
    /// The events after the last one sent (none if nothing happened).
    Events(Vec<Event>),
    /// The caller is no longer a party to the task (it was routed to another agent).
    Forbidden,
}

/// One poll: the events after the last one sent, one Query (1 RCU when there are none,
/// see [`task_store::events_page`]). Only when some arrived is the task read (by its
/// whole size, see [`task_store::parties`]), for what events do not say for sure:
/// whether the caller is still a party and whether the task has finished (a `status`
/// event's `status` is the task's, but a `dispute` event's is the dispute's, and the
/// task may have moved on since the events read). Every change a watcher must see
/// comes with an event in the same transaction: a re-route (`status`, with the new
/// `agentId` or none) and every move to a terminal status (`status`), so a poll that
/// finds no event has nothing to re-check.
async fn poll(opened: &mut Opened) -> Result<Polled, StoreError> {
    let ctx = &opened.ctx;
    let new = task_store::events_page(
        ctx.db(),
        &ctx.table,
        &opened.task,
        opened.after,
        EVENTS_PER_POLL,
    )
    .await?;
    if new.is_empty() {
        return Ok(Polled::Events(new));
    }
    let parties = task_store::parties(ctx.db(), &ctx.table, &opened.task).await?;
    if !aicity_tasks::access::may_read_parties(&opened.caller, &parties) {
        return Ok(Polled::Forbidden);
    }
    opened.finished_at = finished_at(&parties);
    Ok(Polled::Events(new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_documented_limits() {
        let limits = StreamLimits::default();
        assert_eq!(limits.max_per_caller, 10);
        assert!(limits.recheck <= Duration::from_secs(5));
        assert!(limits.lease < limits.max_duration);
    }

    #[test]
    fn past_the_cap_is_rate_limited_with_the_wait_and_the_limit() {
        let err = too_many_streams(10, 42);
        assert_eq!(err.code, ErrorCode::RateLimited);
        assert_eq!(err.http_status(), 429);
        let details = err.details.clone().unwrap();
        assert_eq!(details["retryAfter"], 42);
        assert_eq!(details["limit"], 10);
        let response = error_response(&err);
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "42");
    }

    #[test]
    fn a_refusal_is_an_error_event_without_an_id() {
        let frame = error_frame(&ApiError::new(ErrorCode::InvalidApiKey));
        let text = std::str::from_utf8(&frame).unwrap();
        assert!(text.starts_with("event: error\ndata: "), "{text}");
        assert!(text.ends_with("\n\n"));
        assert!(!text.contains("id:"));
        let data: Value =
            serde_json::from_str(text.trim_start_matches("event: error\ndata: ").trim()).unwrap();
        assert_eq!(data["code"], "INVALID_API_KEY");
        assert_eq!(data["message"], "Invalid API key");
    }
}
