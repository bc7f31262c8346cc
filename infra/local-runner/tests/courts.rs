//! Courts on the real path: disputes filed through the tasks API, answered, withdrawn
//! and ruled on through the courts function, the dispute sweep, and every way the money
//! around a dispute could get stuck or paid twice — with the books checked to the cent.
//! The clocks are injected.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aicity_domain::ids::{AgentId, TaskId};
use aicity_domain::task::timing::{REFUND_WINDOW, Watch};
use aicity_domain::timestamps;
use aicity_store::item::Stored;
use aicity_store::tasks::{TaskRecord, watch_partition, watch_sort};
use aicity_store::vault::{self, HoldStatus};
use aicity_store::{Key, tasks as task_store};
use aicity_tasks::settlement::{Settled, settle};
use aws_sdk_dynamodb::types::AttributeValue;
use common::world::{Auth, Party, World, good_review, template};
use common::{ADMIN_EMAIL, Knobs, Parts};
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// The charge of every task here: 2,125 to the agent, 375 to the platform.
const PRICE: i64 = 2_500;
const EARNING: i64 = 2_125;
const FEE: i64 = 375;

/// A world whose settlement queue delivers after `delay` seconds (900: not during the
/// test, so only what the test drives pays anyone).
async fn world_with(delay: u32) -> (World, Parts) {
    let mut template = template();
    for queue in template.queues.iter_mut() {
        if queue.logical_id == "SettlementQueue" {
            queue.delay_seconds = Some(delay);
        }
    }
    let (running, parts, clients) =
        common::start_full(template, Knobs::default(), |f| Arc::new(f)).await;
    (
        World::from((running, parts.functions.clone(), clients)),
        parts,
    )
}

/// Signs up (and in) the owner whose email `ADMIN_EMAILS` lists.
async fn admin(world: &mut World) -> Party {
    let url = format!("{}/api/v1/auth", world.running.base_url);
    let up: Value = world
        .http
        .post(format!("{url}/sign-up"))
        .json(&json!({"name": "Judge", "email": ADMIN_EMAIL, "password": "long-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    world
        .owners
        .push(up["data"]["user"]["id"].as_str().unwrap().parse().unwrap());
    let signed: Value = world
        .http
        .post(format!("{url}/sign-in"))
        .json(&json!({"email": ADMIN_EMAIL, "password": "long-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Party {
        token: signed["data"]["token"].as_str().unwrap().to_owned(),
    }
}

/// A task submitted by `buyer` (owner token or agent key), done by the agent with
/// `seller` and through the quality gate: (task id, completedAt).
async fn completed(world: &World, buyer: Auth<'_>, seller: &str) -> (String, OffsetDateTime) {
    let (status, body) = world
        .call(
            Method::POST,
            "/tasks",
            buyer,
            Some(json!({
                "taskType": "code_review", "maxBudget": 5_000,
                "input": {"description": "Review the Rust auth module", "files": [{"name": "auth.rs", "content": "fn check() {}"}]},
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    world.wait_assigned(&id, buyer).await;
    world.start(&id, seller).await;
    world.complete(&id, seller, good_review()).await;
    let done = world.wait_status(&id, buyer, "completed").await;
    assert_eq!(done["creditsCharged"], PRICE);
    (
        id,
        timestamps::parse(done["completedAt"].as_str().unwrap()).unwrap(),
    )
}

async fn file(world: &World, buyer: Auth<'_>, task: &str) -> (u16, Value) {
    world
        .call(
            Method::POST,
            &format!("/tasks/{task}/dispute"),
            buyer,
            Some(json!({"reason": "incomplete_delivery", "description": "Only 2 of the 5 files were reviewed."})),
        )
        .await
}

/// Files a dispute that must be accepted; its id.
async fn filed(world: &World, buyer: Auth<'_>, task: &str) -> String {
    let (status, body) = file(world, buyer, task).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["status"], "filed");
    body["data"]["id"].as_str().unwrap().to_owned()
}

async fn respond(world: &World, who: Auth<'_>, dispute: &str) -> (u16, Value) {
    world
        .call(
            Method::POST,
            &format!("/courts/disputes/{dispute}/respond"),
            who,
            Some(json!({"response": "All five files were reviewed; see findings 1-3."})),
        )
        .await
}

async fn resolve(world: &World, who: Auth<'_>, dispute: &str, ruling: Value) -> (u16, Value) {
    world
        .call(
            Method::POST,
            &format!("/courts/disputes/{dispute}/resolve"),
            who,
            Some(ruling),
        )
        .await
}

async fn wallet(world: &World, key: &str) -> Value {
    let (status, body) = world
        .call(Method::GET, "/vault/wallet", Auth::Key(key), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

async fn pool(world: &World, owner: &Party) -> Value {
    let (status, body) = world
        .call(Method::GET, "/vault/pool", Auth::Bearer(&owner.token), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

async fn revenue(world: &World) -> i64 {
    vault::revenue(&world.clients.dynamodb, world.table())
        .await
        .unwrap()
        .get()
}

async fn hold(world: &World, task: &str) -> vault::Hold {
    vault::hold(
        &world.clients.dynamodb,
        world.table(),
        &task.parse().unwrap(),
    )
    .await
    .unwrap()
}

/// The agent's wallet as `(available, pendingEscrow, frozen, shortfall, underReview)`.
fn wallet_parts(wallet: &Value) -> (i64, i64, i64, i64, bool) {
    (
        wallet["available"].as_i64().unwrap(),
        wallet["pendingEscrow"].as_i64().unwrap(),
        wallet["frozen"].as_i64().unwrap(),
        wallet["shortfall"].as_i64().unwrap(),
        wallet["underReview"].as_bool().unwrap(),
    )
}

/// The task sits in exactly the sweeper watch its state calls for (or none).
async fn assert_watch_right(world: &World, task: &str) {
    let id: TaskId = task.parse().unwrap();
    let item = world
        .clients
        .dynamodb
        .get_item()
        .table_name(world.table())
        .set_key(Some(Key::task(&id).to_map()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let record: TaskRecord = serde_dynamo::from_item::<_, Stored<TaskRecord>>(item.clone())
        .unwrap()
        .body;
    let expected =
        aicity_domain::task::timing::watch(&record.task).map(|(watch, _)| watch_partition(watch));
    let actual = item.get("GSI3PK").and_then(|v| v.as_s().ok()).cloned();
    assert_eq!(
        actual, expected,
        "task {task} ({}) in the wrong watch",
        record.task.status
    );
}

async fn settle_now(parts: &Parts, task: &str, completed_at: OffsetDateTime) -> Settled {
    parts
        .knobs
        .settlement_clock
        .pin(completed_at + REFUND_WINDOW + Duration::from_secs(1));
    settle(
        &parts.settlement.ctx,
        &task.parse().unwrap(),
        parts.knobs.settlement_clock.as_ref(),
        REFUND_WINDOW,
    )
    .await
    .unwrap()
}

/// One buyer (10,000), one seller with one reviewer (price 2,500), one completed task.
struct Case {
    world: World,
    parts: Parts,
    buyer: Party,
    seller: Party,
    key: String,
    task: String,
    done: OffsetDateTime,
}

async fn case() -> Case {
    let (mut world, parts) = world_with(900).await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, PRICE, 4).await;
    let (task, done) = completed(&world, Auth::Bearer(&buyer.token), &key).await;
    Case {
        world,
        parts,
        buyer,
        seller,
        key,
        task,
        done,
    }
}

/// Files on the case's task and has the seller answer, so the dispute is under review.
async fn under_review(c: &Case) -> String {
    let dispute = filed(&c.world, Auth::Bearer(&c.buyer.token), &c.task).await;
    let (status, body) = respond(&c.world, Auth::Key(&c.key), &dispute).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "under_review");
    dispute
}

#[tokio::test]
async fn a_dispute_before_settlement_freezes_the_earning_and_a_buyer_ruling_refunds_everything() {
    let mut c = case().await;
    let judge = admin(&mut c.world).await;
    assert_eq!(pool(&c.world, &c.buyer).await["balance"], 10_000 - PRICE);
    let dispute = filed(&c.world, Auth::Bearer(&c.buyer.token), &c.task).await;

    // Frozen: out of escrow, and settlement waits however late it comes.
    assert_eq!(
        wallet_parts(&wallet(&c.world, &c.key).await),
        (0, 0, EARNING, 0, false)
    );
    assert_eq!(hold(&c.world, &c.task).await.status, HoldStatus::Frozen);
    assert_eq!(
        settle_now(&c.parts, &c.task, c.done).await,
        Settled::Nothing
    );
    let report = sweeper::sweep(&c.parts.sweeper).await.unwrap();
    assert_eq!(report.settled, 0, "{report:?}");
    assert_watch_right(&c.world, &c.task).await;
    assert_eq!(
        wallet_parts(&wallet(&c.world, &c.key).await),
        (0, 0, EARNING, 0, false)
    );

    // A ruling needs review: the seller answers first.
    let (status, body) = resolve(
        &c.world,
        Auth::Bearer(&judge.token),
        &dispute,
        json!({"outcome": "buyer", "note": "Incomplete"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("INVALID_STATE")),
        "{body}"
    );
    let (status, _) = respond(&c.world, Auth::Key(&c.key), &dispute).await;
    assert_eq!(status, 200);
    let (status, body) = resolve(
        &c.world,
        Auth::Bearer(&judge.token),
        &dispute,
        json!({"outcome": "buyer", "note": "Two of five files is not a review."}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "resolved");
    assert_eq!(body["data"]["resolution"]["refundAmount"], PRICE, "{body}");

    // The whole charge back: the agent's 85 % and the platform's 15 %.
    let task = c.world.task(&c.task, Auth::Bearer(&c.buyer.token)).await;
    assert_eq!(
        (task["status"].clone(), task["disputeStatus"].clone()),
        (json!("refunded"), json!("resolved"))
    );
    assert_eq!(pool(&c.world, &c.buyer).await["balance"], 10_000);
    assert_eq!(
        wallet_parts(&wallet(&c.world, &c.key).await),
        (0, 0, 0, 0, false)
    );
    assert_eq!(revenue(&c.world).await, 0);
    assert_eq!(hold(&c.world, &c.task).await.status, HoldStatus::Reversed);
    assert_watch_right(&c.world, &c.task).await;
    // Once: a second ruling is refused and moves nothing.
    let (status, _) = resolve(
        &c.world,
        Auth::Bearer(&judge.token),
        &dispute,
        json!({"outcome": "seller", "note": "Changed my mind"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(pool(&c.world, &c.buyer).await["balance"], 10_000);
    // The agent heard of each step.
    let statuses: Vec<Value> = c
        .world
        .events(&c.task)
        .await
        .into_iter()
        .filter(|(kind, _)| kind == "dispute")
        .map(|(_, data)| data["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        [json!("filed"), json!("under_review"), json!("resolved")]
    );
    c.world.assert_books_balance(&[&c.task]).await;
}

#[tokio::test]
async fn a_seller_ruling_pays_the_earning_and_settlement_pays_nothing_twice() {
    let mut c = case().await;
    let judge = admin(&mut c.world).await;
    let dispute = under_review(&c).await;
    let (status, body) = resolve(
        &c.world,
        Auth::Bearer(&judge.token),
        &dispute,
        json!({"outcome": "seller", "note": "The review covers every file."}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let paid = wallet(&c.world, &c.key).await;
    assert_eq!(wallet_parts(&paid), (EARNING, 0, 0, 0, false));
    assert_eq!(paid["lifetimeEarned"], EARNING);
    let task = c.world.task(&c.task, Auth::Bearer(&c.buyer.token)).await;
    assert_eq!(task["status"], "completed");
    assert!(task["settledAt"].is_string(), "{task}");
    assert_eq!(hold(&c.world, &c.task).await.status, HoldStatus::Released);
    // The settlement message arriving late, or the sweeper, finds nothing to pay.
    assert_eq!(
        settle_now(&c.parts, &c.task, c.done).await,
        Settled::Nothing
    );
    assert_eq!(sweeper::sweep(&c.parts.sweeper).await.unwrap().settled, 0);
    assert_eq!(wallet(&c.world, &c.key).await["available"], EARNING);
    assert_eq!(pool(&c.world, &c.buyer).await["balance"], 10_000 - PRICE);
    assert_eq!(revenue(&c.world).await, FEE);
    assert_watch_right(&c.world, &c.task).await;
    c.world.assert_books_balance(&[&c.task]).await;
}

#[tokio::test]
async fn a_split_refunds_the_amount_and_the_fee_pro_rata() {
    let mut c = case().await;
    let judge = admin(&mut c.world).await;
    let dispute = under_review(&c).await;
    for bad in [json!(0), json!(PRICE), json!(-1)] {
        let (status, body) = resolve(
            &c.world,
            Auth::Bearer(&judge.token),
            &dispute,
            json!({"outcome": "split", "refundAmount": bad, "note": "Half done"}),
        )
        .await;
        assert_eq!(
            (
                status,
                body["error"]["details"]["fields"][0]["field"].clone()
            ),
            (400, json!("refundAmount")),
            "{body}"
        );
    }
    let (status, body) = resolve(
        &c.world,
        Auth::Bearer(&judge.token),
        &dispute,
        json!({"outcome": "split", "refundAmount": 1_000, "note": "Two of five files were fine."}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // 1,000 back: 850 from the agent's earning, 150 of the fee. What stays charged,
    // 1,500, is split 1,275 + 225 as any charge of 1,500 would be.
    assert_eq!(
        pool(&c.world, &c.buyer).await["balance"],
        10_000 - PRICE + 1_000
    );
    assert_eq!(
        wallet_parts(&wallet(&c.world, &c.key).await),
        (1_275, 0, 0, 0, false)
    );
    assert_eq!(revenue(&c.world).await, 225);
    let settled = hold(&c.world, &c.task).await;
    assert_eq!(
        (settled.status, settled.refunded.get()),
        (HoldStatus::Released, 1_000)
    );
    let task = c.world.task(&c.task, Auth::Key(&c.key)).await;
    assert_eq!(task["status"], "completed");
    assert_watch_right(&c.world, &c.task).await;
    let _ = &c.seller;
    c.world.assert_books_balance(&[&c.task]).await;
}

#[tokio::test]
async fn a_withdrawn_dispute_pays_the_agent() {
    let c = case().await;
    let dispute = filed(&c.world, Auth::Bearer(&c.buyer.token), &c.task).await;
    let (status, body) = c
        .world
        .call(
            Method::POST,
            &format!("/courts/disputes/{dispute}/withdraw"),
            Auth::Bearer(&c.buyer.token),
            None,
        )
        .await;
    assert_eq!(
        (status, body["data"]["status"].clone()),
        (200, json!("withdrawn")),
        "{body}"
    );
    assert_eq!(
        wallet_parts(&wallet(&c.world, &c.key).await),
        (EARNING, 0, 0, 0, false)
    );
    let (status, body) = respond(&c.world, Auth::Key(&c.key), &dispute).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("DISPUTE_NOT_ACCEPTING_RESPONSES"))
    );
    assert_eq!(
        settle_now(&c.parts, &c.task, c.done).await,
        Settled::Nothing
    );
    assert_eq!(wallet(&c.world, &c.key).await["available"], EARNING);
    assert_watch_right(&c.world, &c.task).await;
    c.world.assert_books_balance(&[&c.task]).await;
}

#[tokio::test]
async fn a_dispute_after_settlement_takes_the_earning_back_and_the_next_earning_repays_the_shortfall()
 {
    let (mut world, parts) = world_with(900).await;
    let judge = admin(&mut world).await;
    let buyer = world.owner(20_000).await;
    let seller = world.owner(1_000).await;
    let (agent, key) = world.reviewer(&seller, PRICE, 4).await;
    let (spare, _) = world.idle_reviewer(&seller, PRICE, 1).await;
    let (first, done) = completed(&world, Auth::Bearer(&buyer.token), &key).await;
    assert_eq!(settle_now(&parts, &first, done).await, Settled::Paid);
    assert_eq!(wallet(&world, &key).await["available"], EARNING);

    // The seller moves most of it away; then the buyer disputes.
    let transfer =
        |amount: i64| json!({"fromAgentId": agent, "toAgentId": spare, "amount": amount});
    let (status, body) = world
        .call(
            Method::POST,
            "/vault/transfers",
            Auth::Bearer(&seller.token),
            Some(transfer(2_000)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let dispute = filed(&world, Auth::Bearer(&buyer.token), &first).await;
    // 125 taken back from the wallet, 2,000 owed: under review.
    let held = wallet(&world, &key).await;
    assert_eq!(wallet_parts(&held), (0, 0, EARNING, 2_000, true));
    assert_eq!(
        held["lifetimeEarned"], 0,
        "the disputed earning is taken out of the count"
    );
    assert_eq!(hold(&world, &first).await.status, HoldStatus::Frozen);

    // Nothing leaves a wallet under review, and nothing is allocated to it.
    let (status, body) = world
        .call(
            Method::POST,
            "/vault/transfers",
            Auth::Bearer(&seller.token),
            Some(transfer(1)),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("WALLET_UNDER_REVIEW")),
        "{body}"
    );
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/vault/wallets/{agent}/allocate"),
            Auth::Bearer(&seller.token),
            Some(json!({"amount": 500})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("WALLET_UNDER_REVIEW")),
        "{body}"
    );
    assert_eq!(
        pool(&world, &seller).await["balance"],
        1_000,
        "nothing moved"
    );

    // The buyer wins: the whole charge back; the agent still owes 2,000.
    let (status, _) = respond(&world, Auth::Key(&key), &dispute).await;
    assert_eq!(status, 200);
    let (status, body) = resolve(
        &world,
        Auth::Bearer(&judge.token),
        &dispute,
        json!({"outcome": "buyer", "note": "Not delivered"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(pool(&world, &buyer).await["balance"], 20_000);
    assert_eq!(
        wallet_parts(&wallet(&world, &key).await),
        (0, 0, 0, 2_000, true)
    );
    assert_eq!(revenue(&world).await, 0);

    // Its next earning repays the shortfall first: 2,000 of 2,125; 125 reaches the wallet.
    let (second, done) = completed(&world, Auth::Bearer(&buyer.token), &key).await;
    assert_eq!(settle_now(&parts, &second, done).await, Settled::Paid);
    let repaid = wallet(&world, &key).await;
    assert_eq!(wallet_parts(&repaid), (125, 0, 0, 0, false));
    assert_eq!(repaid["lifetimeEarned"], EARNING);
    let (status, body) = world
        .call(
            Method::POST,
            "/vault/transfers",
            Auth::Bearer(&seller.token),
            Some(transfer(100)),
        )
        .await;
    assert_eq!(status, 200, "no longer under review: {body}");
    assert_eq!(revenue(&world).await, FEE);
    for task in [&first, &second] {
        assert_watch_right(&world, task).await;
    }
    let agent: AgentId = agent.parse().unwrap();
    let entries = vault::entries(
        &world.clients.dynamodb,
        world.table(),
        &aicity_domain::vault::Account::Shortfall(agent),
        None,
        &aicity_store::paging::PageAsk::new(1, 10, None),
    )
    .await
    .unwrap()
    .items;
    let moves: Vec<(String, i64)> = entries
        .iter()
        .map(|e| (e.kind.as_str().to_owned(), e.amount.get()))
        .collect();
    assert_eq!(
        moves,
        [
            ("shortfall_repayment".to_owned(), 2_000),
            ("dispute_hold".to_owned(), -2_000)
        ],
        "every move is a ledger transfer"
    );
    world.assert_books_balance(&[&first, &second]).await;
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    BuyerOwner,
    BuyerAgent,
    SellerAgent,
    SellerOwner,
    OtherOwner,
    OtherAgent,
    Admin,
    Anonymous,
}
use Who::*;

const EVERYONE: [Who; 8] = [
    BuyerOwner,
    BuyerAgent,
    SellerAgent,
    SellerOwner,
    OtherOwner,
    OtherAgent,
    Admin,
    Anonymous,
];

/// The credentials of each kind of caller.
struct Callers {
    buyer: String,
    buyer_key: String,
    seller: String,
    seller_key: String,
    other: String,
    other_key: String,
    judge: String,
}

impl Callers {
    fn auth(&self, who: Who) -> Option<Auth<'_>> {
        match who {
            BuyerOwner => Some(Auth::Bearer(&self.buyer)),
            BuyerAgent => Some(Auth::Key(&self.buyer_key)),
            SellerAgent => Some(Auth::Key(&self.seller_key)),
            SellerOwner => Some(Auth::Bearer(&self.seller)),
            OtherOwner => Some(Auth::Bearer(&self.other)),
            OtherAgent => Some(Auth::Key(&self.other_key)),
            Admin => Some(Auth::Bearer(&self.judge)),
            Anonymous => None,
        }
    }

    async fn call(
        &self,
        world: &World,
        who: Who,
        method: Method,
        path: String,
        body: Option<Value>,
    ) -> (u16, Value) {
        if let Some(auth) = self.auth(who) {
            return world.call(method, &path, auth, body).await;
        }
        let mut request = world
            .http
            .request(method, format!("{}/api/v1{path}", world.running.base_url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// Every courts route for every kind of caller.
#[tokio::test]
async fn every_courts_route_answers_each_caller_as_its_side_allows() {
    let (mut world, _parts) = world_with(900).await;
    let judge = admin(&mut world).await;
    let buyer = world.owner(30_000).await;
    let (_, buyer_key) = world.idle_reviewer(&buyer, PRICE, 1).await;
    let seller = world.owner(0).await;
    let (_, seller_key) = world.reviewer(&seller, PRICE, 4).await;
    let other = world.owner(0).await;
    let (_, other_key) = world.idle_reviewer(&other, PRICE, 1).await;

    // Three tasks the buyer's agent submitted, each disputed.
    let mut tasks = Vec::new();
    let mut disputes = Vec::new();
    for _ in 0..3 {
        let (task, _) = completed(&world, Auth::Key(&buyer_key), &seller_key).await;
        disputes.push(filed(&world, Auth::Key(&buyer_key), &task).await);
        tasks.push(task);
    }
    let (d1, d2, d3) = (&disputes[0], &disputes[1], &disputes[2]);

    let callers = Callers {
        buyer: buyer.token.clone(),
        buyer_key: buyer_key.clone(),
        seller: seller.token.clone(),
        seller_key: seller_key.clone(),
        other: other.token.clone(),
        other_key: other_key.clone(),
        judge: judge.token.clone(),
    };
    let call = |who: Who, method: Method, path: String, body: Option<Value>| {
        callers.call(&world, who, method, path, body)
    };
    let code = |body: &Value| body["error"]["code"].as_str().unwrap_or("").to_owned();
    let expect = |who: Who, route: &str, got: (u16, Value), want: u16, want_code: &str| {
        assert_eq!(got.0, want, "{who:?} {route}: {}", got.1);
        if !want_code.is_empty() {
            assert_eq!(code(&got.1), want_code, "{who:?} {route}");
        }
    };

    // Reads.
    for who in EVERYONE {
        let list = call(who, Method::GET, "/courts/disputes".into(), None).await;
        let one = call(who, Method::GET, format!("/courts/disputes/{d1}"), None).await;
        let assessed = call(
            who,
            Method::GET,
            format!("/courts/assessments/{}", tasks[0]),
            None,
        )
        .await;
        let queue = call(who, Method::GET, "/courts/review-queue".into(), None).await;
        match who {
            Anonymous => {
                for (route, got) in [
                    ("list", list),
                    ("get", one),
                    ("assessment", assessed),
                    ("queue", queue),
                ] {
                    expect(who, route, got, 401, "UNAUTHORIZED");
                }
            }
            OtherOwner | OtherAgent => {
                expect(who, "list", list.clone(), 200, "");
                assert_eq!(
                    list.1["pagination"]["total"], 0,
                    "{who:?} is party to nothing"
                );
                expect(who, "get", one, 403, "COURT_CASE_FORBIDDEN");
                expect(who, "assessment", assessed, 403, "COURT_CASE_FORBIDDEN");
                expect(who, "queue", queue, 403, "COURT_CASE_FORBIDDEN");
            }
            Admin => {
                expect(who, "list", list.clone(), 200, "");
                assert_eq!(
                    list.1["pagination"]["total"], 0,
                    "an admin is party to nothing"
                );
                expect(who, "get", one, 200, "");
                expect(who, "assessment", assessed, 200, "");
                expect(who, "queue", queue, 200, "");
            }
            _ => {
                expect(who, "list", list.clone(), 200, "");
                assert_eq!(list.1["pagination"]["total"], 3, "{who:?} sees its three");
                expect(who, "get", one.clone(), 200, "");
                assert_eq!(one.1["data"]["id"], json!(d1));
                expect(who, "assessment", assessed.clone(), 200, "");
                let record = &assessed.1["data"];
                assert_eq!(
                    (
                        record["taskId"].clone(),
                        record["passed"].clone(),
                        record["passMark"].clone(),
                        record["gate"].clone()
                    ),
                    (json!(tasks[0]), json!(true), json!(70), json!("rules"))
                );
                assert!(
                    record["score"].as_u64().unwrap() >= 70
                        && record["reasons"].is_array()
                        && record["assessedAt"].is_string()
                );
                expect(who, "queue", queue, 403, "COURT_CASE_FORBIDDEN");
            }
        }
    }
    // The sides filter.
    let seller_side = call(
        SellerOwner,
        Method::GET,
        "/courts/disputes?role=seller&status=filed".into(),
        None,
    )
    .await;
    assert_eq!(seller_side.1["pagination"]["total"], 3);
    let buyer_side = call(
        SellerOwner,
        Method::GET,
        "/courts/disputes?role=buyer".into(),
        None,
    )
    .await;
    assert_eq!(buyer_side.1["pagination"]["total"], 0);
    let bad = call(
        BuyerOwner,
        Method::GET,
        "/courts/disputes?role=judge".into(),
        None,
    )
    .await;
    expect(BuyerOwner, "list role", bad, 400, "VALIDATION_ERROR");
    let unknown = aicity_domain::ids::DisputeId::new();
    let missing = call(
        BuyerOwner,
        Method::GET,
        format!("/courts/disputes/{unknown}"),
        None,
    )
    .await;
    expect(
        BuyerOwner,
        "get unknown",
        missing,
        404,
        "COURT_CASE_NOT_FOUND",
    );
    let missing = call(
        BuyerOwner,
        Method::GET,
        format!("/courts/assessments/{}", TaskId::new()),
        None,
    )
    .await;
    expect(
        BuyerOwner,
        "assessment unknown",
        missing,
        404,
        "COURT_CASE_NOT_FOUND",
    );

    // Respond: the seller's side only, once.
    let answer = || Some(json!({"response": "All files were reviewed."}));
    for who in [
        BuyerOwner, BuyerAgent, OtherOwner, OtherAgent, Admin, Anonymous,
    ] {
        let got = call(
            who,
            Method::POST,
            format!("/courts/disputes/{d1}/respond"),
            answer(),
        )
        .await;
        let want = if who == Anonymous { 401 } else { 403 };
        expect(who, "respond", got, want, "");
    }
    let got = call(
        SellerAgent,
        Method::POST,
        format!("/courts/disputes/{d1}/respond"),
        answer(),
    )
    .await;
    expect(SellerAgent, "respond", got, 200, "");
    let got = call(
        SellerOwner,
        Method::POST,
        format!("/courts/disputes/{d2}/respond"),
        answer(),
    )
    .await;
    expect(SellerOwner, "respond", got, 200, "");
    let got = call(
        SellerOwner,
        Method::POST,
        format!("/courts/disputes/{d1}/respond"),
        answer(),
    )
    .await;
    expect(
        SellerOwner,
        "respond again",
        got,
        409,
        "DISPUTE_NOT_ACCEPTING_RESPONSES",
    );

    // Withdraw: the buyer's side only.
    for who in [
        SellerAgent,
        SellerOwner,
        OtherOwner,
        OtherAgent,
        Admin,
        Anonymous,
    ] {
        let got = call(
            who,
            Method::POST,
            format!("/courts/disputes/{d3}/withdraw"),
            None,
        )
        .await;
        let want = if who == Anonymous { 401 } else { 403 };
        expect(who, "withdraw", got, want, "");
    }
    let got = call(
        BuyerAgent,
        Method::POST,
        format!("/courts/disputes/{d3}/withdraw"),
        None,
    )
    .await;
    expect(BuyerAgent, "withdraw", got, 200, "");
    let got = call(
        BuyerOwner,
        Method::POST,
        format!("/courts/disputes/{d2}/withdraw"),
        None,
    )
    .await;
    expect(BuyerOwner, "withdraw", got, 200, "");
    let got = call(
        BuyerOwner,
        Method::POST,
        format!("/courts/disputes/{d2}/withdraw"),
        None,
    )
    .await;
    expect(BuyerOwner, "withdraw again", got, 400, "INVALID_STATE");

    // Resolve: admins only.
    let ruling = || Some(json!({"outcome": "seller", "note": "Delivered as asked."}));
    for who in [
        BuyerOwner,
        BuyerAgent,
        SellerAgent,
        SellerOwner,
        OtherOwner,
        OtherAgent,
        Anonymous,
    ] {
        let got = call(
            who,
            Method::POST,
            format!("/courts/disputes/{d1}/resolve"),
            ruling(),
        )
        .await;
        let want = if who == Anonymous { 401 } else { 403 };
        expect(who, "resolve", got, want, "");
    }
    let queue = call(Admin, Method::GET, "/courts/review-queue".into(), None).await;
    assert_eq!(queue.1["data"].as_array().unwrap().len(), 1, "{}", queue.1);
    assert_eq!(queue.1["data"][0]["id"], json!(d1));
    let got = call(
        Admin,
        Method::POST,
        format!("/courts/disputes/{d1}/resolve"),
        ruling(),
    )
    .await;
    expect(Admin, "resolve", got, 200, "");
    let queue = call(Admin, Method::GET, "/courts/review-queue".into(), None).await;
    assert_eq!(queue.1["pagination"]["total"], 0);

    // Every earning ended up with the agent: one ruling for it, two withdrawals.
    assert_eq!(
        wallet_parts(&wallet(&world, &seller_key).await),
        (3 * EARNING, 0, 0, 0, false)
    );
    let refs: Vec<&str> = tasks.iter().map(String::as_str).collect();
    world.assert_books_balance(&refs).await;
}

#[tokio::test]
async fn the_response_deadline_closes_answers_and_the_sweep_sends_the_dispute_to_review_once() {
    let (mut world, parts) = world_with(900).await;
    let judge = admin(&mut world).await;
    let buyer = world.owner(20_000).await;
    let seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, PRICE, 4).await;
    let (answered_task, _) = completed(&world, Auth::Bearer(&buyer.token), &key).await;
    let (silent_task, _) = completed(&world, Auth::Bearer(&buyer.token), &key).await;
    let answered = filed(&world, Auth::Bearer(&buyer.token), &answered_task).await;
    let (_, body) = file(&world, Auth::Bearer(&buyer.token), &silent_task).await;
    let silent = body["data"]["id"].as_str().unwrap().to_owned();
    let deadline = timestamps::parse(body["data"]["responseDeadline"].as_str().unwrap()).unwrap();
    let filed_at = timestamps::parse(body["data"]["createdAt"].as_str().unwrap()).unwrap();
    assert_eq!(deadline - filed_at, time::Duration::hours(48));

    // Just before the deadline an answer is taken; at the deadline it is too late.
    parts
        .knobs
        .courts_clock
        .pin(deadline - Duration::from_secs(1));
    let (status, body) = respond(&world, Auth::Key(&key), &answered).await;
    assert_eq!(status, 200, "{body}");
    parts.knobs.courts_clock.pin(deadline);
    let (status, body) = respond(&world, Auth::Key(&key), &silent).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (410, json!("RESPONSE_DEADLINE_PASSED")),
        "{body}"
    );

    // Before the deadline the sweep leaves it; after, it moves it to review once.
    parts
        .knobs
        .settlement_clock
        .pin(deadline - Duration::from_secs(60));
    let early = sweeper::sweep(&parts.sweeper).await.unwrap();
    assert_eq!(early.disputes_escalated, 0, "{early:?}");
    parts
        .knobs
        .settlement_clock
        .pin(deadline + Duration::from_secs(60));
    let before = (pool(&world, &buyer).await, wallet(&world, &key).await);
    let first = sweeper::sweep(&parts.sweeper).await.unwrap();
    assert_eq!(first.disputes_escalated, 1, "{first:?}");
    let second = sweeper::sweep(&parts.sweeper).await.unwrap();
    assert_eq!(second.disputes_escalated, 0, "twice changes nothing twice");
    let third = sweeper::sweep(&parts.sweeper).await.unwrap();
    assert_eq!(third, second, "{third:?}");
    // Never an automatic refund: the money stays frozen.
    let after = (pool(&world, &buyer).await, wallet(&world, &key).await);
    assert_eq!(before, after);
    assert_eq!(after.1["frozen"], 2 * EARNING);

    let (status, body) = world
        .call(
            Method::GET,
            &format!("/courts/disputes/{silent}"),
            Auth::Bearer(&judge.token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            body["data"]["status"].clone(),
            body["data"]["response"].clone()
        ),
        (json!("under_review"), Value::Null)
    );
    let (status, body) = respond(&world, Auth::Key(&key), &silent).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (410, json!("RESPONSE_DEADLINE_PASSED"))
    );
    let (_, queue) = world
        .call(
            Method::GET,
            "/courts/review-queue",
            Auth::Bearer(&judge.token),
            None,
        )
        .await;
    let queued: Vec<Value> = queue["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].clone())
        .collect();
    assert_eq!(queued.len(), 2, "{queue}");
    assert!(queued.contains(&json!(silent)) && queued.contains(&json!(answered)));
    world
        .assert_books_balance(&[&answered_task, &silent_task])
        .await;
}

#[tokio::test]
async fn disputes_are_filed_only_within_the_window() {
    let c = case().await;
    c.parts
        .knobs
        .tasks_clock
        .pin(c.done + Duration::from_secs(7 * 24 * 3600));
    let (status, body) = file(&c.world, Auth::Bearer(&c.buyer.token), &c.task).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("INVALID_TASK_STATE")),
        "{body}"
    );
    c.parts
        .knobs
        .tasks_clock
        .pin(c.done + Duration::from_secs(7 * 24 * 3600 - 1));
    let (status, body) = file(&c.world, Auth::Bearer(&c.buyer.token), &c.task).await;
    assert_eq!(status, 201, "{body}");
}

/// Settlement racing each thing a buyer can do after completion: one outcome each, and
/// afterwards no task in a watch it does not belong to.
#[tokio::test]
async fn settlement_racing_feedback_and_disputes_has_one_outcome_each() {
    let (mut world, parts) = world_with(900).await;
    let buyer = world.owner(100_000).await;
    let seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, PRICE, 4).await;
    let mut all = Vec::new();
    let mut paid_total = 0;
    let mut frozen_total = 0;
    for round in 0..2 {
        for race in ["up", "down", "dispute"] {
            let (task, done) = completed(&world, Auth::Bearer(&buyer.token), &key).await;
            // Skewed clocks: the buyer's request sees the refund window open, settlement
            // sees it closed.
            parts.knobs.tasks_clock.pin(done + Duration::from_secs(300));
            parts
                .knobs
                .settlement_clock
                .pin(done + REFUND_WINDOW + Duration::from_secs(1));
            let id: TaskId = task.parse().unwrap();
            let buyer_side = async {
                if race == "dispute" {
                    file(&world, Auth::Bearer(&buyer.token), &task).await
                } else {
                    world
                        .call(
                            Method::POST,
                            &format!("/tasks/{task}/feedback"),
                            Auth::Bearer(&buyer.token),
                            Some(json!({"feedback": race})),
                        )
                        .await
                }
            };
            let (paid, (status, answer)) = tokio::join!(
                settle(
                    &parts.settlement.ctx,
                    &id,
                    parts.knobs.settlement_clock.as_ref(),
                    REFUND_WINDOW
                ),
                buyer_side,
            );
            let paid = paid.unwrap() == Settled::Paid;
            let end = hold(&world, &task).await.status;
            match race {
                "up" => {
                    assert_eq!(status, 200, "{answer}");
                    assert!(paid, "round {round}: a thumbs-up never stops payment");
                    assert_eq!(end, HoldStatus::Released);
                    paid_total += EARNING;
                }
                "down" => {
                    let refunded = answer["data"]["refunded"] == true;
                    assert!(
                        paid ^ refunded,
                        "round {round}: paid {paid}, refunded {refunded}"
                    );
                    assert_eq!(
                        end,
                        if paid {
                            HoldStatus::Released
                        } else {
                            HoldStatus::Reversed
                        }
                    );
                    if paid {
                        paid_total += EARNING;
                    }
                }
                _ => {
                    // Filed either way: before the payment (settlement then finds the
                    // earning frozen) or after it (the earning comes back out of the
                    // wallet); never paid and left unfrozen.
                    assert_eq!(status, 201, "{answer}");
                    assert_eq!(end, HoldStatus::Frozen, "round {round}, paid first: {paid}");
                    frozen_total += EARNING;
                }
            }
            let task_now = world.task(&task, Auth::Bearer(&buyer.token)).await;
            assert_eq!(task_now["settledAt"].is_string(), paid, "{task_now}");
            assert_watch_right(&world, &task).await;
            all.push(task);
        }
    }
    let w = wallet(&world, &key).await;
    assert_eq!(
        wallet_parts(&w),
        (paid_total, 0, frozen_total, 0, false),
        "{w}"
    );
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    world.assert_books_balance(&refs).await;
}

#[tokio::test]
async fn a_late_thumbs_down_keeps_the_earning_in_settlement() {
    let c = case().await;
    c.parts
        .knobs
        .tasks_clock
        .pin(c.done + REFUND_WINDOW + Duration::from_secs(1));
    let (status, body) = c
        .world
        .call(
            Method::POST,
            &format!("/tasks/{}/feedback", c.task),
            Auth::Bearer(&c.buyer.token),
            Some(json!({"feedback": "down"})),
        )
        .await;
    assert_eq!(
        (status, body["data"]["refunded"].clone()),
        (200, json!(false))
    );
    assert_watch_right(&c.world, &c.task).await;
    // Its settlement message was lost: the sweeper still pays.
    c.parts.knobs.settlement_clock.pin(
        c.done
            + REFUND_WINDOW
            + sweeper::Deadlines::default().settlement_grace
            + Duration::from_secs(60),
    );
    let report = sweeper::sweep(&c.parts.sweeper).await.unwrap();
    assert_eq!(report.settled, 1, "{report:?}");
    assert_eq!(wallet(&c.world, &c.key).await["available"], EARNING);
    assert_watch_right(&c.world, &c.task).await;
    c.world.assert_books_balance(&[&c.task]).await;
}

#[tokio::test]
async fn the_sweeper_pages_past_stuck_watch_entries_and_settles_the_rest() {
    let c = case().await;
    let (db, table) = (&c.world.clients.dynamodb, c.world.table());
    // 30 entries older than the real task that settlement can do nothing with (no
    // hold), and two that do not even read as tasks.
    let real = task_store::get(db, table, &c.task.parse().unwrap())
        .await
        .unwrap();
    for i in 0..30 {
        let mut stuck = real.clone();
        stuck.task.id = TaskId::new();
        let item = Stored::new(Key::task(&stuck.task.id), &stuck)
            .gsi3(
                watch_partition(Watch::Settlement),
                watch_sort(1_000 + i, &stuck.task.id.to_string()),
            )
            .to_item()
            .unwrap();
        db.put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }
    for i in 0..2 {
        db.put_item()
            .table_name(table)
            .item("PK", AttributeValue::S(format!("JUNK#{i}")))
            .item("SK", AttributeValue::S("JUNK".into()))
            .item(
                "GSI3PK",
                AttributeValue::S(watch_partition(Watch::Settlement)),
            )
            .item("GSI3SK", AttributeValue::S(watch_sort(500 + i, "junk")))
            .send()
            .await
            .unwrap();
    }
    c.parts.knobs.settlement_clock.pin(
        c.done
            + REFUND_WINDOW
            + sweeper::Deadlines::default().settlement_grace
            + Duration::from_secs(60),
    );
    let report = sweeper::sweep(&c.parts.sweeper).await.unwrap();
    assert_eq!(report.settled, 1, "{report:?}");
    assert_eq!(wallet(&c.world, &c.key).await["available"], EARNING);
    let again = sweeper::sweep(&c.parts.sweeper).await.unwrap();
    assert_eq!(again.settled, 0, "{again:?}");
    c.world.assert_books_balance(&[&c.task]).await;
}
