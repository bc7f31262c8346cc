//! The vault through its HTTP handler (and auth/agents for setup), over the emulator.

use aicity_http::{Context, Limits};
use aicity_testkit::http::{Answer, Call, send};
use serde_json::{Value, json};
use vault::Vault;

struct World {
    vault: Vault,
}

impl World {
    async fn new() -> Self {
        let ctx = aicity_testkit::context(Limits::default()).await;
        let payments = Box::new(aicity_vault::payments::LocalProvider::new(
            ctx.db().clone(),
            ctx.table.clone(),
        ));
        Self {
            vault: Vault { ctx, payments },
        }
    }

    fn ctx(&self) -> &Context {
        &self.vault.ctx
    }

    async fn vault(&self, call: Call) -> Answer {
        send(&|request| vault::handle(&self.vault, request), &call).await
    }

    async fn agents(&self, call: Call) -> Answer {
        send(&|request| agents::handle(self.ctx(), request), &call).await
    }

    async fn owner(&self) -> String {
        let email = format!(
            "{}@example.com",
            ulid::Ulid::generate().to_string().to_lowercase()
        );
        let auth =
            |call| async move { send(&|request| auth::handle(self.ctx(), request), &call).await };
        auth(
            Call::at("POST", "/api/v1/auth/sign-up")
                .json(json!({"name": "O", "email": email, "password": "long-password"})),
        )
        .await;
        let answer = auth(
            Call::at("POST", "/api/v1/auth/sign-in")
                .json(json!({"email": email, "password": "long-password"})),
        )
        .await;
        answer.data()["token"].as_str().unwrap().to_owned()
    }

    async fn agent(&self, token: &str) -> (String, String) {
        let answer = self
            .agents(
                Call::at("POST", "/api/v1/agents")
                    .bearer(token)
                    .json(json!({
                        "displayName": "W", "framework": "custom", "description": "d"
                    })),
            )
            .await;
        (
            answer.data()["agent"]["id"].as_str().unwrap().to_owned(),
            answer.data()["apiKey"].as_str().unwrap().to_owned(),
        )
    }

    async fn pool(&self, token: &str) -> Value {
        self.vault(Call::at("GET", "/api/v1/vault/pool").bearer(token))
            .await
            .data()
            .clone()
    }

    async fn top_up(&self, token: &str, amount: i64) -> Answer {
        self.vault(
            Call::at("POST", "/api/v1/vault/pool/top-up")
                .bearer(token)
                .json(json!({"amount": amount})),
        )
        .await
    }
}

fn allocate(agent: &str, amount: Value) -> Call {
    Call::new(
        "POST",
        "/api/v1/vault/wallets/{agentId}/allocate",
        &format!("/api/v1/vault/wallets/{agent}/allocate"),
    )
    .json(json!({"amount": amount}))
}

#[tokio::test]
async fn the_pool_exists_on_first_read_and_tops_up() {
    let world = World::new().await;
    let token = world.owner().await;
    let pool = world.pool(&token).await;
    assert!(pool["id"].as_str().unwrap().starts_with("pool_"));
    assert_eq!(
        (
            pool["balance"].clone(),
            pool["held"].clone(),
            pool["available"].clone()
        ),
        (json!(0), json!(0), json!(0))
    );
    assert_eq!(
        pool["autoTopUp"],
        json!({"enabled": false, "threshold": 0, "reloadAmount": 0})
    );

    let answer = world.top_up(&token, 5_000).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(
        (
            answer.data()["newBalance"].clone(),
            answer.data()["amountCharged"].clone()
        ),
        (json!(5_000), json!(5_000))
    );
    assert_eq!(world.pool(&token).await["available"], 5_000);

    let unauthenticated = world.vault(Call::at("GET", "/api/v1/vault/pool")).await;
    assert_eq!(unauthenticated.status, 401);
}

#[tokio::test]
async fn a_replayed_top_up_charges_once_and_answers_the_same() {
    let world = World::new().await;
    let token = world.owner().await;
    let call = Call::at("POST", "/api/v1/vault/pool/top-up")
        .bearer(&token)
        .header("Idempotency-Key", "top-up-1")
        .json(json!({"amount": 2_500}));
    let first = world.vault(call.clone()).await;
    let again = world.vault(call).await;
    assert_eq!(first.status, 200);
    assert_eq!((again.status, &again.body), (200, &first.body));
    assert_eq!(again.headers["idempotency-replayed"], "true");
    assert!(!first.headers.contains_key("idempotency-replayed"));
    assert_eq!(world.pool(&token).await["balance"], 2_500, "charged once");

    let other_amount = world
        .vault(
            Call::at("POST", "/api/v1/vault/pool/top-up")
                .bearer(&token)
                .header("Idempotency-Key", "top-up-1")
                .json(json!({"amount": 3_000})),
        )
        .await;
    assert_eq!(
        (other_amount.status, other_amount.code()),
        (409, "IDEMPOTENCY_KEY_REUSED")
    );
    assert_eq!(world.pool(&token).await["balance"], 2_500);

    let transactions = world
        .vault(Call::at("GET", "/api/v1/vault/transactions").bearer(&token))
        .await;
    assert_eq!(transactions.body["pagination"]["total"], 1);
}

#[tokio::test]
async fn a_declined_card_is_a_502_and_credits_nothing() {
    let world = World::new().await;
    let token = world.owner().await;
    let answer = world
        .vault(
            Call::at("POST", "/api/v1/vault/pool/top-up")
                .bearer(&token)
                .json(json!({"amount": 1_000, "paymentMethod": "tok_chargeDeclined"})),
        )
        .await;
    assert_eq!((answer.status, answer.code()), (502, "PAYMENT_FAILED"));
    assert_eq!(answer.body["error"]["details"]["reason"], "card_declined");
    assert_eq!(world.pool(&token).await["balance"], 0);
}

#[tokio::test]
async fn bad_amounts_are_refused_and_write_nothing() {
    let world = World::new().await;
    let token = world.owner().await;
    for amount in [
        json!(-500),
        json!(0),
        json!(499),
        json!(1_000_001),
        json!(10.5),
        json!("500"),
        Value::Null,
    ] {
        let answer = world
            .vault(
                Call::at("POST", "/api/v1/vault/pool/top-up")
                    .bearer(&token)
                    .json(json!({"amount": amount})),
            )
            .await;
        assert_eq!(
            (answer.status, answer.code()),
            (400, "VALIDATION_ERROR"),
            "{amount}"
        );
        assert_eq!(answer.fields(), ["amount"], "{amount}");
    }
    let (agent, _) = world.agent(&token).await;
    for amount in [json!(0), json!(-1), json!(0.5)] {
        let answer = world
            .vault(allocate(&agent, amount.clone()).bearer(&token))
            .await;
        assert_eq!(
            (answer.status, answer.code()),
            (400, "VALIDATION_ERROR"),
            "{amount}"
        );
    }
    assert_eq!(world.pool(&token).await["balance"], 0);
    let transactions = world
        .vault(Call::at("GET", "/api/v1/vault/transactions").bearer(&token))
        .await;
    assert_eq!(transactions.body["pagination"]["total"], 0);
}

#[tokio::test]
async fn allocations_and_transfers_stay_within_one_owner() {
    let world = World::new().await;
    let token = world.owner().await;
    let stranger = world.owner().await;
    let (a, a_key) = world.agent(&token).await;
    let (b, b_key) = world.agent(&token).await;
    let (theirs, _) = world.agent(&stranger).await;
    world.top_up(&token, 10_000).await;

    let too_much = world
        .vault(allocate(&a, json!(20_000)).bearer(&token))
        .await;
    assert_eq!(
        (too_much.status, too_much.code()),
        (400, "POOL_INSUFFICIENT_BALANCE")
    );
    assert_eq!(
        too_much.body["error"]["details"],
        json!({"required": 20_000, "available": 10_000})
    );

    let allocated = world.vault(allocate(&a, json!(3_000)).bearer(&token)).await;
    assert_eq!(allocated.status, 200, "{:?}", allocated.body);
    assert_eq!(allocated.data()["wallet"]["available"], 3_000);
    assert_eq!(allocated.data()["pool"]["available"], 7_000);
    let not_mine = world
        .vault(allocate(&theirs, json!(100)).bearer(&token))
        .await;
    assert_eq!((not_mine.status, not_mine.code()), (403, "NOT_AGENT_OWNER"));

    let transfer = |from: &str, to: &str, amount: i64| {
        Call::at("POST", "/api/v1/vault/transfers")
            .bearer(&token)
            .json(json!({"fromAgentId": from, "toAgentId": to, "amount": amount}))
    };
    let same = world.vault(transfer(&a, &a, 100)).await;
    assert_eq!((same.status, same.code()), (400, "SAME_WALLET_TRANSFER"));
    let outside = world.vault(transfer(&a, &theirs, 100)).await;
    assert_eq!((outside.status, outside.code()), (403, "NOT_AGENT_OWNER"));
    let short = world.vault(transfer(&a, &b, 5_000)).await;
    assert_eq!((short.status, short.code()), (400, "INSUFFICIENT_BALANCE"));
    assert_eq!(
        short.body["error"]["details"],
        json!({"required": 5_000, "available": 3_000})
    );
    let moved = world.vault(transfer(&a, &b, 1_200)).await;
    assert_eq!(moved.status, 200);
    assert_eq!(
        (
            moved.data()["from"]["available"].clone(),
            moved.data()["to"]["available"].clone()
        ),
        (json!(1_800), json!(1_200))
    );

    let wallet = world
        .vault(Call::at("GET", "/api/v1/vault/wallet").api_key(&b_key))
        .await;
    assert_eq!(
        wallet.data(),
        &json!({"agentId": b, "available": 1_200, "pendingEscrow": 0, "lifetimeEarned": 0,
                "frozen": 0, "shortfall": 0, "underReview": false})
    );
    let owner_cannot = world
        .vault(Call::at("GET", "/api/v1/vault/wallet").bearer(&token))
        .await;
    assert_eq!(
        (owner_cannot.status, owner_cannot.code()),
        (401, "MISSING_API_KEY")
    );

    world
        .agents(
            Call::new(
                "POST",
                "/api/v1/agents/{id}/deactivate",
                &format!("/api/v1/agents/{b}/deactivate"),
            )
            .bearer(&token),
        )
        .await;
    let inactive = world.vault(allocate(&b, json!(100)).bearer(&token)).await;
    assert_eq!(
        (inactive.status, inactive.code()),
        (400, "CANNOT_FUND_INACTIVE_AGENT")
    );
    let to_inactive = world.vault(transfer(&a, &b, 100)).await;
    assert_eq!(
        (to_inactive.status, to_inactive.code()),
        (400, "CANNOT_FUND_INACTIVE_AGENT")
    );
    let _ = a_key;
}

#[tokio::test]
async fn transactions_list_newest_first_and_filter_by_type() {
    let world = World::new().await;
    let token = world.owner().await;
    let (agent, _) = world.agent(&token).await;
    world.top_up(&token, 1_000).await;
    world.top_up(&token, 2_000).await;
    world
        .vault(allocate(&agent, json!(300)).bearer(&token))
        .await;

    let all = world
        .vault(Call::at("GET", "/api/v1/vault/transactions").bearer(&token))
        .await;
    let kinds: Vec<&str> = all
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["allocation", "top_up", "top_up"]);
    let amounts: Vec<i64> = all
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, [-300, 2_000, 1_000]);

    let top_ups = world
        .vault(
            Call::at("GET", "/api/v1/vault/transactions")
                .bearer(&token)
                .query("type", "top_up")
                .query("pageSize", "1"),
        )
        .await;
    let pagination = &top_ups.body["pagination"];
    assert_eq!(
        (&pagination["page"], &pagination["pageSize"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(
        (&pagination["total"], &pagination["totalPages"]),
        (&json!(2), &json!(2)),
        "a lower bound before the end: this page and one more"
    );
    assert!(pagination["nextCursor"].is_string(), "{pagination}");
    assert_eq!(top_ups.data()[0]["amount"], 2_000);
    let bad = world
        .vault(
            Call::at("GET", "/api/v1/vault/transactions")
                .bearer(&token)
                .query("type", "gift"),
        )
        .await;
    assert_eq!(bad.fields(), ["type"]);
}

#[tokio::test]
async fn the_auto_top_up_rule_is_validated_and_stored() {
    let world = World::new().await;
    let token = world.owner().await;
    let put = |body: Value| {
        Call::at("PUT", "/api/v1/vault/pool/auto-top-up")
            .bearer(&token)
            .json(body)
    };
    let bad = world
        .vault(put(
            json!({"enabled": true, "threshold": 1_000, "reloadAmount": 10}),
        ))
        .await;
    assert_eq!(bad.fields(), ["reloadAmount"]);
    let good = world
        .vault(put(
            json!({"enabled": true, "threshold": 1_000, "reloadAmount": 5_000}),
        ))
        .await;
    assert_eq!(good.status, 200);
    assert_eq!(
        good.data()["autoTopUp"],
        json!({"enabled": true, "threshold": 1_000, "reloadAmount": 5_000})
    );
    assert_eq!(world.pool(&token).await["autoTopUp"]["reloadAmount"], 5_000);
}

/// Stripe selected without its key: the function starts (no start-up failure) and a
/// top-up answers 503 `STRIPE_NOT_CONFIGURED`, while the rest of the vault works.
#[tokio::test]
async fn stripe_without_its_key_answers_503_and_the_rest_works() {
    let mut world = World::new().await;
    world.vault.payments = aicity_vault::payments::select(
        Some("stripe"),
        None,
        None,
        true,
        world.ctx().db().clone(),
        world.ctx().table.clone(),
    )
    .expect("starts without the key");
    let token = world.owner().await;
    let answer = world.top_up(&token, 1_000).await;
    assert_eq!(
        (answer.status, answer.code()),
        (503, "STRIPE_NOT_CONFIGURED"),
        "{:?}",
        answer.body
    );
    assert_eq!(world.pool(&token).await["balance"], 0);
}

/// No default provider: a deployment that chose none, or chose `local` outside an
/// emulator without `ALLOW_LOCAL_PAYMENTS=true`, starts, and a top-up answers 503
/// `PAYMENTS_NOT_CONFIGURED` (never a free credit) while the rest of the vault works.
#[tokio::test]
async fn payments_without_a_chosen_provider_answer_503_and_the_rest_works() {
    let mut world = World::new().await;
    let settings: [&[(&str, &str)]; 4] = [
        &[],
        &[("PAYMENT_PROVIDER", "")],
        &[("PAYMENT_PROVIDER", "local")],
        &[
            ("PAYMENT_PROVIDER", "local"),
            ("ALLOW_LOCAL_PAYMENTS", "no"),
        ],
    ];
    for vars in settings {
        world.vault.payments = aicity_vault::payments::from_settings(
            |name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            },
            world.ctx().db().clone(),
            world.ctx().table.clone(),
        )
        .await
        .expect("starts");
        let token = world.owner().await;
        let answer = world.top_up(&token, 1_000).await;
        assert_eq!(
            (answer.status, answer.code()),
            (503, "PAYMENTS_NOT_CONFIGURED"),
            "{vars:?}: {:?}",
            answer.body
        );
        assert_eq!(world.pool(&token).await["balance"], 0, "{vars:?}");
        let transactions = world
            .vault(Call::at("GET", "/api/v1/vault/transactions").bearer(&token))
            .await;
        assert_eq!(transactions.status, 200, "the rest works");
    }
    // Against an emulator, or explicitly allowed, `local` charges.
    for vars in [
        [
            ("PAYMENT_PROVIDER", "local"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
        ],
        [
            ("PAYMENT_PROVIDER", "local"),
            ("ALLOW_LOCAL_PAYMENTS", "true"),
        ],
    ] {
        world.vault.payments = aicity_vault::payments::from_settings(
            |name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            },
            world.ctx().db().clone(),
            world.ctx().table.clone(),
        )
        .await
        .unwrap();
        let token = world.owner().await;
        let answer = world.top_up(&token, 1_000).await;
        assert_eq!(answer.status, 200, "{vars:?}: {:?}", answer.body);
        assert_eq!(world.pool(&token).await["balance"], 1_000);
    }
}
