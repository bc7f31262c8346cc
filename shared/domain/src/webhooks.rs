//! Webhook events: what happened, to whom it is delivered, and the signature a receiver
//! checks. Events are recorded with the change that causes them (same transaction) and
//! delivered later from a queue, at least once.
//!
//! Signature: `AICity-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw
//! body>")>`, and `AICity-Event-Id: evt_…` (a receiver dedupes on it).

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod guard;

pub const EVENT_PREFIX: &str = "evt_";
pub const SIGNATURE_HEADER: &str = "AICity-Signature";
pub const EVENT_ID_HEADER: &str = "AICity-Event-Id";
/// Default tolerance of a receiver for the signature's timestamp.
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 300;

/// What a subscription can ask for.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WebhookEventType {
    #[serde(rename = "task.assigned")]
    TaskAssigned,
    #[serde(rename = "task.completed")]
    TaskCompleted,
    #[serde(rename = "task.failed")]
    TaskFailed,
    #[serde(rename = "task.refunded")]
    TaskRefunded,
    #[serde(rename = "feedback.received")]
    FeedbackReceived,
    #[serde(rename = "dispute.filed")]
    DisputeFiled,
    #[serde(rename = "dispute.resolved")]
    DisputeResolved,
    #[serde(rename = "approval.requested")]
    ApprovalRequested,
}

impl WebhookEventType {
    pub const ALL: [WebhookEventType; 8] = [
        WebhookEventType::TaskAssigned,
        WebhookEventType::TaskCompleted,
        WebhookEventType::TaskFailed,
        WebhookEventType::TaskRefunded,
        WebhookEventType::FeedbackReceived,
        WebhookEventType::DisputeFiled,
        WebhookEventType::DisputeResolved,
        WebhookEventType::ApprovalRequested,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            WebhookEventType::TaskAssigned => "task.assigned",
            WebhookEventType::TaskCompleted => "task.completed",
            WebhookEventType::TaskFailed => "task.failed",
            WebhookEventType::TaskRefunded => "task.refunded",
            WebhookEventType::FeedbackReceived => "feedback.received",
            WebhookEventType::DisputeFiled => "dispute.filed",
            WebhookEventType::DisputeResolved => "dispute.resolved",
            WebhookEventType::ApprovalRequested => "approval.requested",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// One event, as recorded. `recipients` are the principals whose subscriptions get it:
/// owner ids (`usr_…`) and agent ids (`ag_…`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: WebhookEventType,
    pub created_at: String,
    pub data: Value,
    pub recipients: Vec<String>,
}

impl WebhookEvent {
    /// A new event for `recipients` (duplicates dropped, order kept).
    pub fn new(kind: WebhookEventType, data: Value, recipients: Vec<String>) -> Self {
        let mut unique = Vec::new();
        for recipient in recipients {
            if !unique.contains(&recipient) {
                unique.push(recipient);
            }
        }
        Self {
            id: format!("{EVENT_PREFIX}{}", ulid::Ulid::generate()),
            kind,
            created_at: crate::timestamps::now(),
            data,
            recipients: unique,
        }
    }

    /// The body POSTed to a receiver: `{id, type, createdAt, data}` (no recipients).
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "id": self.id, "type": self.kind, "createdAt": self.created_at, "data": self.data,
        }))
        .unwrap_or_default()
    }
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// `hex(HMAC-SHA256(secret, "<t>.<body>"))`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The `AICity-Signature` header value.
pub fn signature_header(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", signature(secret, timestamp, body))
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

/// Checks a received header against the raw body: the timestamp within `tolerance`
/// seconds of `now`, and any `v1` signature matching (compared in constant time).
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => candidates.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - timestamp).abs() > tolerance {
        return Err(SignatureError::Stale);
    }
    for candidate in candidates {
        let Ok(bytes) = hex::decode(candidate) else {
            continue;
        };
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        if mac.verify_slice(&bytes).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

// ---------------------------------------------------------------- subscriptions

pub const SUBSCRIPTION_PREFIX: &str = "wh_";
pub const SECRET_PREFIX: &str = "whsec_";
pub const DELIVERY_PREFIX: &str = "whd_";
/// Subscriptions one principal (an owner or an agent) may hold.
pub const MAX_SUBSCRIPTIONS: u32 = 10;
/// Random bytes in a signing secret.
pub const SECRET_BYTES: usize = 32;
/// How long a receiver has to answer an attempt.
pub const DELIVERY_TIMEOUT_SECONDS: u64 = 10;
/// A subscription failing this long is disabled (`WEBHOOK_DISABLE_AFTER_HOURS`).
pub const DEFAULT_DISABLE_AFTER_HOURS: u64 = 72;
/// Attempts kept in a delivery's log (the oldest are dropped beyond it).
pub const MAX_LOGGED_ATTEMPTS: usize = 100;

/// A new subscription id `wh_<ulid>`.
pub fn new_subscription_id() -> String {
    format!("{SUBSCRIPTION_PREFIX}{}", ulid::Ulid::generate())
}

/// A new signing secret `whsec_<64 hex>` (32 random bytes).
pub fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    format!("{SECRET_PREFIX}{}", hex::encode(bytes))
}

/// The delivery of an event to a subscription: one per (subscription, event), its id
/// derived from the event's (`whd_<the event's ulid>`), so a repeated fan-out finds it.
pub fn delivery_id(event_id: &str) -> String {
    format!(
        "{DELIVERY_PREFIX}{}",
        event_id.strip_prefix(EVENT_PREFIX).unwrap_or(event_id)
    )
}

/// The event a delivery id names.
pub fn event_of_delivery(delivery_id: &str) -> Option<String> {
    let ulid = delivery_id.strip_prefix(DELIVERY_PREFIX)?;
    (ulid.len() == 26 && ulid.parse::<ulid::Ulid>().is_ok())
        .then(|| format!("{EVENT_PREFIX}{ulid}"))
}

/// Whether an agent may ask for `kind` (approvals are the owner's business).
pub fn agent_may_subscribe(kind: WebhookEventType) -> bool {
    kind != WebhookEventType::ApprovalRequested
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionStatus {
    Active,
    /// Failing for too long; no more attempts until its owner enables it again.
    Disabled,
}

/// A subscription as the API shows it (never its secret).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: String,
    pub url: String,
    pub events: Vec<WebhookEventType>,
    pub status: SubscriptionStatus,
    pub created_at: String,
    /// The first failed attempt of the current streak of failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

/// One try at delivering: when, what came back, how long it took, why it failed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.status_code.is_some_and(|c| (200..300).contains(&c))
    }
}

/// An event's delivery to one subscription, with its log of attempts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub event_type: WebhookEventType,
    pub status: DeliveryStatus,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    pub created_at: String,
    pub updated_at: String,
}

// ---------------------------------------------------------------- retries

/// The default backoff between attempts (`WEBHOOK_RETRY_SECONDS`): the first retry
/// within a minute, about 40 hours in all.
pub const DEFAULT_RETRY_SECONDS: &str = "30,120,600,1800,3600,7200,14400,28800,43200,43200";
/// SQS's longest visibility timeout, so the longest wait between two attempts.
pub const MAX_RETRY_DELAY_SECONDS: u64 = 43_200;

/// The waits before each retry: attempt `n` (1-based) that fails waits `delays[n-1]`;
/// after `delays.len() + 1` attempts the delivery has failed. The webhooks queue's
/// `maxReceiveCount` is that number of attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<std::time::Duration>,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::parse(DEFAULT_RETRY_SECONDS).expect("the default schedule parses")
    }
}

impl RetrySchedule {
    /// Comma-separated seconds, each 0..=43200, at least one.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut delays = Vec::new();
        for part in raw.split(',') {
            let seconds: u64 = part
                .trim()
                .parse()
                .map_err(|_| format!("{part:?} is not a number of seconds"))?;
            if seconds > MAX_RETRY_DELAY_SECONDS {
                return Err(format!(
                    "{seconds} s is longer than SQS allows ({MAX_RETRY_DELAY_SECONDS} s)"
                ));
            }
            delays.push(std::time::Duration::from_secs(seconds));
        }
        if delays.is_empty() {
            return Err("no delays".into());
        }
        Ok(Self { delays })
    }

    /// Attempts before the delivery fails: the first and one per delay.
    pub fn max_attempts(&self) -> u32 {
        self.delays.len() as u32 + 1
    }

    /// The wait after failed attempt `attempt` (1-based); `None` when it was the last.
    pub fn delay_after(&self, attempt: u32) -> Option<std::time::Duration> {
        let index = usize::try_from(attempt.max(1) - 1).ok()?;
        self.delays.get(index).copied()
    }

    /// From the first attempt to the last, at the least.
    pub fn total(&self) -> std::time::Duration {
        self.delays.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_known_vector() {
        // python3 -c "import hmac,hashlib; print(hmac.new(b'whsec_test',
        //   b'1700000000.{}', hashlib.sha256).hexdigest())"
        assert_eq!(
            signature(b"whsec_test", 1_700_000_000, b"{}"),
            "35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }

    #[test]
    fn verify_accepts_its_own_signature_and_refuses_the_rest() {
        let body = br#"{"id":"evt_1"}"#;
        let header = signature_header(b"secret", 1_000, body);
        assert_eq!(verify(b"secret", &header, body, 1_100, 300), Ok(()));
        assert_eq!(
            verify(b"secret", &header, body, 1_301, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(b"other", &header, body, 1_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"secret", &header, b"{}", 1_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"secret", "v1=abc", body, 1_000, 300),
            Err(SignatureError::Malformed)
        );
        // A rotated secret: either of two signatures may match.
        let two = format!("{header},v1={}", signature(b"new", 1_000, body));
        assert_eq!(verify(b"new", &two, body, 1_000, 300), Ok(()));
    }

    #[test]
    fn events_dedupe_recipients_and_bodies_leave_them_out() {
        let event = WebhookEvent::new(
            WebhookEventType::TaskCompleted,
            serde_json::json!({"taskId": "task_1"}),
            vec!["usr_a".into(), "ag_b".into(), "usr_a".into()],
        );
        assert_eq!(event.recipients, vec!["usr_a", "ag_b"]);
        assert!(event.id.starts_with(EVENT_PREFIX));
        let body: Value = serde_json::from_slice(&event.body()).unwrap();
        assert_eq!(body["type"], "task.completed");
        assert!(body.get("recipients").is_none());
        for kind in WebhookEventType::ALL {
            assert_eq!(WebhookEventType::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                Value::String(kind.as_str().into())
            );
        }
    }

    #[test]
    fn the_default_schedule_retries_within_a_minute_and_for_a_day() {
        let schedule = RetrySchedule::default();
        assert!(schedule.delay_after(1).unwrap() <= std::time::Duration::from_secs(60));
        assert!(schedule.total() >= std::time::Duration::from_secs(24 * 3600));
        assert_eq!(schedule.max_attempts(), 11);
        let mut previous = std::time::Duration::ZERO;
        for attempt in 1..schedule.max_attempts() {
            let delay = schedule.delay_after(attempt).unwrap();
            assert!(delay >= previous, "the backoff grows");
            previous = delay;
        }
        assert_eq!(schedule.delay_after(11), None);
        let short = RetrySchedule::parse("1, 1,2").unwrap();
        assert_eq!(short.max_attempts(), 4);
        assert_eq!(
            short.delay_after(3),
            Some(std::time::Duration::from_secs(2))
        );
        assert_eq!(short.delay_after(4), None);
        assert!(RetrySchedule::parse("").is_err());
        assert!(RetrySchedule::parse("30,x").is_err());
        assert!(RetrySchedule::parse("43201").is_err());
    }

    #[test]
    fn delivery_ids_follow_event_ids() {
        let event = WebhookEvent::new(WebhookEventType::TaskAssigned, Value::Null, vec![]);
        let id = delivery_id(&event.id);
        assert!(id.starts_with(DELIVERY_PREFIX));
        assert_eq!(event_of_delivery(&id), Some(event.id.clone()));
        assert_eq!(event_of_delivery("whd_nope"), None);
        assert!(new_secret().starts_with(SECRET_PREFIX));
        assert_eq!(new_secret().len(), SECRET_PREFIX.len() + 64);
        assert!(!agent_may_subscribe(WebhookEventType::ApprovalRequested));
        assert!(agent_may_subscribe(WebhookEventType::TaskAssigned));
    }

    proptest! {
        #[test]
        fn any_change_to_the_body_breaks_the_signature(
            body in proptest::collection::vec(any::<u8>(), 0..256),
            flip in any::<usize>(),
            t in 0i64..2_000_000_000,
        ) {
            let header = signature_header(b"k", t, &body);
            prop_assert_eq!(verify(b"k", &header, &body, t, 0), Ok(()));
            if !body.is_empty() {
                let mut changed = body.clone();
                let i = flip % changed.len();
                changed[i] ^= 1;
                prop_assert_eq!(verify(b"k", &header, &changed, t, 0), Err(SignatureError::Mismatch));
            }
        }
    }
}
