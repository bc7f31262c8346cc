//! `aicity webhooks`: the loopback receiver that `webhooks listen` and `agent run
//! --webhook` share (it checks every delivery's signature before anything else sees
//! it), and what the commands parse and print.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aicity_sdk::webhooks::{
    Delivery, Event, SignatureError, Webhook, WebhookEventType, verify_signature,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// The path the receiver registers (any path is accepted).
pub const CALLBACK_PATH: &str = "/aicity/webhooks";
/// How far a delivery's signature timestamp may be from the local clock.
pub const TOLERANCE: Duration = Duration::from_secs(300);
/// How many event ids the receiver remembers to mark redeliveries.
const REMEMBERED: usize = 10_000;

/// Binds the receiver on `127.0.0.1:<port>` (0: any free port).
pub async fn bind(port: u16) -> std::io::Result<(TcpListener, u16)> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}

/// The URL registered for a receiver on `port`.
pub fn callback_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}{CALLBACK_PATH}")
}

/// A delivery whose signature checked out (answered 200).
#[derive(Debug, Clone)]
pub struct Delivered {
    pub event: Event,
    /// The raw body, exactly as signed.
    pub body: Bytes,
    pub headers: HeaderMap,
    /// The receiver had already seen this event id (a retry or a redelivery).
    pub duplicate: bool,
}

/// What arrived at the receiver.
#[derive(Debug, Clone)]
pub enum Received {
    Event(Box<Delivered>),
    /// A request refused with 400.
    Rejected {
        reason: SignatureError,
    },
}

struct Receiver {
    secret: String,
    tolerance: Duration,
    sink: mpsc::UnboundedSender<Received>,
    seen: Mutex<(HashSet<String>, VecDeque<String>)>,
}

impl Receiver {
    /// Remembers `id`; whether it was already known.
    fn seen_before(&self, id: &str) -> bool {
        let mut guard = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let (set, order) = &mut *guard;
        if set.contains(id) {
            return true;
        }
        set.insert(id.to_owned());
        order.push_back(id.to_owned());
        if order.len() > REMEMBERED {
            if let Some(oldest) = order.pop_front() {
                set.remove(&oldest);
            }
        }
        false
    }
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "POST only\n");
    }
    match verify_signature(&receiver.secret, &headers, &body, receiver.tolerance) {
        Ok(event) => {
            let duplicate = receiver.seen_before(&event.id);
            let _ = receiver.sink.send(Received::Event(Box::new(Delivered {
                event,
                body,
                headers,
                duplicate,
            })));
            (StatusCode::OK, "ok\n")
        }
        Err(reason) => {
            let _ = receiver.sink.send(Received::Rejected { reason });
            (StatusCode::BAD_REQUEST, "bad signature\n")
        }
    }
}

/// Serves `listener` until the returned task is aborted: every POST is verified with
/// `secret` (200 and [`Received::Event`], or 400 and [`Received::Rejected`]).
pub fn serve(
    listener: TcpListener,
    secret: String,
    tolerance: Duration,
) -> (
    tokio::task::JoinHandle<()>,
    mpsc::UnboundedReceiver<Received>,
) {
    let (sink, received) = mpsc::unbounded_channel();
    let state = Arc::new(Receiver {
        secret,
        tolerance,
        sink,
        seen: Mutex::default(),
    });
    let app = axum::Router::new().fallback(receive).with_state(state);
    let task = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::warn!(error = %err, "the webhook receiver stopped");
        }
    });
    (task, received)
}

/// Every event type the caller may subscribe to: all of them for an owner, all but
/// `approval.requested` for an agent.
pub fn default_events(agent: bool) -> Vec<String> {
    WebhookEventType::ALL
        .into_iter()
        .filter(|t| !(agent && *t == WebhookEventType::ApprovalRequested))
        .map(|t| t.as_str().to_owned())
        .collect()
}

/// Events given on the command line; `None` for `all` (what the caller may have).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventList(pub Option<Vec<String>>);

impl EventList {
    /// The events to subscribe to; `agent`: the caller is an agent.
    pub fn resolve(list: Option<&EventList>, agent: bool) -> Vec<String> {
        list.and_then(|l| l.0.clone())
            .unwrap_or_else(|| default_events(agent))
    }
}

/// The `--events` value parser.
pub fn parse_event_list(text: &str) -> Result<EventList, String> {
    parse_events(text).map(EventList)
}

/// `--events task.assigned,task.completed` (or `all`: `None`, the default set).
pub fn parse_events(text: &str) -> Result<Option<Vec<String>>, String> {
    if text.trim().eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    let mut events = Vec::new();
    for name in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let Some(kind) = WebhookEventType::parse(name) else {
            let known: Vec<&str> = WebhookEventType::ALL.iter().map(|t| t.as_str()).collect();
            return Err(format!(
                "unknown event {name:?}; the events are {} (or `all`)",
                known.join(", ")
            ));
        };
        if !events.iter().any(|e| e == kind.as_str()) {
            events.push(kind.as_str().to_owned());
        }
    }
    if events.is_empty() {
        return Err("name at least one event (task.assigned,task.completed), or `all`".into());
    }
    Ok(Some(events))
}

fn text<'a>(data: &'a Value, key: &str) -> Option<&'a str> {
    data.get(key).and_then(Value::as_str)
}

fn cents(value: &Value) -> Option<String> {
    value
        .as_i64()
        .map(|c| format!("${}.{:02}", c / 100, (c % 100).abs()))
}

/// One line about what an event says, e.g. `task_… code_review submitted → ag_…`.
pub fn summary(event: &Event) -> String {
    let data = &event.data;
    let task = text(data, "taskId").unwrap_or("?");
    match event.event_type() {
        Some(
            WebhookEventType::TaskAssigned
            | WebhookEventType::TaskCompleted
            | WebhookEventType::TaskFailed
            | WebhookEventType::TaskRefunded,
        ) => {
            let mut line = format!(
                "{task} {} {}",
                text(data, "taskType").unwrap_or("?"),
                text(data, "status").unwrap_or("?")
            );
            if let Some(agent) = text(data, "agentId") {
                line.push_str(&format!(" → {agent}"));
            }
            if let Some(charged) = cents(&data["creditsCharged"]) {
                line.push_str(&format!(", charged {charged}"));
            }
            if let Some(score) = data["qualityScore"].as_i64() {
                line.push_str(&format!(", quality {score}"));
            }
            if let Some(reason) = text(data, "failureReason") {
                line.push_str(&format!(", {reason}"));
            }
            line
        }
        Some(WebhookEventType::FeedbackReceived) => format!(
            "{task} feedback {} ({})",
            text(data, "feedback").unwrap_or("?"),
            text(data, "status").unwrap_or("?")
        ),
        Some(WebhookEventType::DisputeFiled | WebhookEventType::DisputeResolved) => format!(
            "{} on {task} {}",
            text(data, "disputeId").unwrap_or("dispute"),
            text(data, "disputeStatus").unwrap_or("?")
        ),
        Some(WebhookEventType::ApprovalRequested) => {
            let mut line = format!(
                "{} for {task}",
                text(data, "approvalId").unwrap_or("approval")
            );
            if let Some(amount) = cents(&data["amount"]).or_else(|| cents(&data["maxBudget"])) {
                line.push_str(&format!(" {amount}"));
            }
            if let Some(agent) = text(data, "agentId") {
                line.push_str(&format!(" by {agent}"));
            }
            line
        }
        None => {
            let mut compact = data.to_string();
            if compact.len() > 120 {
                let mut end = 117;
                while !compact.is_char_boundary(end) {
                    end -= 1;
                }
                compact.truncate(end);
                compact.push('…');
            }
            compact
        }
    }
}

/// The line `webhooks listen` prints for an event.
pub fn event_line(event: &Event, duplicate: bool) -> String {
    format!(
        "{}  {:<18} {}  {}{}",
        event.created_at,
        event.kind,
        event.id,
        summary(event),
        if duplicate { "  (again)" } else { "" }
    )
}

/// The task to take for a verified event, when it is a `task.assigned` to `me` (the
/// buyer gets the event too, for tasks it submitted).
pub fn assigned_to_me(event: &Event, me: &str) -> Option<String> {
    if event.event_type() != Some(WebhookEventType::TaskAssigned) {
        return None;
    }
    if text(&event.data, "agentId") != Some(me) {
        return None;
    }
    event.task_id().map(str::to_owned)
}

/// `wh_…  active  https://…  task.assigned,task.completed`.
pub fn webhook_line(webhook: &Webhook) -> String {
    let mut line = format!(
        "{}  {:<8} {}  {}",
        webhook.id,
        webhook.status,
        webhook.url,
        webhook.events.join(",")
    );
    if let Some(at) = &webhook.disabled_at {
        line.push_str(&format!(
            "  (disabled {at}; aicity webhooks enable {})",
            webhook.id
        ));
    } else if let Some(since) = &webhook.failing_since {
        line.push_str(&format!("  (failing since {since})"));
    }
    line
}

/// A delivery and its attempts, one per line.
pub fn delivery_text(delivery: &Delivery) -> String {
    let mut text = format!(
        "{}  {:<9} {:<18} {}  {}",
        delivery.id, delivery.status, delivery.event_type, delivery.event_id, delivery.created_at
    );
    for attempt in &delivery.attempts {
        let answer = match (attempt.status_code, &attempt.error) {
            (Some(code), Some(error)) => format!("{code} {error}"),
            (Some(code), None) => code.to_string(),
            (None, Some(error)) => error.clone(),
            (None, None) => "no answer".into(),
        };
        text.push_str(&format!(
            "\n    {}  {answer}  {} ms",
            attempt.at, attempt.latency_ms
        ));
    }
    text
}

/// Headers not to pass on when forwarding (hop by hop, or set again by the client).
fn forwardable(name: &str) -> bool {
    !matches!(
        name,
        "host" | "content-length" | "connection" | "transfer-encoding" | "keep-alive" | "upgrade"
    )
}

/// Sends a verified delivery on as it came (same body and signature headers) to `url`;
/// the status the target answered.
pub async fn forward(
    client: &reqwest::Client,
    url: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<u16, String> {
    let mut request = client.post(url).body(body);
    for (name, value) in headers {
        if forwardable(name.as_str()) {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    request
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use aicity_sdk::webhooks::{Attempt, signature_header};
    use serde_json::json;

    use super::*;

    fn event(kind: &str, data: Value) -> Event {
        Event {
            id: "evt_1".into(),
            kind: kind.into(),
            created_at: "2026-03-01T10:00:00Z".into(),
            data,
        }
    }

    #[test]
    fn events_parse_and_default_to_what_the_caller_may_have() {
        assert_eq!(default_events(false).len(), 8);
        let agent = default_events(true);
        assert_eq!(agent.len(), 7);
        assert!(!agent.iter().any(|e| e == "approval.requested"));
        assert_eq!(parse_events("all"), Ok(None));
        assert_eq!(
            parse_events(" task.assigned , task.failed,task.assigned"),
            Ok(Some(vec!["task.assigned".into(), "task.failed".into()]))
        );
        let err = parse_events("task.assigned,task.done").unwrap_err();
        assert!(
            err.contains("\"task.done\"") && err.contains("dispute.filed"),
            "{err}"
        );
        assert!(parse_events(" , ").is_err());
    }

    #[test]
    fn summaries_say_what_happened_in_one_line() {
        let assigned = event(
            "task.assigned",
            json!({"taskId": "task_1", "taskType": "code_review", "status": "submitted",
                "agentId": "ag_1", "maxBudget": 5000, "creditsCharged": null}),
        );
        assert_eq!(summary(&assigned), "task_1 code_review submitted → ag_1");
        assert_eq!(
            event_line(&assigned, true),
            "2026-03-01T10:00:00Z  task.assigned      evt_1  task_1 code_review submitted → ag_1  (again)"
        );
        let completed = event(
            "task.completed",
            json!({"taskId": "task_1", "taskType": "code_review", "status": "completed",
                "agentId": "ag_1", "creditsCharged": 2500, "qualityScore": 87}),
        );
        assert_eq!(
            summary(&completed),
            "task_1 code_review completed → ag_1, charged $25.00, quality 87"
        );
        let feedback = event(
            "feedback.received",
            json!({"taskId": "task_1", "feedback": "down", "status": "refunded"}),
        );
        assert_eq!(summary(&feedback), "task_1 feedback down (refunded)");
        let dispute = event(
            "dispute.filed",
            json!({"taskId": "task_1", "disputeId": "dsp_1", "disputeStatus": "filed"}),
        );
        assert_eq!(summary(&dispute), "dsp_1 on task_1 filed");
        let approval = event(
            "approval.requested",
            json!({"taskId": "task_1", "approvalId": "apr_1", "amount": 4000, "agentId": "ag_2"}),
        );
        assert_eq!(summary(&approval), "apr_1 for task_1 $40.00 by ag_2");
        let unknown = event("agent.renamed", json!({"name": "x".repeat(300)}));
        let line = summary(&unknown);
        assert!(line.ends_with('…') && line.chars().count() <= 118, "{line}");
    }

    #[test]
    fn only_an_assignment_to_me_is_work() {
        let data = json!({"taskId": "task_1", "agentId": "ag_me", "status": "submitted"});
        assert_eq!(
            assigned_to_me(&event("task.assigned", data.clone()), "ag_me"),
            Some("task_1".into())
        );
        // The buyer gets `task.assigned` too, for a task it submitted.
        assert_eq!(
            assigned_to_me(&event("task.assigned", data.clone()), "ag_buyer"),
            None
        );
        assert_eq!(
            assigned_to_me(&event("task.completed", data), "ag_me"),
            None
        );
        assert_eq!(
            assigned_to_me(
                &event("task.assigned", json!({"agentId": "ag_me"})),
                "ag_me"
            ),
            None
        );
    }

    #[test]
    fn subscriptions_and_deliveries_print() {
        let mut webhook = Webhook {
            id: "wh_1".into(),
            url: "https://example.com/h".into(),
            events: vec!["task.assigned".into(), "task.failed".into()],
            status: "active".into(),
            created_at: "2026-03-01T10:00:00Z".into(),
            failing_since: None,
            disabled_at: None,
        };
        assert_eq!(
            webhook_line(&webhook),
            "wh_1  active   https://example.com/h  task.assigned,task.failed"
        );
        webhook.failing_since = Some("2026-03-02T00:00:00Z".into());
        assert!(webhook_line(&webhook).ends_with("(failing since 2026-03-02T00:00:00Z)"));
        webhook.status = "disabled".into();
        webhook.disabled_at = Some("2026-03-05T00:00:00Z".into());
        assert!(webhook_line(&webhook).contains("aicity webhooks enable wh_1"));

        let delivery = Delivery {
            id: "dlv_1".into(),
            event_id: "evt_1".into(),
            event_type: "task.completed".into(),
            status: "failed".into(),
            attempts: vec![
                Attempt {
                    at: "2026-03-01T10:00:00Z".into(),
                    status_code: Some(500),
                    latency_ms: 12,
                    error: None,
                },
                Attempt {
                    at: "2026-03-01T10:01:00Z".into(),
                    status_code: None,
                    latency_ms: 10_000,
                    error: Some("timed out".into()),
                },
            ],
            created_at: "2026-03-01T10:00:00Z".into(),
            updated_at: "2026-03-01T10:01:00Z".into(),
        };
        assert_eq!(
            delivery_text(&delivery),
            "dlv_1  failed    task.completed     evt_1  2026-03-01T10:00:00Z\n    2026-03-01T10:00:00Z  500  12 ms\n    2026-03-01T10:01:00Z  timed out  10000 ms"
        );
    }

    #[tokio::test]
    async fn the_receiver_answers_200_to_a_good_signature_and_400_to_a_bad_one() {
        let (listener, port) = bind(0).await.unwrap();
        let (server, mut received) = serve(listener, "whsec_k".into(), TOLERANCE);
        let body =
            json!({"id": "evt_9", "type": "task.failed", "createdAt": "2026-03-01T10:00:00Z",
            "data": {"taskId": "task_1", "status": "failed"}})
            .to_string();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let client = reqwest::Client::new();
        let post = |signature: String| {
            client
                .post(callback_url(port))
                .header("content-type", "application/json")
                .header("aicity-event-id", "evt_9")
                .header("aicity-signature", signature)
                .body(body.clone())
                .send()
        };
        let good = signature_header(b"whsec_k", now, body.as_bytes());
        assert_eq!(post(good.clone()).await.unwrap().status(), 200);
        assert_eq!(post(good).await.unwrap().status(), 200);
        let bad = signature_header(b"whsec_other", now, body.as_bytes());
        assert_eq!(post(bad).await.unwrap().status(), 400);
        let stale = signature_header(b"whsec_k", now - 3_600, body.as_bytes());
        assert_eq!(post(stale).await.unwrap().status(), 400);
        let get = client.get(callback_url(port)).send().await.unwrap();
        assert_eq!(get.status(), 405);

        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(received.recv().await.unwrap());
        }
        match &seen[0] {
            Received::Event(delivered) => {
                assert_eq!(delivered.event.id, "evt_9");
                assert_eq!(delivered.body.as_ref(), body.as_bytes());
                assert_eq!(delivered.headers["aicity-event-id"], "evt_9");
                assert!(!delivered.duplicate);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&seen[1], Received::Event(d) if d.duplicate));
        assert!(matches!(
            &seen[2],
            Received::Rejected {
                reason: SignatureError::Mismatch
            }
        ));
        assert!(matches!(
            &seen[3],
            Received::Rejected {
                reason: SignatureError::Stale
            }
        ));
        server.abort();
    }

    #[tokio::test]
    async fn forwarding_passes_the_body_and_signature_on_unchanged() {
        let (tx, mut rx) = mpsc::unbounded_channel::<(HeaderMap, Bytes)>();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                StatusCode::ACCEPTED
            }
        });
        let (listener, port) = bind(0).await.unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let mut headers = HeaderMap::new();
        headers.insert("aicity-signature", "t=1,v1=ab".parse().unwrap());
        headers.insert("aicity-event-id", "evt_1".parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        headers.insert("host", "127.0.0.1:1".parse().unwrap());
        let status = forward(
            &reqwest::Client::new(),
            &format!("http://127.0.0.1:{port}/hooks"),
            &headers,
            Bytes::from_static(b"{\"id\":\"evt_1\"}"),
        )
        .await
        .unwrap();
        assert_eq!(status, 202);
        let (got, body) = rx.recv().await.unwrap();
        assert_eq!(body.as_ref(), b"{\"id\":\"evt_1\"}");
        assert_eq!(got["aicity-signature"], "t=1,v1=ab");
        assert_eq!(got["aicity-event-id"], "evt_1");
        assert_eq!(got["content-type"], "application/json");
        assert_eq!(got["host"], format!("127.0.0.1:{port}"));
    }
}
