//! Named fault points: places between two steps where a crash would leave work half
//! done. Tests arm a point for one table and the code path stops there as if the
//! process had died (the caller sees an error, a consumer's message is not deleted),
//! so each test can prove the system recovers — by a retry, a redelivery or the
//! sweeper — to the same end state with the books right.
//!
//! Disarmed (always, outside tests) a check is one relaxed atomic load.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Every point the code checks; tests name them through these constants.
pub mod point {
    /// A task step committed, its queue message not sent yet (submit → routing,
    /// complete → quality, quality → settlement, sweeper re-route → routing).
    pub const AFTER_COMMIT_BEFORE_SEND: &str = "after_commit_before_send";
    /// The card was charged, the pool not credited yet.
    pub const AFTER_CHARGE_BEFORE_CREDIT: &str = "after_charge_before_credit";
    /// A consumer (router, quality, settlement) wrote its step and died before it
    /// could report the message done: the message comes back.
    pub const CONSUMER_AFTER_WRITE: &str = "consumer_after_write";

    /// A task step committed with its webhook events, which were not sent to the
    /// webhooks queue yet.
    pub const BEFORE_WEBHOOK_SEND: &str = "before_webhook_send";

    /// A workflow's step ended (committed, the workflow marked due), the engine did
    /// not move the workflow on yet.
    pub const BEFORE_WORKFLOW_ADVANCE: &str = "before_workflow_advance";

    pub const ALL: [&str; 5] = [
        AFTER_COMMIT_BEFORE_SEND,
        AFTER_CHARGE_BEFORE_CREDIT,
        CONSUMER_AFTER_WRITE,
        BEFORE_WEBHOOK_SEND,
        BEFORE_WORKFLOW_ADVANCE,
    ];
}

static ANY_ARMED: AtomicBool = AtomicBool::new(false);
/// (scope, point) → how many more times it fires.
static ARMED: Mutex<Option<HashMap<(String, &'static str), u32>>> = Mutex::new(None);

/// Makes `point` fire the next `times` times it is reached within `scope` (a table
/// name, so tests running side by side do not trip each other).
pub fn arm(scope: &str, point: &'static str, times: u32) {
    let mut armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
    armed
        .get_or_insert_with(HashMap::new)
        .insert((scope.to_owned(), point), times);
    ANY_ARMED.store(true, Ordering::Release);
}

/// Disarms every point of `scope`.
pub fn disarm(scope: &str) {
    let mut armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(map) = armed.as_mut() {
        map.retain(|(s, _), _| s != scope);
    }
}

/// Whether the code should stop at `point` now (as if it crashed here).
pub fn fires(scope: &str, point: &'static str) -> bool {
    if !ANY_ARMED.load(Ordering::Acquire) {
        return false;
    }
    let mut armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
    let Some(left) = armed
        .as_mut()
        .and_then(|map| map.get_mut(&(scope.to_owned(), point)))
    else {
        return false;
    };
    if *left == 0 {
        return false;
    }
    *left -= 1;
    tracing::warn!(point, "injected fault");
    true
}

/// How many more times `point` fires in `scope` (0 once it has done its work).
pub fn remaining(scope: &str, point: &'static str) -> u32 {
    let armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
    armed
        .as_ref()
        .and_then(|map| map.get(&(scope.to_owned(), point)).copied())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_fires_as_often_as_armed_and_only_in_its_scope() {
        assert!(!fires("t1", point::AFTER_CHARGE_BEFORE_CREDIT));
        arm("t1", point::AFTER_CHARGE_BEFORE_CREDIT, 2);
        assert!(!fires("t2", point::AFTER_CHARGE_BEFORE_CREDIT));
        assert!(!fires("t1", point::AFTER_COMMIT_BEFORE_SEND));
        assert!(fires("t1", point::AFTER_CHARGE_BEFORE_CREDIT));
        assert_eq!(remaining("t1", point::AFTER_CHARGE_BEFORE_CREDIT), 1);
        assert!(fires("t1", point::AFTER_CHARGE_BEFORE_CREDIT));
        assert!(!fires("t1", point::AFTER_CHARGE_BEFORE_CREDIT));
        arm("t1", point::AFTER_COMMIT_BEFORE_SEND, 5);
        disarm("t1");
        assert!(!fires("t1", point::AFTER_COMMIT_BEFORE_SEND));
    }
}
