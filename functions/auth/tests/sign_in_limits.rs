//! Sign-in is limited per account (normalized email) across IPs, failed attempts only.

use std::time::Duration;

use aicity_http::{Context, Limits};
use aicity_testkit::http::{Answer, Call, send};
use serde_json::json;

async fn call(ctx: &Context, call: Call) -> Answer {
    send(&|request| auth::handle(ctx, request), &call).await
}

fn sign_in(email: &str, password: &str, ip: &str) -> Call {
    Call::at("POST", "/api/v1/auth/sign-in")
        .json(json!({"email": email, "password": password}))
        .from_ip(ip)
}

async fn sign_up(ctx: &Context, email: &str) {
    let answer = call(
        ctx,
        Call::at("POST", "/api/v1/auth/sign-up")
            .json(json!({"name": "Riley", "email": email, "password": "right-password"})),
    )
    .await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
}

fn limits() -> Limits {
    Limits {
        sign_in_per_account: 3,
        // An hour: a test never crosses into the next window.
        sign_in_account_window: Duration::from_secs(3600),
        ..Limits::default()
    }
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_account_across_ips() {
    let ctx = aicity_testkit::context(limits()).await;
    sign_up(&ctx, "riley@example.com").await;
    for n in 1..=3 {
        let answer = call(
            &ctx,
            sign_in(
                "riley@example.com",
                "wrong-password",
                &format!("198.51.100.{n}"),
            ),
        )
        .await;
        assert_eq!((answer.status, answer.code()), (401, "INVALID_CREDENTIALS"));
    }
    // A fourth attempt from yet another IP, with the email spelled differently.
    let limited = call(
        &ctx,
        sign_in(" Riley@EXAMPLE.com", "wrong-password", "198.51.100.4"),
    )
    .await;
    assert_eq!((limited.status, limited.code()), (429, "RATE_LIMITED"));
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after));
    // Even the right password waits for the window: guesses cannot go on.
    let right = call(
        &ctx,
        sign_in("riley@example.com", "right-password", "198.51.100.5"),
    )
    .await;
    assert_eq!((right.status, right.code()), (429, "RATE_LIMITED"));

    // Another account is not affected, from the same IPs.
    sign_up(&ctx, "sam@example.com").await;
    let other = call(
        &ctx,
        sign_in("sam@example.com", "right-password", "198.51.100.4"),
    )
    .await;
    assert_eq!(other.status, 200, "{:?}", other.body);

    // An unknown email is counted the same way (nothing tells it apart).
    for _ in 0..3 {
        let answer = call(
            &ctx,
            sign_in("nobody@example.com", "x-password", "198.51.100.9"),
        )
        .await;
        assert_eq!(answer.code(), "INVALID_CREDENTIALS");
    }
    let answer = call(
        &ctx,
        sign_in("nobody@example.com", "x-password", "198.51.100.9"),
    )
    .await;
    assert_eq!(answer.code(), "RATE_LIMITED");
}

#[tokio::test]
async fn successful_sign_ins_do_not_use_up_the_accounts_budget() {
    let ctx = aicity_testkit::context(limits()).await;
    sign_up(&ctx, "kai@example.com").await;
    for _ in 0..5 {
        let answer = call(
            &ctx,
            sign_in("kai@example.com", "right-password", "198.51.100.1"),
        )
        .await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    // Two failures and the budget still has room for the right one.
    for _ in 0..2 {
        let answer = call(
            &ctx,
            sign_in("kai@example.com", "wrong-password", "198.51.100.1"),
        )
        .await;
        assert_eq!(answer.status, 401);
    }
    let answer = call(
        &ctx,
        sign_in("kai@example.com", "right-password", "198.51.100.1"),
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
}
