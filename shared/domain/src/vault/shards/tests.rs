//! The sharded pool against a reference written differently (outstanding holds and
//! money in/out), over random sequences of holds, ends, rebalances and top-ups.

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Op {
    /// A hold through the planner (rebalancing when needed).
    Hold {
        preferred: u8,
        amount: i64,
    },
    /// A hold planned on a snapshot taken `stale_by` operations ago.
    StaleHold {
        preferred: u8,
        amount: i64,
    },
    /// Ends the `pick`-th outstanding hold, charging `charge_pct` % of it.
    End {
        pick: usize,
        charge_pct: i64,
    },
    /// A rebalance asking for any amount, even more than the source has.
    Rebalance {
        from: u8,
        to: u8,
        amount: i64,
    },
    TopUp {
        shard: u8,
        amount: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u8>(), 1..5_000i64).prop_map(|(preferred, amount)| Op::Hold { preferred, amount }),
        2 => (any::<u8>(), 1..5_000i64).prop_map(|(preferred, amount)| Op::StaleHold { preferred, amount }),
        3 => (any::<usize>(), 0..=100i64).prop_map(|(pick, charge_pct)| Op::End { pick, charge_pct }),
        2 => (any::<u8>(), any::<u8>(), 1..20_000i64).prop_map(|(from, to, amount)| Op::Rebalance { from, to, amount }),
        2 => (any::<u8>(), 1..10_000i64).prop_map(|(shard, amount)| Op::TopUp { shard, amount }),
    ]
}

/// What the pool must agree with: holds outstanding per shard, money in and out.
#[derive(Default)]
struct Reference {
    outstanding: Vec<(u8, i64)>,
    paid_in: i64,
    charged: i64,
}

fn check(pool: &ShardedPool, reference: &Reference) -> Result<(), TestCaseError> {
    for (k, shard) in pool.shards().iter().enumerate() {
        prop_assert!(shard.available.get() >= 0, "shard {k} overdrawn: {shard:?}");
        prop_assert!(
            shard.held.get() >= 0,
            "shard {k} held below zero: {shard:?}"
        );
        let held: i64 = reference
            .outstanding
            .iter()
            .filter(|(s, _)| usize::from(*s) == k)
            .map(|(_, a)| a)
            .sum();
        prop_assert_eq!(shard.held.get(), held, "shard {}'s held", k);
    }
    prop_assert_eq!(pool.balance().get(), reference.paid_in - reference.charged);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_shard_goes_negative_and_money_is_conserved(
        shards in 1..=MAX_SHARDS,
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let mut pool = ShardedPool::new(shards).unwrap();
        let mut reference = Reference::default();
        let mut snapshot = pool.shards().to_vec();
        for op in ops {
            let before = pool.clone();
            match op {
                Op::Hold { preferred, amount } => {
                    let preferred = preferred % shards;
                    let fits = pool.available().get() >= amount;
                    match pool.hold(preferred, Cents(amount)) {
                        Ok((shard, transactions)) => {
                            prop_assert!(fits);
                            prop_assert!(transactions <= 2);
                            reference.outstanding.push((shard, amount));
                        }
                        Err(_) => {
                            // A hold that fits in the total always succeeds (after at
                            // most one rebalance) when nothing races it.
                            prop_assert!(!fits, "refused {amount} with {:?}", pool.shards());
                            prop_assert_eq!(&pool, &before);
                        }
                    }
                }
                Op::StaleHold { preferred, amount } => {
                    // Plans from an old snapshot: the conditions, not the plan, decide.
                    let preferred = preferred % shards;
                    match plan_hold(&snapshot, preferred, Cents(amount)) {
                        HoldPlan::Hold(k) => {
                            if pool.apply(&hold_legs(k, Cents(amount)).unwrap()).is_ok() {
                                reference.outstanding.push((k, amount));
                            } else {
                                prop_assert_eq!(&pool, &before);
                            }
                        }
                        HoldPlan::Rebalance { legs, then } => {
                            if pool.apply(&legs).is_ok()
                                && pool.apply(&hold_legs(then, Cents(amount)).unwrap()).is_ok()
                            {
                                reference.outstanding.push((then, amount));
                            }
                        }
                        HoldPlan::Insufficient { .. } => {}
                    }
                }
                Op::End { pick, charge_pct } => {
                    if !reference.outstanding.is_empty() {
                        let (shard, held) =
                            reference.outstanding.remove(pick % reference.outstanding.len());
                        let charge = held * charge_pct / 100;
                        pool.apply(&end_legs(shard, Cents(held), Cents(charge)).unwrap())
                            .map_err(|e| TestCaseError::fail(format!("an end was refused: {e}")))?;
                        reference.charged += charge;
                    }
                }
                Op::Rebalance { from, to, amount } => {
                    let (from, to) = (from % shards, to % shards);
                    let had = pool.shard(from).unwrap().available.get();
                    let result = pool.apply(&rebalance_legs(&[(from, Cents(amount))], to).unwrap());
                    if from == to {
                        prop_assert_eq!(result, Err(ShardError::Repeated(from)));
                    } else {
                        prop_assert_eq!(result.is_ok(), had >= amount);
                    }
                    if pool != before {
                        prop_assert_eq!(pool.available(), before.available());
                    }
                }
                Op::TopUp { shard, amount } => {
                    pool.apply(&top_up_legs(shard % shards, Cents(amount)).unwrap()).unwrap();
                    reference.paid_in += amount;
                }
            }
            check(&pool, &reference)?;
            // Keep some snapshots old, so stale plans really are stale.
            if reference.outstanding.len() % 3 == 0 {
                snapshot = pool.shards().to_vec();
            }
        }
    }

    #[test]
    fn a_hold_that_fits_the_total_succeeds_after_one_rebalance_at_most(
        balances in prop::collection::vec(0..10_000i64, 1..=MAX_SHARDS as usize),
        preferred in any::<u8>(),
        amount in 1..60_000i64,
    ) {
        let shards = balances.len() as u8;
        let mut pool = ShardedPool::new(shards).unwrap();
        for (k, b) in balances.iter().enumerate() {
            if *b > 0 {
                pool.apply(&top_up_legs(k as u8, Cents(*b)).unwrap()).unwrap();
            }
        }
        let total: i64 = balances.iter().sum();
        let result = pool.hold(preferred % shards, Cents(amount));
        prop_assert_eq!(result.is_ok(), amount <= total);
        prop_assert_eq!(pool.balance().get(), total);
        prop_assert!(pool.shards().iter().all(|s| s.available.get() >= 0));
    }

    #[test]
    fn two_plans_from_one_snapshot_never_overdraw(
        balances in prop::collection::vec(0..5_000i64, 1..=8usize),
        first in (any::<u8>(), 1..12_000i64),
        second in (any::<u8>(), 1..12_000i64),
    ) {
        // Two racing submits read the same state; DynamoDB serialises their
        // transactions; whichever commits second meets the first's result.
        let shards = balances.len() as u8;
        let mut pool = ShardedPool::new(shards).unwrap();
        for (k, b) in balances.iter().enumerate() {
            if *b > 0 {
                pool.apply(&top_up_legs(k as u8, Cents(*b)).unwrap()).unwrap();
            }
        }
        let snapshot = pool.shards().to_vec();
        let mut held = 0;
        for (preferred, amount) in [first, second] {
            let plan = plan_hold(&snapshot, preferred % shards, Cents(amount));
            let applied = match plan {
                HoldPlan::Hold(k) => pool.apply(&hold_legs(k, Cents(amount)).unwrap()).is_ok(),
                HoldPlan::Rebalance { legs, then } => {
                    pool.apply(&legs).is_ok()
                        && pool.apply(&hold_legs(then, Cents(amount)).unwrap()).is_ok()
                }
                HoldPlan::Insufficient { .. } => false,
            };
            if applied {
                held += amount;
            }
        }
        prop_assert!(pool.shards().iter().all(|s| s.available.get() >= 0 && s.held.get() >= 0));
        prop_assert_eq!(pool.held().get(), held);
        prop_assert!(held <= balances.iter().sum::<i64>());
    }
}

#[test]
fn one_shard_behaves_like_todays_pool() {
    let mut pool = ShardedPool::new(1).unwrap();
    pool.apply(&top_up_legs(0, Cents(1_000)).unwrap()).unwrap();
    assert_eq!(pool.hold(0, Cents(600)), Ok((0, 1)));
    assert!(matches!(
        pool.hold(0, Cents(600)),
        Err(ShardError::Refused { .. })
    ));
    assert_eq!(pool.available(), Cents(400));
    assert_eq!(pool.held(), Cents(600));
    pool.apply(&end_legs(0, Cents(600), Cents(250)).unwrap())
        .unwrap();
    assert_eq!(pool.balance(), Cents(750));
}

#[test]
fn a_short_shard_borrows_from_the_richest_in_one_transaction() {
    let mut pool = ShardedPool::new(4).unwrap();
    for (k, amount) in [(0, 100), (1, 700), (2, 300), (3, 50)] {
        pool.apply(&top_up_legs(k, Cents(amount)).unwrap()).unwrap();
    }
    let plan = plan_hold(pool.shards(), 0, Cents(1_000));
    assert_eq!(
        plan,
        HoldPlan::Rebalance {
            legs: vec![
                Leg {
                    shard: 1,
                    available: -700,
                    held: 0
                },
                Leg {
                    shard: 2,
                    available: -200,
                    held: 0
                },
                Leg {
                    shard: 0,
                    available: 900,
                    held: 0
                },
            ],
            then: 0,
        }
    );
    assert_eq!(pool.hold(0, Cents(1_000)), Ok((0, 2)));
    assert_eq!(pool.available(), Cents(150));
}

#[test]
fn a_leg_that_would_overdraw_cancels_the_whole_transaction() {
    let mut pool = ShardedPool::new(2).unwrap();
    pool.apply(&top_up_legs(0, Cents(100)).unwrap()).unwrap();
    let before = pool.clone();
    let legs = rebalance_legs(&[(0, Cents(100)), (1, Cents(1))], 0);
    assert!(legs.is_ok());
    assert_eq!(pool.apply(&legs.unwrap()), Err(ShardError::Repeated(0)));
    let legs = rebalance_legs(&[(1, Cents(1))], 0).unwrap();
    assert!(matches!(
        pool.apply(&legs),
        Err(ShardError::Refused { shard: 1, .. })
    ));
    assert_eq!(pool, before);
}

#[test]
fn a_task_always_prefers_the_same_shard() {
    let task = TaskId::new();
    let first = shard_for(&task, 8);
    assert!(first < 8);
    assert_eq!(shard_for(&task, 8), first);
    assert_eq!(shard_for(&task, 1), 0);
}

proptest! {
    #[test]
    fn spreading_a_top_up_conserves_credits_and_evens_the_shards(
        balances in prop::collection::vec(0..5_000i64, 1..=MAX_SHARDS as usize),
        from in any::<u8>(),
        top_up in 1..1_000_000i64,
    ) {
        let shards = balances.len() as u8;
        let from = from % shards;
        let mut pool = ShardedPool::new(shards).unwrap();
        for (k, b) in balances.iter().enumerate() {
            if *b > 0 {
                pool.apply(&top_up_legs(k as u8, Cents(*b)).unwrap()).unwrap();
            }
        }
        pool.apply(&top_up_legs(from, Cents(top_up)).unwrap()).unwrap();
        let total = pool.available();
        for legs in spread_legs(pool.shards(), from) {
            prop_assert!(pool.apply(&legs).is_ok());
        }
        prop_assert_eq!(pool.available(), total);
        let fair = total.get() / i64::from(shards);
        for s in pool.shards() {
            prop_assert!(s.available.get() >= 0);
        }
        // Every shard that was short now has its fair share, or the source ran dry.
        let source = pool.shard(from).unwrap().available.get();
        prop_assert!(source <= fair.max(balances[usize::from(from)] + top_up) );
        if source > fair {
            prop_assert!(pool.shards().iter().all(|s| s.available.get() >= fair));
        }
    }
}
