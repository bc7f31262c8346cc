//! Time-to-live for items that expire (sessions, idempotency records, probes, rate
//! counters). DynamoDB deletes them some time after `expiresAt`; readers must still
//! check it, because deletion can lag by hours.

use std::time::Duration;

use time::OffsetDateTime;

/// The `expiresAt` value for an item that lives `ttl` from `now`: epoch seconds.
pub fn expires_at(now: OffsetDateTime, ttl: Duration) -> i64 {
    (now + ttl).unix_timestamp()
}

/// Whether an item with this `expiresAt` must be treated as gone at `now`.
pub fn is_expired(expires_at: i64, now: OffsetDateTime) -> bool {
    now.unix_timestamp() >= expires_at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_inclusive() {
        let now = OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        let at = expires_at(now, Duration::from_secs(60));
        assert_eq!(at, 1_060);
        assert!(!is_expired(at, now));
        assert!(is_expired(at, now + Duration::from_secs(60)));
    }
}
