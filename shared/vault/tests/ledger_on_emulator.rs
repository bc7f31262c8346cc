//! The ledger on the emulator: concurrency, exactly-once hold ends, and a seeded
//! randomized run checked against the pure ledger model after every step.

use aicity_domain::ids::{AgentId, OwnerId, TaskId};
use aicity_domain::money::Cents;
use aicity_domain::vault::AutoTopUp;
use aicity_domain::vault::ledger::{self, Account, Ledger, REVENUE_SHARDS};
use aicity_store::payment_intents::{self, Intent, IntentKind};
use aicity_store::vault::{self, HoldEnd, HoldStatus, VaultError};
use aicity_vault::payments::LocalProvider;
use aicity_vault::service;
use time::OffsetDateTime;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A card payment credited to the pool as a top-up does it: the intent first, then
/// the credit that settles it.
async fn credit(
    db: &aws_sdk_dynamodb::Client,
    table: &str,
    owner: &OwnerId,
    amount: Cents,
) -> Result<(), vault::VaultError> {
    let key = format!("test:{}", ulid::Ulid::generate());
    let intent = Intent::new(
        &key,
        *owner,
        amount,
        "pm_card_visa",
        IntentKind::TopUp,
        now(),
    );
    payment_intents::open(db, table, &intent).await.unwrap();
    let charge = format!("ch_{}", ulid::Ulid::generate());
    vault::top_up(db, table, owner, amount, &key, &charge, now()).await
}

async fn funded(ctx: &aicity_http::Context, owner: &OwnerId, amount: i64) {
    credit(ctx.db(), &ctx.table, owner, Cents(amount))
        .await
        .unwrap();
}

#[tokio::test]
async fn fifty_parallel_holds_of_100_against_1000_let_exactly_ten_through() {
    let ctx = aicity_testkit::context(Default::default()).await;
    let owner = OwnerId::new();
    funded(&ctx, &owner, 1_000).await;
    let provider = LocalProvider::new(ctx.db().clone(), ctx.table.clone());

    let attempts = (0..50).map(|_| {
        let (ctx, provider) = (&ctx, &provider);
        async move {
            service::hold_for_task(
                ctx.db(),
                &ctx.table,
                provider,
                &owner,
                &TaskId::new(),
                Cents(100),
            )
            .await
        }
    });
    let results = futures::future::join_all(attempts).await;
    let held = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(held, 10);
    for err in results.into_iter().filter_map(Result::err) {
        assert_eq!(err.code, aicity_domain::ErrorCode::InsufficientCredits);
        assert_eq!(err.http_status(), 402);
        let details = err.details.unwrap();
        assert_eq!(details["required"], 100);
        assert!(details["available"].as_i64().unwrap() < 100);
    }
    let pool = vault::pool(ctx.db(), &ctx.table, &owner).await.unwrap();
    assert_eq!(
        (pool.available, pool.held, pool.balance),
        (Cents(0), Cents(1_000), Cents(1_000))
    );
}

#[tokio::test]
async fn every_hold_ends_exactly_once() {
    let ctx = aicity_testkit::context(Default::default()).await;
    let (db, table) = (ctx.db(), ctx.table.as_str());
    let (owner, agent) = (OwnerId::new(), AgentId::new());
    funded(&ctx, &owner, 5_000).await;
    let (posted, voided) = (TaskId::new(), TaskId::new());
    vault::place_hold(db, table, &owner, &posted, Cents(2_000), now())
        .await
        .unwrap();
    vault::place_hold(db, table, &owner, &voided, Cents(1_000), now())
        .await
        .unwrap();
    assert!(matches!(
        vault::place_hold(db, table, &owner, &posted, Cents(2_000), now()).await,
        Err(VaultError::AlreadyDone)
    ));

    let post = HoldEnd::Post {
        agent,
        charge: Cents(1_500),
    };
    let hold = vault::end_hold(db, table, &posted, post, now())
        .await
        .unwrap();
    assert_eq!(
        (hold.status, hold.earning, hold.fee),
        (HoldStatus::Posted, Cents(1_275), Cents(225))
    );
    assert!(matches!(
        vault::end_hold(db, table, &posted, post, now()).await,
        Err(VaultError::AlreadyDone)
    ));
    assert!(matches!(
        vault::end_hold(db, table, &posted, HoldEnd::Void, now()).await,
        Err(VaultError::WrongState(Some(HoldStatus::Posted)))
    ));
    vault::end_hold(db, table, &voided, HoldEnd::Void, now())
        .await
        .unwrap();
    assert!(matches!(
        vault::end_hold(db, table, &voided, HoldEnd::Void, now()).await,
        Err(VaultError::AlreadyDone)
    ));
    assert!(matches!(
        vault::end_hold(db, table, &voided, HoldEnd::Release, now()).await,
        Err(VaultError::WrongState(Some(HoldStatus::Voided)))
    ));

    vault::end_hold(db, table, &posted, HoldEnd::Release, now())
        .await
        .unwrap();
    assert!(matches!(
        vault::end_hold(db, table, &posted, HoldEnd::Release, now()).await,
        Err(VaultError::AlreadyDone)
    ));
    assert!(matches!(
        vault::end_hold(db, table, &posted, HoldEnd::Reverse, now()).await,
        Err(VaultError::WrongState(Some(HoldStatus::Released)))
    ));

    let wallet = vault::wallet(db, table, &agent).await.unwrap();
    assert_eq!(
        (
            wallet.available,
            wallet.pending_escrow,
            wallet.lifetime_earned
        ),
        (Cents(1_275), Cents(0), Cents(1_275))
    );
    let pool = vault::pool(db, table, &owner).await.unwrap();
    assert_eq!((pool.available, pool.held), (Cents(3_500), Cents(0)));
    assert_eq!(vault::revenue(db, table).await.unwrap(), Cents(225));
}

#[tokio::test]
async fn a_refund_before_release_returns_everything_to_the_buyer() {
    let ctx = aicity_testkit::context(Default::default()).await;
    let (db, table) = (ctx.db(), ctx.table.as_str());
    let (owner, agent, task) = (OwnerId::new(), AgentId::new(), TaskId::new());
    funded(&ctx, &owner, 1_000).await;
    vault::place_hold(db, table, &owner, &task, Cents(1_000), now())
        .await
        .unwrap();
    vault::end_hold(
        db,
        table,
        &task,
        HoldEnd::Post {
            agent,
            charge: Cents(1_000),
        },
        now(),
    )
    .await
    .unwrap();
    vault::end_hold(db, table, &task, HoldEnd::Reverse, now())
        .await
        .unwrap();
    assert!(matches!(
        vault::end_hold(db, table, &task, HoldEnd::Release, now()).await,
        Err(VaultError::WrongState(Some(HoldStatus::Reversed)))
    ));
    let pool = vault::pool(db, table, &owner).await.unwrap();
    assert_eq!(pool.available, Cents(1_000));
    let wallet = vault::wallet(db, table, &agent).await.unwrap();
    assert_eq!(
        (wallet.available, wallet.pending_escrow),
        (Cents(0), Cents(0))
    );
    assert_eq!(vault::revenue(db, table).await.unwrap(), Cents(0));
}

#[tokio::test]
async fn auto_top_up_reloads_before_a_hold_would_dip_below_the_threshold() {
    let ctx = aicity_testkit::context(Default::default()).await;
    let (db, table) = (ctx.db(), ctx.table.as_str());
    let owner = OwnerId::new();
    funded(&ctx, &owner, 1_200).await;
    let rule = AutoTopUp {
        enabled: true,
        threshold: Cents(1_000),
        reload_amount: Cents(5_000),
    };
    vault::set_auto_top_up(db, table, &owner, &rule)
        .await
        .unwrap();
    let provider = LocalProvider::new(db.clone(), ctx.table.clone());
    service::hold_for_task(db, table, &provider, &owner, &TaskId::new(), Cents(500))
        .await
        .unwrap();
    let pool = vault::pool(db, table, &owner).await.unwrap();
    assert_eq!((pool.available, pool.held), (Cents(5_700), Cents(500)));
    // Above the threshold afterwards: no second reload.
    service::hold_for_task(db, table, &provider, &owner, &TaskId::new(), Cents(500))
        .await
        .unwrap();
    assert_eq!(
        vault::pool(db, table, &owner).await.unwrap().available,
        Cents(5_200)
    );
}

/// xorshift64*: a seeded generator, so a failure replays exactly.
struct Rng(u64);
impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % below
    }
}

/// Every stored balance equals the model's, and they sum to zero.
async fn assert_matches(
    ctx: &aicity_http::Context,
    model: &Ledger,
    owner: &OwnerId,
    agents: &[AgentId],
) {
    let (db, table) = (ctx.db(), ctx.table.as_str());
    let pool = vault::pool(db, table, owner).await.unwrap();
    let item = db
        .get_item()
        .table_name(table)
        .set_key(Some(vault::pool_key(owner).to_map()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let external: i64 = item["externalBalance"].as_n().unwrap().parse().unwrap();
    assert_eq!(external, model.balance(Account::External(*owner)).get());
    assert_eq!(pool.available, model.balance(Account::Pool(*owner)));
    let model_held: i64 = model
        .accounts()
        .filter(|(a, _)| matches!(a, Account::Hold(..)))
        .map(|(_, b)| *b)
        .sum();
    assert_eq!(pool.held.get(), model_held);
    assert_eq!(pool.balance.get(), pool.available.get() + pool.held.get());
    let mut stored_sum = external + pool.available.get() + pool.held.get();
    for agent in agents {
        let wallet = vault::wallet(db, table, agent).await.unwrap();
        assert_eq!(wallet.available, model.balance(Account::Wallet(*agent)));
        assert_eq!(
            wallet.pending_escrow,
            model.balance(Account::Escrow(*agent))
        );
        stored_sum += wallet.available.get() + wallet.pending_escrow.get();
    }
    let revenue = vault::revenue(db, table).await.unwrap();
    let model_revenue: i64 = (0..REVENUE_SHARDS)
        .map(|s| model.balance(Account::Revenue(s)).get())
        .sum();
    assert_eq!(revenue.get(), model_revenue);
    stored_sum += revenue.get();
    assert_eq!(stored_sum, 0, "the stored ledger sums to zero");
    assert_eq!(model.sum(), 0);
}

#[tokio::test]
async fn a_seeded_random_run_matches_the_model_after_every_step() {
    let ctx = aicity_testkit::context(Default::default()).await;
    let (db, table) = (ctx.db(), ctx.table.as_str());
    let owner = OwnerId::new();
    let agents = [AgentId::new(), AgentId::new()];
    let tasks: Vec<TaskId> = (0..16).map(|_| TaskId::new()).collect();
    let mut model = Ledger::default();
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    vault::pool(db, table, &owner).await.unwrap();

    let mut done: std::collections::BTreeMap<&str, usize> = Default::default();
    for step in 0..200 {
        let amount = Cents(1 + rng.next(2_000) as i64);
        let task = tasks[rng.next(tasks.len() as u64) as usize];
        let agent = agents[rng.next(2) as usize];
        let (result, planned) = match rng.next(9) {
            0 => (
                credit(db, table, &owner, amount).await,
                ledger::top_up(owner, amount).unwrap(),
            ),
            1 | 2 => {
                // One hold per task, ever: a task whose hold ended cannot hold again.
                if vault::hold(db, table, &task).await.is_ok() {
                    let again = vault::place_hold(db, table, &owner, &task, amount, now()).await;
                    assert!(
                        matches!(
                            again,
                            Err(VaultError::AlreadyDone | VaultError::WrongState(_))
                        ),
                        "{again:?}"
                    );
                    continue;
                }
                (
                    vault::place_hold(db, table, &owner, &task, amount, now()).await,
                    ledger::hold(owner, task, amount).unwrap(),
                )
            }
            3..=5 => {
                let (end, planned) = match vault::hold(db, table, &task).await {
                    Ok(h) if h.status == HoldStatus::Pending && rng.next(2) == 0 => {
                        let charge = Cents(rng.next(h.amount.get() as u64 + 1) as i64);
                        (
                            HoldEnd::Post { agent, charge },
                            ledger::post(owner, task, agent, h.amount, charge).unwrap(),
                        )
                    }
                    Ok(h) if h.status == HoldStatus::Pending => {
                        (HoldEnd::Void, ledger::void(owner, task, h.amount).unwrap())
                    }
                    Ok(h) if h.status == HoldStatus::Posted && rng.next(2) == 0 => {
                        let agent = h.agent_id.unwrap();
                        (
                            HoldEnd::Release,
                            if h.earning.is_positive() {
                                ledger::release_escrow(agent, h.earning).unwrap()
                            } else {
                                vec![]
                            },
                        )
                    }
                    Ok(h) if h.status == HoldStatus::Posted => (
                        HoldEnd::Reverse,
                        ledger::reverse(owner, task, h.agent_id.unwrap(), h.earning, h.fee)
                            .unwrap(),
                    ),
                    _ => continue,
                };
                (
                    vault::end_hold(db, table, &task, end, now())
                        .await
                        .map(|_| ()),
                    planned,
                )
            }
            6 => (
                vault::allocate(db, table, &owner, &agent, amount, None, now()).await,
                ledger::allocate(owner, agent, amount).unwrap(),
            ),
            _ => (
                vault::transfer(db, table, &agents[0], &agents[1], amount, None, now()).await,
                ledger::wallet_transfer(agents[0], agents[1], amount).unwrap(),
            ),
        };
        let planned_for_report = planned.clone();
        let model_result = {
            let mut next = model.clone();
            next.apply(&planned).map(|_| next)
        };
        match (result, model_result) {
            (Ok(()), Ok(next)) => {
                model = next;
                for t in &planned_for_report {
                    *done.entry(t.kind.as_str()).or_insert(0) += 1;
                }
            }
            (
                Err(VaultError::Insufficient { .. }),
                Err(ledger::LedgerError::Insufficient { .. }),
            ) => {}
            (Err(VaultError::AlreadyDone), _) => {}
            (stored, modelled) => panic!(
                "step {step}: store said {stored:?}, model said {modelled:?}, planned {planned_for_report:?}"
            ),
        }
        assert_matches(&ctx, &model, &owner, &agents).await;
    }
    // The seed must exercise every kind of movement, or the run proves little.
    for kind in [
        "top_up",
        "hold",
        "charge",
        "fee",
        "release",
        "escrow_release",
        "refund",
        "allocation",
        "wallet_transfer",
    ] {
        assert!(
            done.get(kind).copied().unwrap_or(0) > 0,
            "{kind} never happened: {done:?}"
        );
    }
}
