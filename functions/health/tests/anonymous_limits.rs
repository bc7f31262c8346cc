//! The health routes are callable without credentials: limited per client IP.

use aicity_http::Limits;
use aicity_testkit::http::{Answer, Call, send};
use health::Health;

async fn call(health: &Health, call: Call) -> Answer {
    send(&|request| health::handle(health, request), &call).await
}

#[tokio::test]
async fn probe_posts_are_limited_per_ip() {
    let clients = aicity_testkit::clients().await;
    let resources = aicity_testkit::fresh_resources(&clients, &aicity_testkit::template()).await;
    let health = Health {
        clients: clients.clone(),
        table: resources.tables["Table"].clone(),
        canary_queue_url: resources.queues["CanaryQueue"].url.clone(),
        limits: Limits::default(),
    };
    let limit = health.limits.anonymous_per_minute;
    assert_eq!(limit, 60, "the default");
    // The limit is per minute (aligned to the clock): start early in one.
    let second = time::OffsetDateTime::now_utc().second();
    if second > 30 {
        tokio::time::sleep(std::time::Duration::from_secs(u64::from(61 - second))).await;
    }
    let post = |ip: &str| Call::at("POST", "/api/v1/health/probes").from_ip(ip);
    for n in 1..=limit {
        let answer = call(&health, post("198.51.100.10")).await;
        assert_eq!(answer.status, 201, "probe {n}: {:?}", answer.body);
    }
    let over = call(&health, post("198.51.100.10")).await;
    assert_eq!(
        (over.status, over.code()),
        (429, "RATE_LIMITED"),
        "{:?}",
        over.body
    );
    let retry_after: u64 = over.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    // The same IP's other health routes share the budget; another IP has its own.
    assert_eq!(
        call(
            &health,
            Call::at("GET", "/api/v1/health").from_ip("198.51.100.10")
        )
        .await
        .status,
        429
    );
    assert_eq!(call(&health, post("198.51.100.11")).await.status, 201);
    assert_eq!(
        call(
            &health,
            Call::at("GET", "/api/v1/health").from_ip("198.51.100.11")
        )
        .await
        .status,
        200
    );
}
