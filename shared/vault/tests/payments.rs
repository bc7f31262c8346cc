//! Both payment providers: the local one against the emulator, Stripe's against a
//! local fake of the endpoint it calls.

use std::sync::{Arc, Mutex};

use aicity_domain::ids::OwnerId;
use aicity_domain::money::Cents;
use aicity_vault::payments::{LocalProvider, StripeProvider};
use aicity_vault::{ChargeRequest, PaymentError, PaymentProvider};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

fn request(method: &str, key: &str) -> ChargeRequest {
    ChargeRequest {
        owner_id: OwnerId::new(),
        amount: Cents(2_500),
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
        Err(PaymentError::Declined("Your card was declined.".into()))
    );
}

#[derive(Default, Clone)]
struct Seen(Arc<Mutex<Vec<(HeaderMap, String)>>>);

async fn fake_stripe(
    State(seen): State<Seen>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    seen.0.lock().unwrap().push((headers, body.clone()));
    if body.contains("payment_method=pm_card_chargeDeclined") {
        return (
            StatusCode::PAYMENT_REQUIRED,
            r#"{"error":{"type":"card_error","code":"card_declined","message":"Your card was declined."}}"#.into(),
        );
    }
    if body.contains("payment_method=pm_boom") {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":{"type":"api_error","message":"oops"}}"#.into(),
        );
    }
    (
        StatusCode::OK,
        r#"{"id":"pi_123","object":"payment_intent","amount":2500,"status":"succeeded"}"#.into(),
    )
}

#[tokio::test]
async fn the_stripe_provider_creates_a_confirmed_payment_intent() {
    let seen = Seen::default();
    let app = axum::Router::new()
        .route("/v1/payment_intents", post(fake_stripe))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let provider = StripeProvider::new(base, "sk_test_123");

    let charge = provider
        .charge(&request("pm_card_visa", "topup:k1"))
        .await
        .unwrap();
    assert_eq!(
        (charge.id.as_str(), charge.amount),
        ("pi_123", Cents(2_500))
    );
    let (headers, body) = seen.0.lock().unwrap()[0].clone();
    assert_eq!(headers["authorization"], "Bearer sk_test_123");
    assert_eq!(headers["idempotency-key"], "topup:k1");
    for field in [
        "amount=2500",
        "currency=usd",
        "confirm=true",
        "payment_method=pm_card_visa",
    ] {
        assert!(
            body.split('&').any(|pair| pair == field),
            "{field} missing from {body}"
        );
    }

    let declined = provider
        .charge(&request("pm_card_chargeDeclined", "k2"))
        .await;
    assert_eq!(
        declined,
        Err(PaymentError::Declined("Your card was declined.".into()))
    );
    let outage = provider.charge(&request("pm_boom", "k3")).await;
    assert!(matches!(outage, Err(PaymentError::Unavailable(_))));
    let unreachable = StripeProvider::new("http://127.0.0.1:9", "sk")
        .charge(&request("pm_card_visa", "k4"))
        .await;
    assert!(matches!(unreachable, Err(PaymentError::Unavailable(_))));
}

/// A Stripe fake whose payments settle a moment later: creating one answers
/// `processing`, asking about it afterwards answers `succeeded` (the amount echoed
/// from the request, the key required on every call).
#[derive(Default, Clone)]
struct Settling {
    amounts: Arc<Mutex<std::collections::HashMap<String, i64>>>,
    creates: Arc<Mutex<u32>>,
}

async fn settling_create(
    State(fake): State<Settling>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer sk_test_123") {
        return (
            StatusCode::UNAUTHORIZED,
            r#"{"error":{"type":"invalid_request_error"}}"#.into(),
        );
    }
    *fake.creates.lock().unwrap() += 1;
    let amount: i64 = body
        .split('&')
        .find_map(|pair| pair.strip_prefix("amount="))
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let key = headers["idempotency-key"].to_str().unwrap().to_owned();
    let id = format!("pi_{}", key.len());
    fake.amounts.lock().unwrap().insert(id.clone(), amount);
    (
        StatusCode::OK,
        format!(
            r#"{{"id":"{id}","object":"payment_intent","amount":{amount},"status":"processing"}}"#
        ),
    )
}

async fn settling_get(
    State(fake): State<Settling>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer sk_test_123") {
        return (
            StatusCode::UNAUTHORIZED,
            r#"{"error":{"type":"invalid_request_error"}}"#.into(),
        );
    }
    match fake.amounts.lock().unwrap().get(&id) {
        Some(amount) => (
            StatusCode::OK,
            format!(
                r#"{{"id":"{id}","object":"payment_intent","amount":{amount},"status":"succeeded"}}"#
            ),
        ),
        None => (
            StatusCode::NOT_FOUND,
            r#"{"error":{"type":"invalid_request_error","message":"No such payment_intent"}}"#
                .into(),
        ),
    }
}

#[tokio::test]
async fn a_processing_payment_is_not_a_decline_and_is_credited_once_it_settles() {
    let fake = Settling::default();
    let app = axum::Router::new()
        .route("/v1/payment_intents", post(settling_create))
        .route("/v1/payment_intents/{id}", axum::routing::get(settling_get))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let provider = StripeProvider::new(base, "sk_test_123");
    let ctx = aicity_testkit::context(Default::default()).await;
    let (db, table) = (ctx.db(), ctx.table.as_str());
    let owner = OwnerId::new();

    let first = aicity_vault::service::top_up(
        db,
        table,
        &provider,
        &owner,
        Cents(4_321),
        None,
        "topup:processing",
        None,
    )
    .await;
    let err = first.expect_err("not settled yet");
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
    assert_eq!(*fake.creates.lock().unwrap(), 1, "charged once");
    let pool = aicity_store::vault::pool(db, table, &owner).await.unwrap();
    assert_eq!(pool.balance, Cents(4_321), "the amount Stripe charged");

    // The client's retry finds it credited.
    let (pool, charged, _) = aicity_vault::service::top_up(
        db,
        table,
        &provider,
        &owner,
        Cents(4_321),
        None,
        "topup:processing",
        None,
    )
    .await
    .unwrap();
    assert_eq!((pool.balance, charged), (Cents(4_321), Cents(4_321)));
    assert_eq!(*fake.creates.lock().unwrap(), 1);
}
