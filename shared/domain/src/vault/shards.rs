//! An owner's pool split over N shard items, so one busy owner is not one hot key.
//!
//! Today the pool is one item (`OWNER#<owner>` / `POOL`): every hold, post, void,
//! refund and top-up of the owner writes it, and DynamoDB gives one item at most
//! 1,000 WCU/s and lets only one transaction at a time touch it. Sharding spreads the
//! owner's `available` and `held` over N items (shard 0 is today's item, so N = 1 is
//! today's layout); a hold debits one shard, and the hold remembers which, so its end
//! credits the same shard back.
//!
//! **Why overdraw stays impossible.** Every change is a list of [`Leg`]s applied all or
//! nothing (one `TransactWriteItems`), and every leg carries its own shard's condition:
//! after the change that shard's `available` and `held` are still ≥ 0. Credits never
//! leave a shard except through such a leg, and a rebalance moves them shard to shard
//! inside one transaction. So each shard is never negative, and the owner's total,
//! their sum, is never negative either, whatever the interleaving and however stale
//! the snapshot a caller planned from: a stale plan is refused, never applied.
//!
//! This module is the pure rule (no AWS); `docs/performance-hot-key.md` has the
//! design around it and `examples/hot_pool` simulates it under load.

use crate::ids::TaskId;
use crate::money::Cents;

/// More shards than this buys nothing a GSI or a reservation would not do better:
/// every read of the balance sums them all.
pub const MAX_SHARDS: u8 = 32;

/// One shard item's balances (`available`, `held` on `POOL#<owner>#<k>`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shard {
    pub available: Cents,
    pub held: Cents,
}

/// One shard's change inside a transaction: `ADD available :a, held :h` on that item
/// with the condition that neither ends below zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leg {
    pub shard: u8,
    pub available: i64,
    pub held: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("amount must be positive")]
    NonPositive,
    #[error("the pool has no shard {0}")]
    NoSuchShard(u8),
    /// DynamoDB refuses a transaction that names one item twice.
    #[error("shard {0} appears twice in one transaction")]
    Repeated(u8),
    /// The condition of one leg failed: nothing was applied.
    #[error("shard {shard} has {available} available and {held} held; the change needs more")]
    Refused {
        shard: u8,
        available: Cents,
        held: Cents,
    },
    #[error("a pool has 1 to {MAX_SHARDS} shards")]
    ShardCount,
}

/// The shard a task's hold tries first: the same for every try of one task (so a
/// retried submit lands where the first try did), spread evenly over tasks.
pub fn shard_for(task: &TaskId, shards: u8) -> u8 {
    let bytes = task.ulid().to_bytes();
    // The last byte is random in a ULID; the first ones are the time.
    bytes[15] % shards.max(1)
}

/// Reserves `amount` on `shard`: available → held.
pub fn hold_legs(shard: u8, amount: Cents) -> Result<Vec<Leg>, ShardError> {
    positive(amount)?;
    Ok(vec![Leg {
        shard,
        available: -amount.get(),
        held: amount.get(),
    }])
}

/// Ends a hold of `held` on `shard`, `charge` of it leaving the pool (0 = void).
pub fn end_legs(shard: u8, held: Cents, charge: Cents) -> Result<Vec<Leg>, ShardError> {
    positive(held)?;
    if charge.get() < 0 || charge > held {
        return Err(ShardError::NonPositive);
    }
    Ok(vec![Leg {
        shard,
        available: held.get() - charge.get(),
        held: -held.get(),
    }])
}

/// A card payment credited to one shard.
pub fn top_up_legs(shard: u8, amount: Cents) -> Result<Vec<Leg>, ShardError> {
    positive(amount)?;
    Ok(vec![Leg {
        shard,
        available: amount.get(),
        held: 0,
    }])
}

/// Moves credits from each `(source, amount)` into `to`, in one transaction: each
/// source is debited under its own condition, so a rebalance can never take what a
/// racing hold took meanwhile.
pub fn rebalance_legs(sources: &[(u8, Cents)], to: u8) -> Result<Vec<Leg>, ShardError> {
    let mut legs = Vec::with_capacity(sources.len() + 1);
    let mut moved = 0;
    for &(shard, amount) in sources {
        positive(amount)?;
        moved += amount.get();
        legs.push(Leg {
            shard,
            available: -amount.get(),
            held: 0,
        });
    }
    legs.push(Leg {
        shard: to,
        available: moved,
        held: 0,
    });
    Ok(legs)
}

fn positive(amount: Cents) -> Result<(), ShardError> {
    if amount.is_positive() {
        Ok(())
    } else {
        Err(ShardError::NonPositive)
    }
}

/// What a hold should do next, decided from a snapshot of the shards (what the hold
/// read; possibly stale: the legs' conditions are what make it safe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldPlan {
    /// Hold on this shard; it had enough.
    Hold(u8),
    /// No single shard had enough but their sum does: apply `legs` (one
    /// transaction), then hold on `then`.
    Rebalance { legs: Vec<Leg>, then: u8 },
    /// The whole pool lacks the amount: the owner's `INSUFFICIENT_CREDITS`.
    Insufficient { available: Cents },
}

/// Plans a hold of `amount`: the preferred shard if it has enough; else another
/// shard that has enough, picked by `preferred` among them (not the richest: when a
/// top-up has just landed on one shard, every short hold choosing the richest would
/// make it the new hot key); else a rebalance into the preferred shard from the
/// richest others, topping it up to its fair share of the total so the next holds find
/// credits there too; else insufficient.
pub fn plan_hold(snapshot: &[Shard], preferred: u8, amount: Cents) -> HoldPlan {
    let need = amount.get();
    let total: i64 = snapshot.iter().map(|s| s.available.get().max(0)).sum();
    let preferred = usize::from(preferred).min(snapshot.len().saturating_sub(1));
    if snapshot.is_empty() || total < need {
        return HoldPlan::Insufficient {
            available: Cents(total),
        };
    }
    if snapshot[preferred].available.get() >= need {
        return HoldPlan::Hold(preferred as u8);
    }
    let enough: Vec<usize> = (0..snapshot.len())
        .filter(|&k| snapshot[k].available.get() >= need)
        .collect();
    if !enough.is_empty() {
        return HoldPlan::Hold(enough[preferred % enough.len()] as u8);
    }
    let fair = total / snapshot.len() as i64;
    let mut others: Vec<usize> = (0..snapshot.len()).filter(|&k| k != preferred).collect();
    others.sort_by_key(|&k| std::cmp::Reverse(snapshot[k].available.get()));
    let mut missing = need.max(fair) - snapshot[preferred].available.get().max(0);
    let mut sources = Vec::new();
    for k in others {
        if missing <= 0 {
            break;
        }
        let take = snapshot[k].available.get().min(missing);
        if take > 0 {
            sources.push((k as u8, Cents(take)));
            missing -= take;
        }
    }
    let gathered: i64 = sources.iter().map(|(_, c)| c.get()).sum();
    match rebalance_legs(&sources, preferred as u8) {
        Ok(legs) if snapshot[preferred].available.get().max(0) + gathered >= need => {
            HoldPlan::Rebalance {
                legs,
                then: preferred as u8,
            }
        }
        // Unreachable when total ≥ need; refusing is the safe answer anyway.
        _ => HoldPlan::Insufficient {
            available: Cents(total),
        },
    }
}

/// After a top-up landed on `from`: pairwise moves (one transaction each, two items)
/// bringing every shard below its fair share of the total up to it, from `from`'s
/// surplus. Without it every short hold would go to the one shard that has credits.
pub fn spread_legs(snapshot: &[Shard], from: u8) -> Vec<Vec<Leg>> {
    let Some(source) = snapshot.get(usize::from(from)) else {
        return Vec::new();
    };
    let total: i64 = snapshot.iter().map(|s| s.available.get().max(0)).sum();
    let fair = total / snapshot.len() as i64;
    let mut surplus = source.available.get() - fair;
    let mut moves = Vec::new();
    for (k, shard) in snapshot.iter().enumerate() {
        let short = fair - shard.available.get().max(0);
        if k == usize::from(from) || short <= 0 || surplus <= 0 {
            continue;
        }
        let amount = short.min(surplus);
        surplus -= amount;
        if let Ok(legs) = rebalance_legs(&[(from, Cents(amount))], k as u8) {
            moves.push(legs);
        }
    }
    moves
}

/// The shards of one owner's pool, changed only by [`ShardedPool::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardedPool {
    shards: Vec<Shard>,
}

impl ShardedPool {
    /// An empty pool of `shards` items.
    pub fn new(shards: u8) -> Result<Self, ShardError> {
        if shards == 0 || shards > MAX_SHARDS {
            return Err(ShardError::ShardCount);
        }
        Ok(Self {
            shards: vec![Shard::default(); usize::from(shards)],
        })
    }

    pub fn len(&self) -> u8 {
        self.shards.len() as u8
    }

    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    pub fn shard(&self, k: u8) -> Option<Shard> {
        self.shards.get(usize::from(k)).copied()
    }

    /// What `GET /vault/pool` shows as `available`: the sum of the shards.
    pub fn available(&self) -> Cents {
        Cents(self.shards.iter().map(|s| s.available.get()).sum())
    }

    /// The sum of the shards' `held`.
    pub fn held(&self) -> Cents {
        Cents(self.shards.iter().map(|s| s.held.get()).sum())
    }

    /// `available + held`, the pool's `balance`.
    pub fn balance(&self) -> Cents {
        Cents(self.available().get() + self.held().get())
    }

    /// Applies every leg or none, as DynamoDB applies a transaction: each leg's
    /// condition (its shard stays ≥ 0 on both balances) is checked against the
    /// current state before anything changes.
    pub fn apply(&mut self, legs: &[Leg]) -> Result<(), ShardError> {
        // DynamoDB validates the request (every item named once) before any condition.
        let mut seen = [false; MAX_SHARDS as usize];
        for leg in legs {
            if usize::from(leg.shard) >= self.shards.len() {
                return Err(ShardError::NoSuchShard(leg.shard));
            }
            if std::mem::replace(&mut seen[usize::from(leg.shard)], true) {
                return Err(ShardError::Repeated(leg.shard));
            }
        }
        for leg in legs {
            let shard = self.shards[usize::from(leg.shard)];
            if shard.available.get() + leg.available < 0 || shard.held.get() + leg.held < 0 {
                return Err(ShardError::Refused {
                    shard: leg.shard,
                    available: shard.available,
                    held: shard.held,
                });
            }
        }
        for leg in legs {
            let shard = &mut self.shards[usize::from(leg.shard)];
            shard.available = Cents(shard.available.get() + leg.available);
            shard.held = Cents(shard.held.get() + leg.held);
        }
        Ok(())
    }

    /// Holds `amount` the way the store would: plan from the current state, rebalance
    /// if needed, hold. Returns the shard held on and how many transactions it took.
    pub fn hold(&mut self, preferred: u8, amount: Cents) -> Result<(u8, u8), ShardError> {
        match plan_hold(&self.shards, preferred, amount) {
            HoldPlan::Hold(k) => self.apply(&hold_legs(k, amount)?).map(|()| (k, 1)),
            HoldPlan::Rebalance { legs, then } => {
                self.apply(&legs)?;
                self.apply(&hold_legs(then, amount)?).map(|()| (then, 2))
            }
            HoldPlan::Insufficient { .. } => Err(ShardError::Refused {
                shard: preferred,
                available: self.available(),
                held: self.held(),
            }),
        }
    }
}

#[cfg(test)]
mod tests;
