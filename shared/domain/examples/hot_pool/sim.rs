//! A discrete-event simulation of one owner's pool under a stream of holds.
//!
//! What is modelled, and why each piece matters:
//! - **Shard items** (the pool item when N = 1): 1,000 WCU/s each (a token bucket of
//!   100 WCU refilled at 1,000/s), and one transaction at a time: a committed
//!   transaction keeps its items for `lock_ms`; another transaction touching one of them
//!   meanwhile is cancelled with `TransactionConflict`. A committed transactional write
//!   of a small item costs 2 WCU; a cancelled one (conflict or failed condition) 1 WCU,
//!   the prepare phase.
//! - **The pool's ledger partition** (`ACCOUNT#pool:<owner>`, one per shard once
//!   sharded): every hold and end writes one ledger row there, 2 WCU, no conflicts
//!   (distinct items) but the same 1,000 WCU/s partition limit.
//! - **Our retry**: `shared/store/src/transact.rs` exactly: 6 tries, 1 + U[0, 10·2^a) ms
//!   after the a-th loss (a ≤ 5), then 503.
//! - **Today's extra writes**: every submit calls `vault::pool` (an `UpdateItem`) twice
//!   before its transaction; a plain write to an item that a transaction holds fails
//!   with `TransactionConflictException`, which neither our code nor the SDK retries.
//! - **Balances**: the pure model's conditions decide every commit
//!   (`aicity_domain::vault::shards`); the control mode writes without them.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use aicity_domain::Cents;
use aicity_domain::vault::shards::{
    HoldPlan, Leg, Shard, ShardedPool, end_legs, hold_legs, plan_hold, spread_legs, top_up_legs,
};
use rand::{RngExt, SeedableRng};
use rand_xorshift::XorShiftRng;

const US_PER_MS: u64 = 1_000;
const US_PER_S: u64 = 1_000_000;
/// A partition's write limit.
const WCU_PER_S: f64 = 1_000.0;
/// How much unused capacity a partition may bank (0.1 s worth): strict on purpose.
const BUCKET_WCU: f64 = 100.0;
/// transact.rs: CONTENTION_ATTEMPTS.
const ATTEMPTS: u32 = 6;
/// A DynamoDB round trip (a read, or the gap between two calls of one request).
const ROUND_TRIP_US: u64 = 3 * US_PER_MS;
/// Replans (read the shards, plan again) before a hold gives up as short of funds.
const REPLANS: u32 = 3;
/// Card charge before an auto top-up's credit transaction.
const CARD_US: u64 = 500 * US_PER_MS;
/// The first seconds are not measured: the queue of in-flight holds fills up.
const WARMUP_S: f64 = 2.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    /// Far more credits than the run can hold.
    Plenty,
    /// `initial` credits; when a hold is refused for funds, one auto top-up of
    /// `reload` (at most one in flight), as `AutoTopUp` does.
    Level { initial: i64, reload: i64 },
}

#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub shards: u8,
    pub offered_per_s: f64,
    pub seconds: f64,
    pub lock_ms: f64,
    pub budget: Budget,
    /// Today's two `vault::pool` writes before each hold (only meaningful at N = 1).
    pub prewrites: bool,
    /// Control: holds check a snapshot and write without a condition.
    pub unconditional: bool,
    /// Spread each top-up over the shards (`spread_legs`) once it is credited.
    pub spread: bool,
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Outcome {
    pub measured_s: f64,
    pub arrived: u64,
    pub held: u64,
    /// Refused: the whole pool lacked the amount when the hold gave up.
    pub refused: u64,
    /// Refused although the pool's total had the amount at that moment.
    pub refused_with_total: u64,
    /// Lost to contention 6 times: 503.
    pub gave_up: u64,
    /// Today's `vault::pool` write hit a transaction: the submit failed.
    pub prewrite_failed: u64,
    /// Transactions sent for the measured holds (holds and rebalances, every try).
    pub tries: u64,
    pub conflicts: u64,
    pub throttled: u64,
    pub rebalances: u64,
    /// Strongly consistent shard reads after a failed condition.
    pub rcu: u64,
    pub wcu: f64,
    /// The busiest shard item's WCU in its busiest measured second.
    pub max_item_wcu_s: f64,
    pub ends: u64,
    pub top_ups: u64,
    /// Moments a shard's `available` or `held` was below zero after a commit.
    pub overdrafts: u64,
    /// Commits after which the pool's balance ≠ paid in − charged.
    pub books_off: u64,
}

impl Outcome {
    pub fn per_s(&self, n: u64) -> f64 {
        n as f64 / self.measured_s
    }

    /// Holds that ended in the window (held, refused, 503 or failed before).
    pub fn resolved(&self) -> u64 {
        self.held + self.refused + self.gave_up + self.prewrite_failed
    }

    /// Transactions beyond the first, per resolved hold.
    pub fn retries_per_hold(&self) -> f64 {
        let resolved = self.resolved().max(1);
        self.tries.saturating_sub(resolved) as f64 / resolved as f64
    }

    /// Share of holds answered 503 or 500 because of contention.
    pub fn failed_share(&self) -> f64 {
        (self.gave_up + self.prewrite_failed) as f64 / self.resolved().max(1) as f64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Arrive,
    Prewrite {
        hold: usize,
        left: u8,
    },
    HoldTry {
        hold: usize,
    },
    EndTry {
        hold: usize,
    },
    TopUpTry,
    /// One pairwise move spreading a top-up (tries so far).
    SpreadTry {
        attempt: u32,
    },
}

#[derive(Debug, Clone)]
enum Phase {
    Hold,
    Rebalance { legs: Vec<Leg>, then: u8 },
}

#[derive(Debug, Clone)]
struct Request {
    amount: i64,
    shard: u8,
    phase: Phase,
    /// Tries of the transaction being sent (reset by a new transaction).
    attempt: u32,
    replans: u32,
    tries: u64,
    charge: i64,
}

/// What DynamoDB stores, and whether conditions guard it.
enum Table {
    Conditional(ShardedPool),
    Unconditional(Vec<Shard>),
}

impl Table {
    fn shards(&self) -> &[Shard] {
        match self {
            Table::Conditional(pool) => pool.shards(),
            Table::Unconditional(shards) => shards,
        }
    }

    fn commit(&mut self, legs: &[Leg]) -> bool {
        match self {
            Table::Conditional(pool) => pool.apply(legs).is_ok(),
            Table::Unconditional(shards) => {
                for leg in legs {
                    let s = &mut shards[usize::from(leg.shard)];
                    s.available = Cents(s.available.get() + leg.available);
                    s.held = Cents(s.held.get() + leg.held);
                }
                true
            }
        }
    }
}

/// One partition's write budget, and what it consumed per second.
#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    at: u64,
    per_second: Vec<f64>,
}

impl Bucket {
    fn new(seconds: usize) -> Self {
        Self {
            tokens: BUCKET_WCU,
            at: 0,
            per_second: vec![0.0; seconds + 1],
        }
    }

    fn refill(&mut self, now: u64) {
        let elapsed = (now - self.at) as f64 / US_PER_S as f64;
        self.tokens = (self.tokens + elapsed * WCU_PER_S).min(BUCKET_WCU);
        self.at = now;
    }

    fn has(&mut self, now: u64, wcu: f64) -> bool {
        self.refill(now);
        self.tokens >= wcu
    }

    fn take(&mut self, now: u64, wcu: f64) {
        self.refill(now);
        self.tokens -= wcu;
        let second = (now / US_PER_S) as usize;
        if let Some(slot) = self.per_second.get_mut(second) {
            *slot += wcu;
        }
    }
}

enum Sent {
    Committed,
    Refused,
    Contention,
}

pub struct Sim {
    p: Params,
    rng: XorShiftRng,
    now: u64,
    end: u64,
    queue: BinaryHeap<Reverse<(u64, u64, Event)>>,
    sequence: u64,
    table: Table,
    locked_until: Vec<u64>,
    items: Vec<Bucket>,
    ledgers: Vec<Bucket>,
    requests: Vec<Request>,
    paid_in: i64,
    charged: i64,
    top_up_pending: bool,
    spreads: Vec<Vec<Leg>>,
    out: Outcome,
}

impl Sim {
    pub fn new(p: Params) -> Self {
        let n = usize::from(p.shards);
        let seconds = p.seconds.ceil() as usize;
        let pool = ShardedPool::new(p.shards).expect("1 to 32 shards");
        let mut table = if p.unconditional {
            Table::Unconditional(pool.shards().to_vec())
        } else {
            Table::Conditional(pool)
        };
        let initial = match p.budget {
            Budget::Plenty => 1_000_000_000_000_000,
            Budget::Level { initial, .. } => initial,
        };
        // The credits start spread evenly, as a migration's rebalance leaves them.
        for k in 0..p.shards {
            let share =
                initial / i64::from(p.shards) + i64::from(k == 0) * (initial % i64::from(p.shards));
            if share > 0 {
                table.commit(&top_up_legs(k, Cents(share)).expect("positive"));
            }
        }
        let mut sim = Self {
            p,
            rng: XorShiftRng::seed_from_u64(p.seed),
            now: 0,
            end: (p.seconds * US_PER_S as f64) as u64,
            queue: BinaryHeap::new(),
            sequence: 0,
            table,
            locked_until: vec![0; n],
            items: vec![Bucket::new(seconds); n],
            ledgers: vec![Bucket::new(seconds); n],
            requests: Vec::new(),
            paid_in: initial,
            charged: 0,
            top_up_pending: false,
            spreads: Vec::new(),
            out: Outcome::default(),
        };
        sim.schedule(0, Event::Arrive);
        sim
    }

    pub fn run(mut self) -> Outcome {
        while let Some(Reverse((at, _, event))) = self.queue.pop() {
            if at >= self.end {
                break;
            }
            self.now = at;
            match event {
                Event::Arrive => self.arrive(),
                Event::Prewrite { hold, left } => self.prewrite(hold, left),
                Event::HoldTry { hold } => self.hold_try(hold),
                Event::EndTry { hold } => self.end_try(hold),
                Event::TopUpTry => self.top_up_try(),
                Event::SpreadTry { attempt } => self.spread_try(attempt),
            }
        }
        self.finish()
    }

    fn finish(mut self) -> Outcome {
        self.out.measured_s = self.p.seconds - WARMUP_S;
        let first = WARMUP_S as usize;
        let last = self.p.seconds.floor() as usize;
        self.out.max_item_wcu_s = self
            .items
            .iter()
            .flat_map(|b| b.per_second[first..last].iter().copied())
            .fold(0.0, f64::max);
        self.out
    }

    fn measuring(&self) -> bool {
        self.now as f64 >= WARMUP_S * US_PER_S as f64
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.sequence += 1;
        self.queue.push(Reverse((at, self.sequence, event)));
    }

    fn millis(&mut self, low: f64, high: f64) -> u64 {
        (self.rng.random_range(low..high) * US_PER_MS as f64) as u64
    }

    /// transact.rs's backoff after the `attempt`-th loss.
    fn backoff(&mut self, attempt: u32) -> u64 {
        let cap = 10u64 << attempt.min(5);
        (1 + self.rng.random_range(0..cap)) * US_PER_MS
    }

    fn arrive(&mut self) {
        let gap = -(1.0 - self.rng.random::<f64>()).ln() / self.p.offered_per_s;
        self.schedule(self.now + (gap * US_PER_S as f64) as u64, Event::Arrive);
        let amount = self.rng.random_range(100..=5_000i64);
        // Buyers are charged a share of their budget; some tasks are voided.
        let charge = if self.rng.random_bool(0.2) {
            0
        } else {
            amount * self.rng.random_range(30..=100i64) / 100
        };
        let shard = self.rng.random_range(0..self.p.shards);
        let hold = self.requests.len();
        self.requests.push(Request {
            amount,
            shard,
            phase: Phase::Hold,
            attempt: 0,
            replans: 0,
            tries: 0,
            charge,
        });
        if self.measuring() {
            self.out.arrived += 1;
        }
        if self.p.prewrites {
            self.schedule(self.now, Event::Prewrite { hold, left: 2 });
        } else if self.p.unconditional {
            // The control reads before it writes, like a read-check-write service.
            self.replan(hold);
        } else {
            self.schedule(self.now, Event::HoldTry { hold });
        }
    }

    /// Today's `vault::pool` (an `UpdateItem` on the pool item) before the hold.
    fn prewrite(&mut self, hold: usize, left: u8) {
        if self.locked_until[0] > self.now {
            if self.measuring() {
                self.out.prewrite_failed += 1;
            }
            return;
        }
        if self.items[0].has(self.now, 1.0) {
            self.items[0].take(self.now, 1.0);
            self.count_wcu(1.0);
        }
        let next = if left > 1 {
            Event::Prewrite {
                hold,
                left: left - 1,
            }
        } else {
            Event::HoldTry { hold }
        };
        self.schedule(self.now + ROUND_TRIP_US, next);
    }

    fn count_wcu(&mut self, wcu: f64) {
        if self.measuring() {
            self.out.wcu += wcu;
        }
    }

    /// One `TransactWriteItems` over `legs` (plus a ledger row per shard when
    /// `ledger`): conflicts and throttling first, then the conditions.
    fn send(&mut self, legs: &[Leg], ledger: bool) -> Sent {
        let now = self.now;
        let shards: Vec<usize> = legs.iter().map(|l| usize::from(l.shard)).collect();
        if shards.iter().any(|&k| self.locked_until[k] > now) {
            for &k in &shards {
                if self.locked_until[k] <= now && self.items[k].has(now, 1.0) {
                    self.items[k].take(now, 1.0);
                    self.count_wcu(1.0);
                }
            }
            if self.measuring() {
                self.out.conflicts += 1;
            }
            return Sent::Contention;
        }
        let throttled = shards
            .iter()
            .any(|&k| !self.items[k].has(now, 2.0) || (ledger && !self.ledgers[k].has(now, 2.0)));
        if throttled {
            if self.measuring() {
                self.out.throttled += 1;
            }
            return Sent::Contention;
        }
        let lock = now + (self.p.lock_ms * US_PER_MS as f64) as u64;
        if !self.table.commit(legs) {
            for &k in &shards {
                self.items[k].take(now, 1.0);
                self.count_wcu(1.0);
            }
            return Sent::Refused;
        }
        for &k in &shards {
            self.locked_until[k] = lock;
            self.items[k].take(now, 2.0);
            self.count_wcu(2.0);
            if ledger {
                self.ledgers[k].take(now, 2.0);
                self.count_wcu(2.0);
            }
        }
        self.audit();
        Sent::Committed
    }

    /// The invariants, checked independently of the model after every commit.
    fn audit(&mut self) {
        let shards = self.table.shards();
        let negative = shards
            .iter()
            .filter(|s| s.available.get() < 0 || s.held.get() < 0)
            .count() as u64;
        let balance: i64 = shards
            .iter()
            .map(|s| s.available.get() + s.held.get())
            .sum();
        self.out.overdrafts += negative;
        if balance != self.paid_in - self.charged {
            self.out.books_off += 1;
        }
    }

    fn hold_try(&mut self, hold: usize) {
        let request = self.requests[hold].clone();
        let (legs, ledger) = match &request.phase {
            Phase::Hold => (
                hold_legs(request.shard, Cents(request.amount)).expect("positive"),
                true,
            ),
            Phase::Rebalance { legs, .. } => (legs.clone(), false),
        };
        self.requests[hold].tries += 1;
        self.requests[hold].attempt += 1;
        match self.send(&legs, ledger) {
            Sent::Committed => match request.phase {
                Phase::Hold => {
                    if self.measuring() {
                        self.out.held += 1;
                        self.out.tries += self.requests[hold].tries;
                    }
                    let after = self.millis(1_000.0, 5_000.0);
                    self.schedule(self.now + after, Event::EndTry { hold });
                    self.requests[hold].attempt = 0;
                }
                Phase::Rebalance { then, .. } => {
                    if self.measuring() {
                        self.out.rebalances += 1;
                    }
                    let r = &mut self.requests[hold];
                    r.phase = Phase::Hold;
                    r.shard = then;
                    r.attempt = 0;
                    self.schedule(self.now + ROUND_TRIP_US, Event::HoldTry { hold });
                }
            },
            Sent::Contention => {
                let attempt = self.requests[hold].attempt;
                if attempt >= ATTEMPTS {
                    if self.measuring() {
                        self.out.gave_up += 1;
                        self.out.tries += self.requests[hold].tries;
                    }
                } else {
                    let wait = self.backoff(attempt);
                    self.schedule(self.now + wait, Event::HoldTry { hold });
                }
            }
            Sent::Refused => self.replan(hold),
        }
    }

    /// A failed condition: read every shard, plan again (or give up as short).
    fn replan(&mut self, hold: usize) {
        let n = u64::from(self.p.shards);
        if self.measuring() {
            self.out.rcu += n;
        }
        let request = self.requests[hold].clone();
        let total: i64 = self.table.shards().iter().map(|s| s.available.get()).sum();
        let plan = if request.replans >= REPLANS {
            HoldPlan::Insufficient {
                available: Cents(total),
            }
        } else {
            plan_hold(self.table.shards(), request.shard, Cents(request.amount))
        };
        let r = &mut self.requests[hold];
        r.replans += 1;
        r.attempt = 0;
        match plan {
            HoldPlan::Hold(k) => {
                r.shard = k;
                r.phase = Phase::Hold;
                self.schedule(self.now + ROUND_TRIP_US, Event::HoldTry { hold });
            }
            HoldPlan::Rebalance { legs, then } => {
                r.phase = Phase::Rebalance { legs, then };
                self.schedule(self.now + ROUND_TRIP_US, Event::HoldTry { hold });
            }
            HoldPlan::Insufficient { .. } => {
                let tries = r.tries;
                if self.measuring() {
                    self.out.refused += 1;
                    self.out.tries += tries;
                    if total >= request.amount {
                        self.out.refused_with_total += 1;
                    }
                }
                if let Budget::Level { .. } = self.p.budget
                    && !self.top_up_pending
                {
                    self.top_up_pending = true;
                    self.schedule(self.now + CARD_US, Event::TopUpTry);
                }
            }
        }
    }

    fn end_try(&mut self, hold: usize) {
        let r = self.requests[hold].clone();
        let legs = end_legs(r.shard, Cents(r.amount), Cents(r.charge)).expect("valid end");
        self.requests[hold].attempt += 1;
        // The books expect the charge gone if this commits (the audit runs inside).
        self.charged += r.charge;
        let sent = self.send(&legs, true);
        if !matches!(sent, Sent::Committed) {
            self.charged -= r.charge;
        }
        match sent {
            Sent::Committed => {
                if self.measuring() {
                    self.out.ends += 1;
                }
            }
            // An end that keeps losing is redelivered by its queue a second later.
            Sent::Contention if self.requests[hold].attempt >= ATTEMPTS => {
                self.requests[hold].attempt = 0;
                self.schedule(self.now + US_PER_S, Event::EndTry { hold });
            }
            Sent::Contention => {
                let wait = self.backoff(self.requests[hold].attempt);
                self.schedule(self.now + wait, Event::EndTry { hold });
            }
            // A hold's own shard always has its held amount: this is a broken book.
            Sent::Refused => self.out.overdrafts += 1,
        }
    }

    fn top_up_try(&mut self) {
        let Budget::Level { reload, .. } = self.p.budget else {
            return;
        };
        // The credit lands on the poorest shard: it is the one holds find short.
        let shard = (0..self.p.shards)
            .min_by_key(|&k| self.table.shards()[usize::from(k)].available.get())
            .unwrap_or(0);
        self.paid_in += reload;
        match self.send(&top_up_legs(shard, Cents(reload)).expect("positive"), true) {
            Sent::Committed => {
                self.top_up_pending = false;
                if self.measuring() {
                    self.out.top_ups += 1;
                }
                if self.p.spread {
                    // Planned from what was just committed; each move is conditional.
                    self.spreads = spread_legs(self.table.shards(), shard);
                    self.spreads.reverse();
                    self.schedule(self.now + ROUND_TRIP_US, Event::SpreadTry { attempt: 0 });
                }
            }
            _ => {
                self.paid_in -= reload;
                let wait = self.backoff(3);
                self.schedule(self.now + wait, Event::TopUpTry);
            }
        }
    }
}

impl Sim {
    /// The next pairwise move of a top-up's spread; one that keeps losing is dropped
    /// (holds rebalance on their own when they find their shard short).
    fn spread_try(&mut self, attempt: u32) {
        let Some(legs) = self.spreads.last().cloned() else {
            return;
        };
        match self.send(&legs, false) {
            Sent::Contention if attempt + 1 < ATTEMPTS => {
                let wait = self.backoff(attempt + 1);
                self.schedule(
                    self.now + wait,
                    Event::SpreadTry {
                        attempt: attempt + 1,
                    },
                );
                return;
            }
            Sent::Committed if self.measuring() => self.out.rebalances += 1,
            _ => {}
        }
        self.spreads.pop();
        self.schedule(self.now + ROUND_TRIP_US, Event::SpreadTry { attempt: 0 });
    }
}
