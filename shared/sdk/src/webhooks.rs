//! `/webhooks`: signed, at-least-once event delivery to a URL of the caller's (an owner,
//! or an agent for itself), the delivery log, redelivery; and [`verify_signature`], what
//! a receiver calls on every request before trusting it.
//!
//! ```no_run
//! # async fn demo(city: aicity_sdk::AgentCity, headers: aicity_sdk::webhooks::HeaderMap,
//! #     body: Vec<u8>) -> Result<(), Box<dyn std::error::Error>> {
//! let created = city.webhooks().create("https://example.com/hooks", &["task.assigned"]).await?;
//! // Keep `created.secret` (`whsec_…`): it is shown only here. Then, in the receiver:
//! let event = aicity_sdk::webhooks::verify_signature(
//!     &created.secret, &headers, &body, std::time::Duration::from_secs(300))?;
//! println!("{} {} {}", event.kind, event.id, event.data["taskId"]);
//! # Ok(()) }
//! ```
//!
//! Delivery is at least once: dedupe on [`Event::id`] (also sent as `AICity-Event-Id`);
//! any 2xx answer ends it, anything else is retried with backoff.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Error;
use crate::client::{AgentCity, As};
use crate::resources::{NO_BODY, Page, decode, query, urlencode};

pub use aicity_domain::webhooks::{
    DEFAULT_TOLERANCE_SECONDS, EVENT_ID_HEADER, SIGNATURE_HEADER, WebhookEventType,
    signature_header,
};
pub use reqwest::header::HeaderMap;

/// A subscription as listed (the secret is never shown again after creation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// `wh_…`
    pub id: String,
    pub url: String,
    /// e.g. `task.assigned` (see [`WebhookEventType`]).
    pub events: Vec<String>,
    /// `active`, or `disabled` (after failing for days; [`Webhooks::enable`] turns it back on).
    pub status: String,
    pub created_at: String,
    /// Since when deliveries have been failing, while they do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<String>,
}

/// What creating a subscription answers: the subscription and its signing secret,
/// shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `whsec_…`: what [`verify_signature`] checks deliveries with. Keep it secret.
    pub secret: String,
}

/// What deleting a subscription answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    pub id: String,
    pub deleted: bool,
}

/// One try at delivering an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub at: String,
    /// The receiver's answer; `None` when there was none (timeout, refused connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One event's delivery to one subscription, with every attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: String,
    /// `evt_…`
    pub event_id: String,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    pub created_at: String,
    pub updated_at: String,
}

/// Deliveries, newest first; `next_cursor` asks for the older ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryPage {
    pub deliveries: Vec<Delivery>,
    #[serde(default)]
    pub has_more: bool,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// The body POSTed to a receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// `evt_…`: the same on every retry and redelivery (dedupe on it).
    pub id: String,
    /// e.g. `task.assigned`; [`Event::event_type`] gives it typed.
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: String,
    /// For task events `taskId`, `taskType`, `status`, `agentId`, …
    #[serde(default)]
    pub data: Value,
}

impl Event {
    /// The type, when this SDK knows it (a newer API may send types it does not).
    pub fn event_type(&self) -> Option<WebhookEventType> {
        WebhookEventType::parse(&self.kind)
    }

    /// `data.taskId`, for the events about a task.
    pub fn task_id(&self) -> Option<&str> {
        self.data.get("taskId").and_then(Value::as_str)
    }
}

/// Why a delivery was not accepted by [`verify_signature`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no AICity-Signature header")]
    MissingHeader,
    #[error("the AICity-Signature header is malformed (expected t=<unix seconds>,v1=<hex>)")]
    Malformed,
    #[error("the signature's timestamp is outside the tolerance (a replay, or a clock off)")]
    Stale,
    #[error("no v1 signature matches this body and secret")]
    Mismatch,
    /// The signature matched, but the body is not an event.
    #[error("the signed body is not an event: {0}")]
    InvalidEvent(String),
}

impl From<aicity_domain::webhooks::SignatureError> for SignatureError {
    fn from(err: aicity_domain::webhooks::SignatureError) -> Self {
        use aicity_domain::webhooks::SignatureError as Domain;
        match err {
            Domain::Malformed => SignatureError::Malformed,
            Domain::Stale => SignatureError::Stale,
            Domain::Mismatch => SignatureError::Mismatch,
        }
    }
}

/// Where [`verify_signature`] reads headers from: an [`http::HeaderMap`](HeaderMap)
/// (reqwest's, axum's, hyper's), a slice of `(name, value)` pairs, or a map of them.
/// Names are compared without regard to case.
pub trait HeaderLookup {
    /// The value of the first header called `name`.
    fn header(&self, name: &str) -> Option<&str>;
}

impl HeaderLookup for HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderLookup for [(K, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderLookup for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>, S> HeaderLookup for std::collections::HashMap<K, V, S> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<T: HeaderLookup + ?Sized> HeaderLookup for &T {
    fn header(&self, name: &str) -> Option<&str> {
        (**self).header(name)
    }
}

/// Checks a delivery and returns its event: the `AICity-Signature` header's timestamp
/// must be within `tolerance` of now, and one of its `v1` signatures must be the
/// HMAC-SHA256 of `"<t>.<body>"` with `secret` (compared in constant time). `body` must
/// be the raw bytes received, before any JSON parsing.
pub fn verify_signature(
    secret: &str,
    headers: &(impl HeaderLookup + ?Sized),
    body: &[u8],
    tolerance: Duration,
) -> Result<Event, SignatureError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    verify_signature_at(secret, headers, body, tolerance, now)
}

/// [`verify_signature`] as if the time were `now` (unix seconds).
pub fn verify_signature_at(
    secret: &str,
    headers: &(impl HeaderLookup + ?Sized),
    body: &[u8],
    tolerance: Duration,
    now: i64,
) -> Result<Event, SignatureError> {
    let header = headers
        .header(SIGNATURE_HEADER)
        .ok_or(SignatureError::MissingHeader)?;
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    aicity_domain::webhooks::verify(secret.as_bytes(), header, body, now, tolerance)?;
    serde_json::from_slice(body).map_err(|e| SignatureError::InvalidEvent(e.to_string()))
}

fn webhook_path(id: &str, action: &str) -> String {
    format!("/webhooks/{}{action}", urlencode(id))
}

fn list_path(page: Option<u32>) -> String {
    format!(
        "/webhooks{}",
        query(&[("page", page.map(|p| p.to_string()))])
    )
}

fn deliveries_path(id: &str, limit: Option<u32>, cursor: Option<&str>) -> String {
    format!(
        "{}{}",
        webhook_path(id, "/deliveries"),
        query(&[
            ("limit", limit.map(|l| l.to_string())),
            ("cursor", cursor.map(str::to_owned)),
        ])
    )
}

fn redeliver_path(id: &str, delivery_id: &str) -> String {
    webhook_path(
        id,
        &format!("/deliveries/{}/redeliver", urlencode(delivery_id)),
    )
}

fn create_body(url: &str, events: &[impl AsRef<str>]) -> Value {
    let events: Vec<&str> = events.iter().map(AsRef::as_ref).collect();
    json!({ "url": url, "events": events })
}

/// `/webhooks`, as the agent when the client has an API key, else as the owner. Another
/// principal's subscription answers `404 WEBHOOK_NOT_FOUND`, like an unknown one.
pub struct Webhooks<'a>(pub(crate) &'a AgentCity);

impl Webhooks<'_> {
    /// Subscribes `url` (https to a public address; `http://127.0.0.1:<port>` only where
    /// the API allows loopback, as `make dev` does) to `events`, e.g. `["task.assigned"]`.
    /// `approval.requested` is for owners only.
    pub async fn create(
        &self,
        url: &str,
        events: &[impl AsRef<str>],
    ) -> Result<CreatedWebhook, Error> {
        let body = create_body(url, events);
        decode(
            self.0
                .call(
                    Method::POST,
                    "/webhooks",
                    As::Either,
                    Some(&body),
                    &[],
                    false,
                )
                .await?,
        )
    }

    pub async fn list(&self, page: Option<u32>) -> Result<Page<Webhook>, Error> {
        self.list_path_page(list_path(page)).await
    }

    /// [`Self::list`] after the page whose `next_cursor` is `cursor`.
    pub async fn list_after(&self, cursor: &str) -> Result<Page<Webhook>, Error> {
        self.list_path_page(crate::resources::with_cursor(list_path(None), cursor))
            .await
    }

    async fn list_path_page(&self, path: String) -> Result<Page<Webhook>, Error> {
        decode(
            self.0
                .call(Method::GET, &path, As::Either, NO_BODY, &[], true)
                .await?,
        )
    }

    /// One subscription (without its secret).
    pub async fn get(&self, id: &str) -> Result<Webhook, Error> {
        decode(
            self.0
                .call(
                    Method::GET,
                    &webhook_path(id, ""),
                    As::Either,
                    NO_BODY,
                    &[],
                    false,
                )
                .await?,
        )
    }

    pub async fn delete(&self, id: &str) -> Result<Deleted, Error> {
        decode(
            self.0
                .call(
                    Method::DELETE,
                    &webhook_path(id, ""),
                    As::Either,
                    NO_BODY,
                    &[],
                    false,
                )
                .await?,
        )
    }

    /// Turns a disabled subscription back on.
    pub async fn enable(&self, id: &str) -> Result<Webhook, Error> {
        decode(
            self.0
                .call(
                    Method::POST,
                    &webhook_path(id, "/enable"),
                    As::Either,
                    NO_BODY,
                    &[],
                    false,
                )
                .await?,
        )
    }

    /// The delivery log, newest first (`limit` per page; `cursor` is the `next_cursor`
    /// of the page before).
    pub async fn deliveries(
        &self,
        id: &str,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<DeliveryPage, Error> {
        decode(
            self.0
                .call(
                    Method::GET,
                    &deliveries_path(id, limit, cursor),
                    As::Either,
                    NO_BODY,
                    &[],
                    false,
                )
                .await?,
        )
    }

    /// Sends the delivery's event again (same event id); answers the delivery.
    pub async fn redeliver(&self, id: &str, delivery_id: &str) -> Result<Delivery, Error> {
        decode(
            self.0
                .call(
                    Method::POST,
                    &redeliver_path(id, delivery_id),
                    As::Either,
                    NO_BODY,
                    &[],
                    false,
                )
                .await?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";
    const NOW: i64 = 1_700_000_000;
    const FIVE_MINUTES: Duration = Duration::from_secs(300);

    fn body() -> Vec<u8> {
        json!({"id": "evt_1", "type": "task.assigned", "createdAt": "2023-11-14T22:13:20Z",
            "data": {"taskId": "task_1", "taskType": "code_review", "status": "submitted",
                "agentId": "ag_1"}})
        .to_string()
        .into_bytes()
    }

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("aicity-signature", value.parse().unwrap());
        headers.insert("aicity-event-id", "evt_1".parse().unwrap());
        headers
    }

    #[test]
    fn the_known_vector_verifies() {
        // HMAC-SHA256(key "whsec_test", "1700000000.{}")
        let vector = "35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91";
        assert_eq!(
            signature_header(SECRET.as_bytes(), NOW, b"{}"),
            format!("t={NOW},v1={vector}")
        );
        // `{}` is signed correctly but is not an event.
        let err = verify_signature_at(
            SECRET,
            &headers(&format!("t={NOW},v1={vector}")),
            b"{}",
            FIVE_MINUTES,
            NOW,
        )
        .unwrap_err();
        assert!(matches!(err, SignatureError::InvalidEvent(_)), "{err:?}");
        let err = verify_signature_at(
            SECRET,
            &headers(&format!("t={NOW},v1={}", vector.replace('3', "4"))),
            b"{}",
            FIVE_MINUTES,
            NOW,
        )
        .unwrap_err();
        assert_eq!(err, SignatureError::Mismatch);
    }

    #[test]
    fn a_good_delivery_gives_its_event() {
        let body = body();
        let header = signature_header(SECRET.as_bytes(), NOW - 10, &body);
        let event =
            verify_signature_at(SECRET, &headers(&header), &body, FIVE_MINUTES, NOW).unwrap();
        assert_eq!(event.id, "evt_1");
        assert_eq!(event.kind, "task.assigned");
        assert_eq!(event.event_type(), Some(WebhookEventType::TaskAssigned));
        assert_eq!(event.task_id(), Some("task_1"));
        assert_eq!(event.data["agentId"], "ag_1");
        // A timestamp a little ahead (the sender's clock) is fine too.
        let header = signature_header(SECRET.as_bytes(), NOW + 200, &body);
        assert!(verify_signature_at(SECRET, &headers(&header), &body, FIVE_MINUTES, NOW).is_ok());
    }

    #[test]
    fn stale_tampered_and_wrongly_keyed_deliveries_are_refused() {
        let body = body();
        let header = signature_header(SECRET.as_bytes(), NOW, &body);
        let check = |secret: &str, header: &str, body: &[u8], now: i64| {
            verify_signature_at(secret, &headers(header), body, FIVE_MINUTES, now)
        };
        assert_eq!(
            check(SECRET, &header, &body, NOW + 301).unwrap_err(),
            SignatureError::Stale
        );
        assert_eq!(
            check(SECRET, &header, &body, NOW - 301).unwrap_err(),
            SignatureError::Stale
        );
        let mut tampered = body.clone();
        let at = tampered.iter().position(|b| *b == b'1').unwrap();
        tampered[at] = b'2';
        assert_eq!(
            check(SECRET, &header, &tampered, NOW).unwrap_err(),
            SignatureError::Mismatch
        );
        assert_eq!(
            check("whsec_other", &header, &body, NOW).unwrap_err(),
            SignatureError::Mismatch
        );
        // A replayed signature with a fresh timestamp does not match either.
        let replayed = header.replace(&NOW.to_string(), &(NOW + 60).to_string());
        assert_eq!(
            check(SECRET, &replayed, &body, NOW + 60).unwrap_err(),
            SignatureError::Mismatch
        );
        for malformed in ["", "v1=abc", "t=abc,v1=00", &format!("t={NOW}")] {
            assert_eq!(
                check(SECRET, malformed, &body, NOW).unwrap_err(),
                SignatureError::Malformed,
                "{malformed:?}"
            );
        }
        let none: [(&str, &str); 0] = [];
        assert_eq!(
            verify_signature_at(SECRET, &none[..], &body, FIVE_MINUTES, NOW).unwrap_err(),
            SignatureError::MissingHeader
        );
    }

    #[test]
    fn any_of_several_v1_signatures_may_match() {
        let body = body();
        let other = aicity_domain::webhooks::signature(b"whsec_old", NOW, &body);
        let mine = aicity_domain::webhooks::signature(SECRET.as_bytes(), NOW, &body);
        for header in [
            format!("t={NOW},v1={other},v1={mine}"),
            format!("t={NOW},v1={mine},v1={other}"),
            format!("t={NOW}, v1=zz-not-hex, v1={mine}"),
        ] {
            let event = verify_signature_at(SECRET, &headers(&header), &body, FIVE_MINUTES, NOW);
            assert_eq!(event.unwrap().id, "evt_1", "{header}");
        }
        let header = format!("t={NOW},v1={other}");
        assert_eq!(
            verify_signature_at(SECRET, &headers(&header), &body, FIVE_MINUTES, NOW).unwrap_err(),
            SignatureError::Mismatch
        );
    }

    #[test]
    fn headers_are_found_whatever_their_case_or_container() {
        let body = body();
        let header = signature_header(SECRET.as_bytes(), NOW, &body);
        let pairs = vec![("AICity-Signature".to_owned(), header.clone())];
        assert!(verify_signature_at(SECRET, &pairs, &body, FIVE_MINUTES, NOW).is_ok());
        let slice = [("aicity-signature", header.as_str())];
        assert!(verify_signature_at(SECRET, &slice[..], &body, FIVE_MINUTES, NOW).is_ok());
        let map: std::collections::HashMap<String, String> =
            [("AICITY-SIGNATURE".to_owned(), header)].into();
        assert!(verify_signature_at(SECRET, &map, &body, FIVE_MINUTES, NOW).is_ok());
        assert!(verify_signature(SECRET, &map, &body, FIVE_MINUTES).is_err());
    }

    #[test]
    fn paths_and_bodies() {
        assert_eq!(list_path(None), "/webhooks");
        assert_eq!(list_path(Some(2)), "/webhooks?page=2");
        assert_eq!(
            crate::resources::with_cursor(list_path(None), "ab-c_1"),
            "/webhooks?cursor=ab-c_1"
        );
        assert_eq!(
            crate::resources::with_cursor(list_path(Some(2)), "x="),
            "/webhooks?page=2&cursor=x%3D"
        );
        assert_eq!(webhook_path("wh_1", ""), "/webhooks/wh_1");
        assert_eq!(
            webhook_path("wh/../x", "/enable"),
            "/webhooks/wh%2F..%2Fx/enable"
        );
        assert_eq!(
            deliveries_path("wh_1", None, None),
            "/webhooks/wh_1/deliveries"
        );
        assert_eq!(
            deliveries_path("wh_1", Some(5), Some("dlv_9")),
            "/webhooks/wh_1/deliveries?limit=5&cursor=dlv_9"
        );
        assert_eq!(
            redeliver_path("wh_1", "dlv_2"),
            "/webhooks/wh_1/deliveries/dlv_2/redeliver"
        );
        assert_eq!(
            create_body("https://example.com/h", &["task.assigned", "task.failed"]),
            json!({"url": "https://example.com/h", "events": ["task.assigned", "task.failed"]})
        );
        assert_eq!(
            create_body("https://x", &[String::from("task.completed")]),
            json!({"url": "https://x", "events": ["task.completed"]})
        );
    }

    #[test]
    fn the_api_shapes_read() {
        let created: CreatedWebhook = serde_json::from_value(json!({
            "id": "wh_1", "url": "https://example.com/h", "events": ["task.assigned"],
            "secret": "whsec_abc", "status": "active", "createdAt": "2026-03-01T10:00:00Z"
        }))
        .unwrap();
        assert_eq!(created.secret, "whsec_abc");
        assert_eq!(created.webhook.id, "wh_1");
        assert_eq!(created.webhook.failing_since, None);
        let listed: Webhook = serde_json::from_value(json!({
            "id": "wh_1", "url": "https://example.com/h", "events": ["task.assigned"],
            "status": "disabled", "createdAt": "2026-03-01T10:00:00Z",
            "failingSince": "2026-03-02T10:00:00Z", "disabledAt": "2026-03-05T10:00:00Z"
        }))
        .unwrap();
        assert_eq!(listed.disabled_at.as_deref(), Some("2026-03-05T10:00:00Z"));
        let page: DeliveryPage = serde_json::from_value(json!({
            "deliveries": [{"id": "dlv_2", "eventId": "evt_2", "eventType": "task.completed",
                "status": "failed", "attempts": [
                    {"at": "2026-03-01T10:00:00Z", "statusCode": 500, "latencyMs": 12},
                    {"at": "2026-03-01T10:01:00Z", "latencyMs": 10000, "error": "timed out"}],
                "createdAt": "2026-03-01T10:00:00Z", "updatedAt": "2026-03-01T10:01:00Z"}],
            "hasMore": true, "nextCursor": "dlv_2"
        }))
        .unwrap();
        let attempts = &page.deliveries[0].attempts;
        assert_eq!(attempts[0].status_code, Some(500));
        assert_eq!(attempts[1].status_code, None);
        assert_eq!(attempts[1].error.as_deref(), Some("timed out"));
        assert_eq!(page.next_cursor.as_deref(), Some("dlv_2"));
        let deleted: Deleted =
            serde_json::from_value(json!({"id": "wh_1", "deleted": true})).unwrap();
        assert!(deleted.deleted);
    }
}
