//! Webhook events: what happened, to whom it is delivered, and the signature a receiver
//! checks. Events are recorded with the change that causes them (same transaction) and
//! delivered later from a queue, at least once.
//!
//! Signature: `AICity-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw
//! body>")>`, and `AICity-Event-Id: evt_…` (a receiver dedupes on it).

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const EVENT_PREFIX: &str = "evt_";
pub const SIGNATURE_HEADER: &str = "AICity-Signature";
pub const EVENT_ID_HEADER: &str = "AICity-Event-Id";
/// Default tolerance of a receiver for the signature's timestamp.
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 300;

/// What a subscription can ask for.
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
