//! Rate limits per principal, failed authentications per IP, the batched limiter's
//! writes, and agents of a suspended owner, through the HTTP handlers over the emulator.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aicity_http::{Context, Limits};
use aicity_testkit::http::{Answer, Call, send};
use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};

async fn agents_call(ctx: &Context, call: Call) -> Answer {
    send(&|request| agents::handle(ctx, request), &call).await
}

async fn auth_call(ctx: &Context, call: Call) -> Answer {
    send(&|request| auth::handle(ctx, request), &call).await
}

/// Windows long enough that a test never crosses into the next one (windows are
/// aligned to the epoch: an hour's boundary falls inside a test once in a blue moon).
const HOUR: Duration = Duration::from_secs(3600);

/// Signs up a new owner; returns (email, owner id).
async fn sign_up(ctx: &Context) -> (String, String) {
    let email = format!(
        "{}@example.com",
        ulid::Ulid::generate().to_string().to_lowercase()
    );
    let up = Call::at("POST", "/api/v1/auth/sign-up")
        .json(json!({"name": "Owner", "email": email, "password": "long-password"}));
    let answer = auth_call(ctx, up).await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    let id = answer.data()["user"]["id"].as_str().unwrap().to_owned();
    (email, id)
}

async fn sign_in(ctx: &Context, email: &str) -> String {
    let answer = auth_call(
        ctx,
        Call::at("POST", "/api/v1/auth/sign-in")
            .json(json!({"email": email, "password": "long-password"})),
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.data()["token"].as_str().unwrap().to_owned()
}

fn registration(name: &str) -> Value {
    json!({
        "displayName": name,
        "framework": "crewai",
        "description": format!("{name} reviews code"),
        "capabilities": [{"category": "code_review", "tags": ["rust"]}],
        "pricing": {"code_review": 1000},
    })
}

/// Registers an agent; returns (agent id, api key).
async fn register(ctx: &Context, token: &str) -> (String, String) {
    let answer = agents_call(
        ctx,
        Call::at("POST", "/api/v1/agents")
            .bearer(token)
            .json(registration("Busy")),
    )
    .await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    (
        answer.data()["agent"]["id"].as_str().unwrap().to_owned(),
        answer.data()["apiKey"].as_str().unwrap().to_owned(),
    )
}

fn me(key: &str) -> Call {
    Call::at("GET", "/api/v1/agents/me").api_key(key)
}

fn assert_limited(answer: &Answer, what: &str) {
    assert_eq!(
        (answer.status, answer.code()),
        (429, "RATE_LIMITED"),
        "{what}: {:?}",
        answer.body
    );
    let retry_after: u64 = answer.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1, "{what}");
}

#[tokio::test]
async fn two_sessions_of_one_owner_share_one_bucket() {
    let ctx = aicity_testkit::context(Limits {
        per_caller: 4,
        window: HOUR,
        ..Limits::default()
    })
    .await;
    let (email, _) = sign_up(&ctx).await;
    let first = sign_in(&ctx, &email).await;
    let second = sign_in(&ctx, &email).await;
    assert_ne!(first, second);
    let list = |token: &str| Call::at("GET", "/api/v1/agents").bearer(token);
    for _ in 0..4 {
        assert_eq!(agents_call(&ctx, list(&first)).await.status, 200);
    }
    assert_limited(&agents_call(&ctx, list(&first)).await, "the first session");
    assert_limited(
        &agents_call(&ctx, list(&second)).await,
        "a second session of the same owner",
    );
    let third = sign_in(&ctx, &email).await;
    assert_limited(
        &agents_call(&ctx, list(&third)).await,
        "a session signed in after the limit",
    );

    // Another owner has its own bucket.
    let (other, _) = sign_up(&ctx).await;
    let other = sign_in(&ctx, &other).await;
    assert_eq!(agents_call(&ctx, list(&other)).await.status, 200);
}

#[tokio::test]
async fn a_rotated_agent_key_keeps_the_agents_bucket() {
    let ctx = aicity_testkit::context(Limits {
        per_caller: 3,
        window: HOUR,
        ..Limits::default()
    })
    .await;
    let (email, _) = sign_up(&ctx).await;
    let token = sign_in(&ctx, &email).await;
    let (id, key) = register(&ctx, &token).await;
    for _ in 0..3 {
        assert_eq!(agents_call(&ctx, me(&key)).await.status, 200);
    }
    assert_limited(&agents_call(&ctx, me(&key)).await, "the old key");
    let rotated = agents_call(
        &ctx,
        Call::new(
            "POST",
            "/api/v1/agents/{id}/rotate-key",
            &format!("/api/v1/agents/{id}/rotate-key"),
        )
        .bearer(&token),
    )
    .await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let new_key = rotated.data()["apiKey"].as_str().unwrap();
    assert_limited(&agents_call(&ctx, me(new_key)).await, "the rotated key");
    // The owner's own bucket is apart from its agent's (register + rotate used 2).
    assert_eq!(
        agents_call(&ctx, Call::at("GET", "/api/v1/agents").bearer(&token))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn failed_authentications_from_one_ip_end_in_429_before_any_lookup() {
    let ctx = aicity_testkit::context(Limits {
        failed_auth_per_ip: 3,
        failed_auth_window: HOUR,
        ..Limits::default()
    })
    .await;
    let (email, _) = sign_up(&ctx).await;
    let token = sign_in(&ctx, &email).await;
    let (_, key) = register(&ctx, &token).await;
    let attacker = "198.51.100.66";

    // Missing credentials are not counted: they cost no lookup.
    for _ in 0..5 {
        let missing =
            agents_call(&ctx, Call::at("GET", "/api/v1/agents/me").from_ip(attacker)).await;
        assert_eq!(missing.status, 401);
    }
    let wrong_key = || me("ac_live_not-a-key").from_ip(attacker);
    assert_eq!(
        agents_call(&ctx, wrong_key()).await.code(),
        "INVALID_API_KEY"
    );
    let unknown_session = Call::at("GET", "/api/v1/agents")
        .bearer("ses_unknown")
        .from_ip(attacker);
    assert_eq!(
        agents_call(&ctx, unknown_session).await.code(),
        "UNAUTHORIZED"
    );
    assert_eq!(
        agents_call(&ctx, wrong_key()).await.code(),
        "INVALID_API_KEY"
    );
    // The fourth failure is one too many.
    assert_limited(&agents_call(&ctx, wrong_key()).await, "the fourth failure");

    // From then on the IP is refused before its credentials are looked up, valid or not.
    assert_limited(
        &agents_call(&ctx, me(&key).from_ip(attacker)).await,
        "a valid key from the failing IP",
    );
    assert_limited(
        &agents_call(
            &ctx,
            Call::at("GET", "/api/v1/agents")
                .bearer(&token)
                .from_ip(attacker),
        )
        .await,
        "a valid session from the failing IP",
    );
    // Other IPs are not affected.
    assert_eq!(
        agents_call(&ctx, me(&key).from_ip("198.51.100.67"))
            .await
            .status,
        200
    );
    assert_eq!(
        agents_call(&ctx, me("ac_live_not-a-key").from_ip("198.51.100.67"))
            .await
            .code(),
        "INVALID_API_KEY"
    );
}

async fn suspend(ctx: &Context, owner_id: &str) {
    ctx.db()
        .update_item()
        .table_name(&ctx.table)
        .set_key(Some(
            aicity_store::Key::owner(&owner_id.parse().unwrap()).to_map(),
        ))
        .update_expression("SET #status = :suspended")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":suspended", AttributeValue::S("suspended".into()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn an_agent_of_a_suspended_owner_answers_owner_suspended() {
    let ctx = aicity_testkit::context(Limits {
        owner_status_cache: Duration::ZERO,
        ..Limits::default()
    })
    .await;
    let (email, owner_id) = sign_up(&ctx).await;
    let token = sign_in(&ctx, &email).await;
    let (_, key) = register(&ctx, &token).await;
    assert_eq!(agents_call(&ctx, me(&key)).await.status, 200);

    suspend(&ctx, &owner_id).await;
    for call in [
        me(&key),
        Call::at("POST", "/api/v1/agents/me/heartbeat").api_key(&key),
        Call::at("GET", "/api/v1/agents/me/profitability").api_key(&key),
    ] {
        let answer = agents_call(&ctx, call).await;
        assert_eq!(
            (answer.status, answer.code()),
            (403, "OWNER_SUSPENDED"),
            "{:?}",
            answer.body
        );
    }
}

#[tokio::test]
async fn an_owners_suspension_reaches_its_agents_within_the_status_cache() {
    let ctx = aicity_testkit::context(Limits {
        owner_status_cache: Duration::from_secs(1),
        ..Limits::default()
    })
    .await;
    let (email, owner_id) = sign_up(&ctx).await;
    let token = sign_in(&ctx, &email).await;
    let (_, key) = register(&ctx, &token).await;
    assert_eq!(agents_call(&ctx, me(&key)).await.status, 200);
    suspend(&ctx, &owner_id).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let answer = agents_call(&ctx, me(&key)).await;
    assert_eq!((answer.status, answer.code()), (403, "OWNER_SUSPENDED"));
    // The owner itself is refused at once.
    let answer = agents_call(&ctx, Call::at("GET", "/api/v1/agents").bearer(&token)).await;
    assert_eq!((answer.status, answer.code()), (403, "OWNER_SUSPENDED"));
}

/// Counts every UpdateItem the client sends (the limiter's only write), and every call.
#[derive(Debug, Clone, Default)]
struct Writes(Arc<AtomicUsize>, Arc<AtomicUsize>);

impl Intercept for Writes {
    fn name(&self) -> &'static str {
        "Writes"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context.input().downcast_ref::<UpdateItemInput>().is_some() {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        self.1.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

impl Writes {
    fn count(&self) -> (usize, usize) {
        (self.0.load(Ordering::SeqCst), self.1.load(Ordering::SeqCst))
    }
}

/// (UpdateItem calls, all calls) for `requests` agent requests with `batch`.
async fn limiter_writes(batch: u32, requests: usize) -> (usize, usize) {
    let base = aicity_testkit::context(Limits {
        per_caller: 1000,
        window: HOUR,
        rate_limit_batch: batch,
        rate_limit_flush: HOUR,
        ..Limits::default()
    })
    .await;
    let writes = Writes::default();
    let counting = aws_sdk_dynamodb::Client::from_conf(
        base.db()
            .config()
            .to_builder()
            .interceptor(writes.clone())
            .build(),
    );
    let ctx = Context {
        clients: aicity_store::AwsClients {
            dynamodb: counting,
            ..base.clients.clone()
        },
        ..base
    };
    let (email, _) = sign_up(&ctx).await;
    let token = sign_in(&ctx, &email).await;
    let (_, key) = register(&ctx, &token).await;
    let before = writes.count();
    for _ in 0..requests {
        let answer = agents_call(&ctx, me(&key)).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    let after = writes.count();
    (after.0 - before.0, after.1 - before.1)
}

#[tokio::test]
async fn the_batched_limiter_writes_once_per_batch_instead_of_once_per_request() {
    let (strict, strict_calls) = limiter_writes(1, 100).await;
    let (batched, batched_calls) = limiter_writes(Limits::default().rate_limit_batch, 100).await;
    eprintln!(
        "DynamoDB per 100 authenticated requests (GET /agents/me): {strict} writes of \
         {strict_calls} calls strict, {batched} writes of {batched_calls} calls batched"
    );
    assert_eq!(
        strict, 100,
        "one write per request when every hit is written"
    );
    assert!(batched <= 10, "{batched} writes for 100 requests");
}
