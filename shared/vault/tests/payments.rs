//! Both payment providers: the local one against the emulator, Stripe's against a
//! local fake of the endpoint it calls.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use aicity_domain::ids::OwnerId;
use aicity_domain::money::Cents;
use aicity_vault::payments::{LocalProvider, StripeProvider};
use aicity_vault::{ChargeRequest, DeclineReason, PaymentError, PaymentProvider};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

fn request(method: &str, key: &str) -> ChargeRequest {
    request_of(Cents(2_500), method, key)
}

fn request_of(amount: Cents, method: &str, key: &str) -> ChargeRequest {
    ChargeRequest {
        owner_id: OwnerId::new(),
        amount,
        payment_method: method.to_owned(),
        idempotency_key: key.to_owned(),
    }
}

#[tokio::test]
async fn the_local_provider_records_once_per_key_and_declines_test_tokens() {
    let clients = aicity_testkit::clients().await;
    let table = aicity_testkit::fresh_table(&clients).await;
    let provider = LocalProvider::new(clients.dynamodb.clone(), table);
    let first = provider
        .charge(&request("pm_card_visa", "k1"))
        .await
        .unwrap();
    let again = provider
        .charge(&request("pm_card_visa", "k1"))
        .await
        .unwrap();
    let other = provider
        .charge(&request("pm_card_visa", "k2"))
        .await
        .unwrap();
    assert_eq!(first, again, "same key, same charge");
    assert_ne!(first.id, other.id);
    assert_eq!(first.amount, Cents(2_500));
    let declined = provider.charge(&request("tok_chargeDeclined", "k3")).await;
    assert_eq!(
        declined,
        Err(PaymentError::Declined(DeclineReason::CardDeclined))
    );
}

const KEY: &str = "sk_test_123";

/// What a provider's message might echo: a key and an internal host.
const LEAKED_SECRET: &str = "sk_live_51SECRETsecretSECRET";
const LEAKY_MESSAGE: &str =
    "Your card has expired. (request used sk_live_51SECRETsecretSECRET via 10.1.2.3)";

/// One PaymentIntent of the fake.
#[derive(Clone)]
struct FakeIntent {
    amount: i64,
    currency: String,
    status: String,
    payment_method: String,
}

impl FakeIntent {
    fn json(&self, id: &str) -> Value {
        json!({
            "id": id, "object": "payment_intent", "amount": self.amount,
            "amount_received": if self.status == "succeeded" { self.amount } else { 0 },
            "currency": self.currency, "status": self.status,
            "payment_method": self.payment_method,
        })
    }
}

/// The saved answer to an idempotency key, and the parameters it was first used with.
struct Saved {
    params: Vec<(String, String)>,
    status: StatusCode,
    body: String,
}

#[derive(Default)]
struct StripeState {
    intents: HashMap<String, FakeIntent>,
    saved: HashMap<String, Saved>,
    in_flight: HashSet<String>,
    /// Requests that reached execution (made a PaymentIntent, or failed trying).
    executed: u32,
    seen: Vec<(HeaderMap, String)>,
}

/// A strict fake of Stripe's PaymentIntents API, as Stripe documents it:
///
/// - every call needs `Authorization: Bearer sk_test_123`, or 401 in Stripe's shape;
/// - `Idempotency-Key`: the first answer that reached execution is saved (successes,
///   declines and 500s alike) and replayed for the same key (`Idempotent-Replayed`);
///   the same key with other parameters is 400 `idempotency_error`; the same key while
///   its first request is still running is 409 `idempotency_error`; a request that
///   fails validation (`amount_too_small`) is not saved;
/// - the PaymentIntent carries the requested amount and currency;
/// - the outcome follows Stripe's test payment methods: `pm_card_visa` succeeds,
///   `pm_card_chargeDeclined` / `pm_card_chargeDeclinedInsufficientFunds` are 402
///   `card_error` (the intent left in `requires_payment_method`),
///   `pm_card_authenticationRequired` is `requires_action`; and, fake-only,
///   `pm_card_processing` is `processing` then `succeeded` when asked about,
///   `pm_card_processingThenFails` is `processing` then `requires_payment_method`,
///   `pm_card_slow` succeeds after 300 ms, `pm_boom` is a 500 `api_error`.
#[derive(Default, Clone)]
struct FakeStripe(Arc<Mutex<StripeState>>);

fn stripe_error(status: StatusCode, error: Value) -> Response {
    (status, axum::Json(json!({ "error": error }))).into_response()
}

fn unauthorized(headers: &HeaderMap) -> Option<Response> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    let message = match auth.and_then(|a| a.strip_prefix("Bearer ")).map(str::trim) {
        Some(KEY) => return None,
        None | Some("") => "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').".to_owned(),
        Some(other) => format!(
            "Invalid API Key provided: {}***",
            other.chars().take(8).collect::<String>()
        ),
    };
    Some(stripe_error(
        StatusCode::UNAUTHORIZED,
        json!({"type": "invalid_request_error", "message": message}),
    ))
}

fn saved_response(saved: &Saved, replayed: bool) -> Response {
    let mut response = (saved.status, saved.body.clone()).into_response();
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", "true".parse().unwrap());
    }
    response
}

async fn stripe_create(
    State(fake): State<FakeStripe>,
    headers: HeaderMap,
    body: String,
) -> Response {
    fake.0
        .lock()
        .unwrap()
        .seen
        .push((headers.clone(), body.clone()));
    if let Some(denied) = unauthorized(&headers) {
        return denied;
    }
    let mut params: Vec<(String, String)> = match serde_urlencoded_pairs(&body) {
        Some(params) => params,
        None => {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                json!({"type": "invalid_request_error", "message": "Invalid request body"}),
            );
        }
    };
    params.sort();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(key) = &key {
        let state = fake.0.lock().unwrap();
        if state.in_flight.contains(key) {
            return stripe_error(
                StatusCode::CONFLICT,
                json!({"type": "idempotency_error", "message": "There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): ".to_owned() + key + ". Please try again later."}),
            );
        }
        if let Some(saved) = state.saved.get(key) {
            if saved.params != params {
                return stripe_error(
                    StatusCode::BAD_REQUEST,
                    json!({"type": "idempotency_error", "message": format!("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request.")}),
                );
            }
            return saved_response(saved, true);
        }
    }
    // Validation: not saved under the key.
    let amount = param("amount").and_then(|a| a.parse::<i64>().ok());
    let Some(amount) = amount else {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            json!({"type": "invalid_request_error", "code": "parameter_missing", "param": "amount", "message": "Missing required param: amount."}),
        );
    };
    if amount < 50 {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            json!({"type": "invalid_request_error", "code": "amount_too_small", "param": "amount", "message": "Amount must be at least $0.50 usd"}),
        );
    }
    let (Some(currency), Some(method)) = (param("currency"), param("payment_method")) else {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            json!({"type": "invalid_request_error", "code": "parameter_missing", "message": "Missing required param: currency or payment_method."}),
        );
    };
    if param("confirm").as_deref() != Some("true") {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            json!({"type": "invalid_request_error", "message": "this fake only confirms on creation"}),
        );
    }
    // Execution.
    if let Some(key) = &key {
        fake.0.lock().unwrap().in_flight.insert(key.clone());
    }
    if method == "pm_card_slow" {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let id = format!("pi_{}", ulid::Ulid::generate());
    let status = match method.as_str() {
        "pm_card_chargeDeclined"
        | "pm_card_chargeDeclinedInsufficientFunds"
        | "pm_card_leaky"
        | "pm_boom" => "requires_payment_method",
        "pm_card_authenticationRequired" => "requires_action",
        "pm_card_processing" | "pm_card_processingThenFails" => "processing",
        _ => "succeeded",
    };
    let intent = FakeIntent {
        amount,
        currency,
        status: status.to_owned(),
        payment_method: method.clone(),
    };
    let (code, answer) = match method.as_str() {
        "pm_card_chargeDeclined" | "pm_card_chargeDeclinedInsufficientFunds" => {
            let (decline, message) = if method == "pm_card_chargeDeclined" {
                ("generic_decline", "Your card was declined.")
            } else {
                ("insufficient_funds", "Your card has insufficient funds.")
            };
            (
                StatusCode::PAYMENT_REQUIRED,
                json!({"error": {"type": "card_error", "code": "card_declined", "decline_code": decline,
                                 "message": message, "payment_intent": intent.json(&id)}}),
            )
        }
        // Fake-only: a decline whose message echoes what it should not.
        "pm_card_leaky" => (
            StatusCode::PAYMENT_REQUIRED,
            json!({"error": {"type": "card_error", "code": "expired_card",
                             "message": LEAKY_MESSAGE, "payment_intent": intent.json(&id)}}),
        ),
        "pm_boom" => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": {"type": "api_error", "message": "An unknown error occurred"}}),
        ),
        _ => (StatusCode::OK, intent.json(&id)),
    };
    let mut state = fake.0.lock().unwrap();
    state.executed += 1;
    if method != "pm_boom" {
        state.intents.insert(id, intent);
    }
    let saved = Saved {
        params,
        status: code,
        body: answer.to_string(),
    };
    let response = saved_response(&saved, false);
    if let Some(key) = key {
        state.in_flight.remove(&key);
        state.saved.insert(key, saved);
    }
    response
}

/// `a=1&b%5Bc%5D=2` as decoded pairs.
fn serde_urlencoded_pairs(body: &str) -> Option<Vec<(String, String)>> {
    let decode = |s: &str| -> Option<String> {
        let s = s.replace('+', " ");
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).ok()
    };
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

async fn stripe_get(
    State(fake): State<FakeStripe>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(denied) = unauthorized(&headers) {
        return denied;
    }
    let mut state = fake.0.lock().unwrap();
    let Some(intent) = state.intents.get_mut(&id) else {
        return stripe_error(
            StatusCode::NOT_FOUND,
            json!({"type": "invalid_request_error", "code": "resource_missing", "param": "intent",
                   "message": format!("No such payment_intent: '{id}'")}),
        );
    };
    // A processing payment settles by the time anyone asks again.
    if intent.status == "processing" {
        intent.status = if intent.payment_method == "pm_card_processingThenFails" {
            "requires_payment_method".into()
        } else {
            "succeeded".into()
        };
    }
    axum::Json(intent.json(&id)).into_response()
}

async fn fake_stripe() -> (FakeStripe, String) {
    let fake = FakeStripe::default();
    let app = axum::Router::new()
        .route("/v1/payment_intents", post(stripe_create))
        .route("/v1/payment_intents/{id}", get(stripe_get))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, base)
}

impl FakeStripe {
    fn executed(&self) -> u32 {
        self.0.lock().unwrap().executed
    }
}

#[tokio::test]
async fn the_stripe_provider_creates_a_confirmed_payment_intent() {
    let (fake, base) = fake_stripe().await;
    let provider = StripeProvider::new(&base, KEY);

    // An amount no fixed answer would have: the charge is what Stripe echoed.
    let charge = provider
        .charge(&request_of(Cents(2_537), "pm_card_visa", "topup:k1"))
        .await
        .unwrap();
    assert!(charge.id.starts_with("pi_"), "{charge:?}");
    assert_eq!(charge.amount, Cents(2_537));
    let (headers, body) = fake.0.lock().unwrap().seen[0].clone();
    assert_eq!(headers["authorization"], "Bearer sk_test_123");
    assert_eq!(headers["idempotency-key"], "topup:k1");
    for field in [
        "amount=2537",
        "currency=usd",
        "confirm=true",
        "payment_method=pm_card_visa",
    ] {
        assert!(
            body.split('&').any(|pair| pair == field),
            "{field} missing from {body}"
        );
    }
    let other = provider
        .charge(&request_of(Cents(9_999), "pm_card_visa", "topup:k2"))
        .await
        .unwrap();
    assert_eq!(other.amount, Cents(9_999));
    assert_ne!(other.id, charge.id);

    let unreachable = StripeProvider::new("http://127.0.0.1:9", "sk")
        .charge(&request("pm_card_visa", "k4"))
        .await;
    assert!(matches!(unreachable, Err(PaymentError::Unavailable(_))));
}

#[tokio::test]
async fn stripe_rejects_a_bad_or_missing_key() {
    let (fake, base) = fake_stripe().await;
    for key in ["sk_test_wrong", ""] {
        let provider = StripeProvider::new(&base, key);
        let charged = provider.charge(&request("pm_card_visa", "k1")).await;
        assert!(
            matches!(charged, Err(PaymentError::NotConfigured(_))),
            "{key:?}: {charged:?}"
        );
        let asked = provider
            .retrieve(&request("pm_card_visa", "k1"), "pi_1")
            .await;
        assert!(
            matches!(asked, Err(PaymentError::NotConfigured(_))),
            "{asked:?}"
        );
    }
    assert_eq!(fake.executed(), 0, "nothing charged");
}

#[tokio::test]
async fn the_same_idempotency_key_is_the_same_payment_intent() {
    let (fake, base) = fake_stripe().await;
    let provider = StripeProvider::new(&base, KEY);
    let same = request_of(Cents(3_000), "pm_card_visa", "topup:same");
    let first = provider.charge(&same).await.unwrap();
    let again = provider.charge(&same).await.unwrap();
    assert_eq!(first, again, "replayed, not charged again");
    assert_eq!(fake.executed(), 1);

    // The same key with other parameters: Stripe's idempotency error. The first request
    // may have charged, so it is not a decline (a decline discards the intent).
    let changed = provider
        .charge(&ChargeRequest {
            amount: Cents(3_001),
            ..same.clone()
        })
        .await;
    assert!(
        matches!(changed, Err(PaymentError::Unavailable(_))),
        "{changed:?}"
    );
    assert_eq!(fake.executed(), 1);

    // A decline is saved under its key too: the retry is the same decline.
    let declining = request("pm_card_chargeDeclined", "topup:declined");
    for _ in 0..2 {
        let declined = provider.charge(&declining).await;
        assert_eq!(
            declined,
            Err(PaymentError::Declined(DeclineReason::CardDeclined))
        );
    }
    assert_eq!(fake.executed(), 2);

    // So is a 500: the retry under the same key is the same outage, never a charge.
    let failing = request("pm_boom", "topup:boom");
    for _ in 0..2 {
        let outage = provider.charge(&failing).await;
        assert!(
            matches!(outage, Err(PaymentError::Unavailable(_))),
            "{outage:?}"
        );
    }
    assert_eq!(fake.executed(), 3);
}

#[tokio::test]
async fn payments_that_do_not_succeed_are_never_charges() {
    let (_fake, base) = fake_stripe().await;
    let provider = StripeProvider::new(&base, KEY);
    assert_eq!(
        provider
            .charge(&request("pm_card_chargeDeclinedInsufficientFunds", "k1"))
            .await,
        Err(PaymentError::Declined(DeclineReason::InsufficientFunds))
    );
    let needs_action = provider
        .charge(&request("pm_card_authenticationRequired", "k2"))
        .await;
    assert!(
        matches!(
            needs_action,
            Err(PaymentError::Declined(
                DeclineReason::AuthenticationRequired
            ))
        ),
        "{needs_action:?}"
    );
    let processing = provider
        .charge(&request("pm_card_processingThenFails", "k3"))
        .await;
    let Err(PaymentError::Processing(id)) = processing else {
        panic!("{processing:?}");
    };
    let settled = provider
        .retrieve(&request("pm_card_processingThenFails", "k3"), &id)
        .await;
    assert!(
        matches!(
            settled,
            Err(PaymentError::Declined(DeclineReason::CardDeclined))
        ),
        "{settled:?}"
    );
    let too_small = provider
        .charge(&request_of(Cents(10), "pm_card_visa", "k4"))
        .await;
    assert!(
        matches!(too_small, Err(PaymentError::Declined(_))),
        "{too_small:?}"
    );
}

/// Two top-ups under one key at once (a client retry while the first is still
/// running): Stripe answers the second 409 `idempotency_error`. That is not a decline:
/// the first charges, and the pool is credited once.
#[tokio::test]
async fn a_concurrent_retry_under_the_same_key_is_not_a_decline() {
    let (fake, base) = fake_stripe().await;
    let provider = StripeProvider::new(&base, KEY);
    let ctx = aicity_testkit::context(Default::default()).await;
    let (db, table) = (ctx.db(), ctx.table.as_str());
    let owner = OwnerId::new();
    let top_up = || {
        aicity_vault::service::top_up(
            db,
            table,
            &provider,
            &owner,
            Cents(1_234),
            Some("pm_card_slow".into()),
            "topup:concurrent",
            None,
        )
    };
    let second = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        top_up().await
    };
    let (first, second) = tokio::join!(top_up(), second);
    let (pool, charged, _) = first.expect("the first charges");
    assert_eq!((pool.balance, charged), (Cents(1_234), Cents(1_234)));
    let err = second.expect_err("the second ran into the first");
    assert!(
        err.details.is_none(),
        "an outage-like error, not a decline with a reason: {err:?}"
    );
    assert_eq!(fake.executed(), 1, "charged once");
    let pool = aicity_store::vault::pool(db, table, &owner).await.unwrap();
    assert_eq!(pool.balance, Cents(1_234), "credited once, not lost");
}

#[tokio::test]
async fn a_processing_payment_is_not_a_decline_and_is_credited_once_it_settles() {
    let (fake, base) = fake_stripe().await;
    let provider = StripeProvider::new(&base, KEY);
    let ctx = aicity_testkit::context(Default::default()).await;
    let (db, table) = (ctx.db(), ctx.table.as_str());
    let owner = OwnerId::new();
    let top_up = || {
        aicity_vault::service::top_up(
            db,
            table,
            &provider,
            &owner,
            Cents(4_321),
            Some("pm_card_processing".into()),
            "topup:processing",
            None,
        )
    };

    let err = top_up().await.expect_err("not settled yet");
    assert_eq!(
        err.code,
        aicity_domain::ErrorCode::TopUpInProgress,
        "{err:?}"
    );
    assert_eq!(
        aicity_store::vault::pool(db, table, &owner)
            .await
            .unwrap()
            .balance,
        Cents(0)
    );

    // The sweeper asks about it (it does not charge again) and credits it, once.
    let later =
        (time::OffsetDateTime::now_utc() + std::time::Duration::from_secs(3600)).unix_timestamp();
    let pass = aicity_vault::service::reconcile(db, table, &provider, later)
        .await
        .unwrap();
    assert_eq!((pass.credited, pass.processing), (1, 0), "{pass:?}");
    let again = aicity_vault::service::reconcile(db, table, &provider, later)
        .await
        .unwrap();
    assert_eq!(again.credited, 0, "once");
    assert_eq!(fake.executed(), 1, "charged once");
    let pool = aicity_store::vault::pool(db, table, &owner).await.unwrap();
    assert_eq!(pool.balance, Cents(4_321), "the amount Stripe charged");

    // The client's retry finds it credited.
    let (pool, charged, _) = top_up().await.unwrap();
    assert_eq!((pool.balance, charged), (Cents(4_321), Cents(4_321)));
    assert_eq!(fake.executed(), 1);
}

/// A processing payment that fails after all (`requires_payment_method`) is declined
/// by the sweeper: nothing credited.
#[tokio::test]
async fn a_processing_payment_that_fails_is_never_credited() {
    let (_fake, base) = fake_stripe().await;
    let provider = StripeProvider::new(&base, KEY);
    let ctx = aicity_testkit::context(Default::default()).await;
    let (db, table) = (ctx.db(), ctx.table.as_str());
    let owner = OwnerId::new();
    let err = aicity_vault::service::top_up(
        db,
        table,
        &provider,
        &owner,
        Cents(4_000),
        Some("pm_card_processingThenFails".into()),
        "topup:fails",
        None,
    )
    .await
    .expect_err("processing");
    assert_eq!(err.code, aicity_domain::ErrorCode::TopUpInProgress);
    let later =
        (time::OffsetDateTime::now_utc() + std::time::Duration::from_secs(3600)).unix_timestamp();
    let pass = aicity_vault::service::reconcile(db, table, &provider, later)
        .await
        .unwrap();
    assert_eq!((pass.credited, pass.processing), (0, 0), "{pass:?}");
    let pool = aicity_store::vault::pool(db, table, &owner).await.unwrap();
    assert_eq!(pool.balance, Cents(0));
    let again = aicity_vault::service::reconcile(db, table, &provider, later)
        .await
        .unwrap();
    assert_eq!(
        again,
        Default::default(),
        "the failed intent is settled (discarded), not retried"
    );
}

/// A declined top-up answers `PAYMENT_FAILED` with one of the fixed reasons in
/// `details.reason`; the provider's message (here echoing a key) is nowhere in the body.
#[tokio::test]
async fn a_decline_shows_a_fixed_reason_never_the_providers_text() {
    let (_fake, base) = fake_stripe().await;
    let provider = StripeProvider::new(&base, KEY);
    let ctx = aicity_testkit::context(Default::default()).await;
    let (db, table) = (ctx.db(), ctx.table.as_str());
    let owner = OwnerId::new();
    let allowed: Vec<&str> = DeclineReason::ALL.iter().map(|r| r.as_str()).collect();
    for (method, reason) in [
        ("pm_card_leaky", "expired_card"),
        ("pm_card_chargeDeclined", "card_declined"),
        (
            "pm_card_chargeDeclinedInsufficientFunds",
            "insufficient_funds",
        ),
        ("pm_card_authenticationRequired", "authentication_required"),
    ] {
        let err = aicity_vault::service::top_up(
            db,
            table,
            &provider,
            &owner,
            Cents(1_000),
            Some(method.into()),
            &format!("topup:{method}"),
            None,
        )
        .await
        .expect_err("declined");
        let response = aicity_http::error_response(&err);
        assert_eq!(response.status(), 502, "{method}");
        let bytes: &[u8] = response.body().as_ref();
        let body = String::from_utf8_lossy(bytes).into_owned();
        let json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["error"]["code"], "PAYMENT_FAILED", "{body}");
        assert_eq!(json["error"]["details"]["reason"], reason, "{body}");
        assert!(allowed.contains(&reason));
        for leaked in [LEAKED_SECRET, "10.1.2.3", "Your card", "expired."] {
            assert!(!body.contains(leaked), "{method}: {leaked} in {body}");
        }
    }
}

/// The deployed shape: the function gets only `STRIPE_SECRET_KEY_PARAM` (an SSM
/// parameter's name) and reads the key from Parameter Store at start. Here the
/// parameter lives in moto; the Stripe fake accepts only that key, so a charge going
/// through proves the key came from SSM. A plain `STRIPE_SECRET_KEY` (local
/// development) wins over the parameter; a missing parameter starts unconfigured.
#[tokio::test]
async fn the_stripe_key_is_read_from_ssm_when_only_its_parameter_is_named() {
    let (_fake, base) = fake_stripe().await;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let ssm = aws_sdk_ssm::Client::new(&config);
    let parameter = format!("/aicity-test/{}/stripe-secret-key", ulid::Ulid::generate());
    ssm.put_parameter()
        .name(&parameter)
        .value(KEY)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("moto takes the parameter");
    let clients = aicity_testkit::clients().await;
    let pick = |vars: Vec<(&'static str, String)>| {
        let dynamodb = clients.dynamodb.clone();
        async move {
            aicity_vault::payments::from_settings(
                |name| {
                    vars.iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, v)| v.clone())
                },
                dynamodb,
                "t".into(),
            )
            .await
        }
    };
    let stripe = |param: &str| {
        vec![
            ("PAYMENT_PROVIDER", "stripe".to_owned()),
            ("STRIPE_API_BASE", base.clone()),
            ("STRIPE_SECRET_KEY_PARAM", param.to_owned()),
        ]
    };

    let provider = pick(stripe(&parameter)).await.expect("starts");
    let charge = provider
        .charge(&request("pm_card_visa", "ssm:1"))
        .await
        .expect("charged with the key from SSM");
    assert!(charge.id.starts_with("pi_"));

    let mut plain_wins = stripe(&parameter);
    plain_wins.push(("STRIPE_SECRET_KEY", "sk_test_wrong".to_owned()));
    let provider = pick(plain_wins).await.unwrap();
    assert!(matches!(
        provider.charge(&request("pm_card_visa", "ssm:2")).await,
        Err(PaymentError::NotConfigured(_))
    ));

    let provider = pick(stripe("/aicity-test/no-such-parameter"))
        .await
        .unwrap();
    assert!(matches!(
        provider.charge(&request("pm_card_visa", "ssm:3")).await,
        Err(PaymentError::NotConfigured(_))
    ));
}
