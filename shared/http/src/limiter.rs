//! Rate limits in two layers: what this Lambda instance remembers, in front of the
//! table's counters (`aicity_store::rate_limit`).
//!
//! - [`batched`], for the per-principal and per-IP request limits: an instance lets hits
//!   through on its own count and writes them to the shared counter in one `ADD` every
//!   `batch` hits or every `flush_after`, reading back the shared total; within `batch`
//!   hits of the limit it writes every hit, and once the shared total reaches the limit
//!   it refuses without writing until the window ends. Most requests cost no write. The
//!   shared limit holds within a slack of `batch - 1` hits per warm instance per window
//!   (the hits an instance let through and has not written yet; Lambda runs one request
//!   at a time per instance, and one principal is usually served by one or two).
//!   `batch` 1 writes every hit, which is the strict limiter.
//! - [`strict`], for the security counters (sign-in per IP and per account, failed
//!   authentications): one conditional write per hit, exact whatever the number of
//!   instances; a refusal is remembered until its window ends, so refused callers cost
//!   no write either.
//!
//! An instance's memory is this process's (one per Lambda instance), keyed by table and
//! subject; it holds at most [`MAX_SUBJECTS`] windows and forgets ended ones first.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use aicity_domain::identity::OwnerStatus;
use aicity_domain::{ApiError, ErrorCode};
use aicity_store::rate_limit::{self, RateDecision};
use aws_sdk_dynamodb::Client;
use serde_json::json;
use time::OffsetDateTime;

use crate::context::Limits;

/// `limit` hits per fixed `window` (aligned to the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub limit: u32,
    pub window: Duration,
}

/// How an instance batches its writes: every `batch` hits, or on the first hit
/// `flush_after` since its last write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    pub batch: u32,
    pub flush_after: Duration,
}

/// The windows this instance remembers at most.
pub const MAX_SUBJECTS: usize = 20_000;

/// `429 RATE_LIMITED` with the seconds to wait (`Retry-After`).
pub fn limited(retry_after: u64) -> ApiError {
    ApiError::with_message(
        ErrorCode::RateLimited,
        format!("Too many requests; retry after {retry_after} seconds"),
    )
    .details(json!({ "retryAfter": retry_after }))
}

/// One subject's current window as this instance sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Local {
    start: i64,
    end: i64,
    /// The shared count as of this instance's last write (or a refusal it saw).
    seen: u64,
    /// Hits let through here and not written yet.
    pending: u32,
    last_write: i64,
}

/// What to do with one hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Let it through; nothing to write.
    Allow,
    /// Write these hits (this one included), then [`Local::settle`] with the total.
    Write { hits: u32, start: i64, end: i64 },
    /// Over the limit: refuse without writing.
    Refuse { retry_after: u64 },
}

impl Local {
    fn roll(&mut self, (start, end): (i64, i64), now: i64) {
        if (self.start, self.end) != (start, end) {
            *self = Local {
                start,
                end,
                last_write: now,
                ..Local::default()
            };
        }
    }

    fn retry_after(&self, now: i64) -> u64 {
        (self.end - now).max(1) as u64
    }

    /// Counts one hit at `now` (Unix seconds) in the window `bounds`.
    pub fn step(&mut self, limit: u32, batching: Batching, bounds: (i64, i64), now: i64) -> Step {
        self.roll(bounds, now);
        let limit = u64::from(limit);
        if self.seen + u64::from(self.pending) >= limit {
            return Step::Refuse {
                retry_after: self.retry_after(now),
            };
        }
        self.pending += 1;
        let batch = batching.batch.max(1);
        let due = self.pending >= batch
            || now - self.last_write >= batching.flush_after.as_secs() as i64
            || self.seen + u64::from(self.pending) + u64::from(batch) > limit;
        if !due {
            return Step::Allow;
        }
        self.last_write = now;
        Step::Write {
            hits: std::mem::take(&mut self.pending),
            start: self.start,
            end: self.end,
        }
    }

    /// The shared total after a write of the window starting at `start`: whether the
    /// hit that wrote is within the limit.
    pub fn settle(&mut self, start: i64, total: u64, limit: u32) -> bool {
        if self.start == start {
            self.seen = self.seen.max(total);
        }
        total <= u64::from(limit)
    }

    /// A write that failed: its hits are still to be written.
    pub fn unwrite(&mut self, start: i64, hits: u32) {
        if self.start == start {
            self.pending += hits;
        }
    }

    /// The shared count reached `limit` in the window `bounds`.
    pub fn mark_limited(&mut self, limit: u32, bounds: (i64, i64), now: i64) {
        self.roll(bounds, now);
        self.seen = self.seen.max(u64::from(limit));
    }

    /// Seconds to wait when this window is known to be used up.
    pub fn refusal(&mut self, limit: u32, bounds: (i64, i64), now: i64) -> Option<u64> {
        self.roll(bounds, now);
        (self.seen >= u64::from(limit)).then(|| self.retry_after(now))
    }
}

fn windows() -> MutexGuard<'static, HashMap<String, Local>> {
    static WINDOWS: OnceLock<Mutex<HashMap<String, Local>>> = OnceLock::new();
    WINDOWS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn with_local<R>(table: &str, subject: &str, now: i64, f: impl FnOnce(&mut Local) -> R) -> R {
    let key = format!("{table}\u{0}{subject}");
    let mut map = windows();
    if map.len() >= MAX_SUBJECTS && !map.contains_key(&key) {
        map.retain(|_, local| local.end > now);
        if map.len() >= MAX_SUBJECTS {
            // Forgetting costs at most `batch - 1` unwritten hits per subject.
            map.clear();
        }
    }
    f(map.entry(key).or_default())
}

/// Counts one request of `subject` the cheap way (see the module); over the limit is
/// `429 RATE_LIMITED` with `Retry-After`.
pub async fn batched(
    db: &Client,
    table: &str,
    subject: &str,
    rule: Rule,
    batching: Batching,
    now: OffsetDateTime,
) -> Result<(), ApiError> {
    let bounds = rate_limit::window_of(rule.window, now);
    let at = now.unix_timestamp();
    let step = with_local(table, subject, at, |local| {
        local.step(rule.limit, batching, bounds, at)
    });
    match step {
        Step::Allow => Ok(()),
        Step::Refuse { retry_after } => Err(limited(retry_after)),
        Step::Write { hits, start, end } => {
            match rate_limit::add(db, table, subject, hits, (start, end)).await {
                Ok(total) => {
                    let allowed = with_local(table, subject, at, |local| {
                        local.settle(start, total, rule.limit)
                    });
                    if allowed {
                        Ok(())
                    } else {
                        Err(limited((end - at).max(1) as u64))
                    }
                }
                Err(err) => {
                    with_local(table, subject, at, |local| local.unwrite(start, hits));
                    Err(err.into())
                }
            }
        }
    }
}

/// Counts one request from `source_ip` to a route callable without credentials:
/// `anonymous_per_minute` with the batched limiter.
pub async fn anonymous(
    db: &Client,
    table: &str,
    limits: &Limits,
    source_ip: &str,
) -> Result<(), ApiError> {
    let rule = Rule {
        limit: limits.anonymous_per_minute,
        window: Duration::from_secs(60),
    };
    let batching = Batching {
        batch: limits.rate_limit_batch,
        flush_after: limits.rate_limit_flush,
    };
    let subject = format!("anon-ip:{source_ip}");
    batched(
        db,
        table,
        &subject,
        rule,
        batching,
        OffsetDateTime::now_utc(),
    )
    .await
}

/// Counts one hit of `subject` with a conditional write (exact across instances); a
/// refusal is remembered here until the window ends.
pub async fn strict(
    db: &Client,
    table: &str,
    subject: &str,
    rule: Rule,
    now: OffsetDateTime,
) -> Result<(), ApiError> {
    if let Some(retry_after) = known_limited(table, subject, rule, now) {
        return Err(limited(retry_after));
    }
    match rate_limit::hit(db, table, subject, rule.limit, rule.window, now).await? {
        RateDecision::Allowed { .. } => Ok(()),
        RateDecision::Limited { retry_after } => {
            let bounds = rate_limit::window_of(rule.window, now);
            let at = now.unix_timestamp();
            with_local(table, subject, at, |local| {
                local.mark_limited(rule.limit, bounds, at)
            });
            Err(limited(retry_after))
        }
    }
}

/// Whether this instance knows `subject` used up its window (no read, no write).
pub fn known_limited(table: &str, subject: &str, rule: Rule, now: OffsetDateTime) -> Option<u64> {
    let bounds = rate_limit::window_of(rule.window, now);
    let at = now.unix_timestamp();
    with_local(table, subject, at, |local| {
        local.refusal(rule.limit, bounds, at)
    })
}

type OwnerKey = (String, String);

fn owner_statuses() -> MutexGuard<'static, HashMap<OwnerKey, (OwnerStatus, Instant)>> {
    static OWNERS: OnceLock<Mutex<HashMap<OwnerKey, (OwnerStatus, Instant)>>> = OnceLock::new();
    OWNERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An owner's status as read less than `ttl` ago by this instance.
pub fn cached_owner_status(table: &str, owner_id: &str, ttl: Duration) -> Option<OwnerStatus> {
    if ttl.is_zero() {
        return None;
    }
    let key = (table.to_owned(), owner_id.to_owned());
    let map = owner_statuses();
    map.get(&key)
        .filter(|(_, at)| at.elapsed() < ttl)
        .map(|(status, _)| *status)
}

/// Remembers an owner's status as just read.
pub fn remember_owner_status(table: &str, owner_id: &str, status: OwnerStatus) {
    let mut map = owner_statuses();
    if map.len() >= MAX_SUBJECTS {
        map.clear();
    }
    map.insert(
        (table.to_owned(), owner_id.to_owned()),
        (status, Instant::now()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const BATCH: Batching = Batching {
        batch: 10,
        flush_after: Duration::from_secs(10),
    };

    /// Drives `hits` hits at `now` against a shared counter `shared`; returns how many
    /// were allowed and how many writes they cost.
    fn drive(local: &mut Local, shared: &mut u64, limit: u32, hits: u32, now: i64) -> (u32, u32) {
        let (mut allowed, mut writes) = (0, 0);
        for _ in 0..hits {
            match local.step(limit, BATCH, (0, 60), now) {
                Step::Allow => allowed += 1,
                Step::Refuse { .. } => {}
                Step::Write { hits, start, .. } => {
                    writes += 1;
                    *shared += u64::from(hits);
                    if local.settle(start, *shared, limit) {
                        allowed += 1;
                    }
                }
            }
        }
        (allowed, writes)
    }

    #[test]
    fn one_instance_writes_once_per_batch_and_stops_exactly_at_the_limit() {
        let mut local = Local::default();
        let mut shared = 0;
        // Far from the limit, one write every 10 hits.
        let (allowed, writes) = drive(&mut local, &mut shared, 300, 100, 1);
        assert_eq!(allowed, 100);
        assert_eq!(writes, 10, "one write per 10 hits");
        assert_eq!(
            shared, 100,
            "every hit is written in the end (batch boundary)"
        );

        let (allowed, _) = drive(&mut local, &mut shared, 300, 250, 2);
        assert_eq!(allowed, 200, "exactly the limit");
        assert_eq!(shared, 300);
        // Refused without writing.
        assert!(matches!(
            local.step(300, BATCH, (0, 60), 3),
            Step::Refuse { retry_after: 57 }
        ));
    }

    #[test]
    fn within_a_batch_of_the_limit_every_hit_is_written() {
        let mut local = Local::default();
        let mut shared = 0;
        let (allowed, writes) = drive(&mut local, &mut shared, 5, 8, 1);
        assert_eq!((allowed, writes), (5, 5));
    }

    #[test]
    fn other_instances_hits_show_in_the_total_and_the_overshoot_is_bounded() {
        let mut a = Local::default();
        let mut b = Local::default();
        let mut shared = 0;
        let (a_allowed, _) = drive(&mut a, &mut shared, 100, 95, 1);
        let (b_allowed, _) = drive(&mut b, &mut shared, 100, 95, 1);
        let total = a_allowed + b_allowed;
        assert!(total >= 100, "the limit is reached: {total}");
        assert!(
            total < 100 + BATCH.batch,
            "slack under one batch per instance: {total}"
        );
    }

    #[test]
    fn pending_hits_are_written_after_flush_after() {
        let mut local = Local::default();
        assert_eq!(local.step(300, BATCH, (0, 60), 0), Step::Allow);
        assert_eq!(local.step(300, BATCH, (0, 60), 5), Step::Allow);
        assert_eq!(
            local.step(300, BATCH, (0, 60), 10),
            Step::Write {
                hits: 3,
                start: 0,
                end: 60
            }
        );
    }

    #[test]
    fn a_new_window_starts_afresh_and_a_failed_write_is_kept() {
        let mut local = Local::default();
        local.mark_limited(3, (0, 60), 1);
        assert_eq!(local.refusal(3, (0, 60), 2), Some(58));
        assert_eq!(local.refusal(3, (60, 120), 61), None);
        let Step::Write { hits, start, .. } = local.step(3, BATCH, (60, 120), 61) else {
            panic!("near the limit every hit writes");
        };
        local.unwrite(start, hits);
        assert_eq!(
            local.step(3, BATCH, (60, 120), 62),
            Step::Write {
                hits: 2,
                start: 60,
                end: 120
            }
        );
    }

    #[test]
    fn owner_statuses_expire() {
        remember_owner_status("t", "usr_1", OwnerStatus::Active);
        assert_eq!(
            cached_owner_status("t", "usr_1", Duration::from_secs(5)),
            Some(OwnerStatus::Active)
        );
        assert_eq!(cached_owner_status("t", "usr_1", Duration::ZERO), None);
        assert_eq!(
            cached_owner_status("u", "usr_1", Duration::from_secs(5)),
            None
        );
    }
}
