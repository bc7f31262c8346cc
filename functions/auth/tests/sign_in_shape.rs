//! Sign-in answers the envelope and, beside it, the token where the buyer guide's
//! raw-HTTP example reads it: `signinData.token ?? signinData.session?.token`.

use aicity_http::{Context, Limits};
use aicity_testkit::http::{Answer, Call, send};
use serde_json::{Value, json};

async fn call(ctx: &Context, call: Call) -> Answer {
    send(&|request| auth::handle(ctx, request), &call).await
}

/// The guide's `signinData.token ?? signinData.session?.token`.
fn guide_token(body: &Value) -> Option<&str> {
    body.get("token")
        .and_then(Value::as_str)
        .or_else(|| body.get("session")?.get("token")?.as_str())
}

#[tokio::test]
async fn the_token_is_at_the_top_as_the_guide_reads_it_and_in_the_envelope() {
    let ctx = aicity_testkit::context(Limits::default()).await;
    let answer = call(
        &ctx,
        Call::at("POST", "/api/v1/auth/sign-up").json(json!({
            "name": "Riley Chen",
            "email": "riley@example.com",
            "password": "your-secure-password",
        })),
    )
    .await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);

    let answer = call(
        &ctx,
        Call::at("POST", "/api/v1/auth/sign-in").json(json!({
            "email": "riley@example.com",
            "password": "your-secure-password",
        })),
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let body = &answer.body;

    // The envelope, exactly as before.
    assert_eq!(body["success"], true);
    let data = answer.data();
    let token = data["token"].as_str().expect("data.token").to_owned();
    assert!(token.starts_with("ses_"), "{token}");
    assert_eq!(data["session"]["token"], token.as_str());
    assert!(data["session"]["expiresAt"].is_string());
    assert_eq!(data["user"]["email"], "riley@example.com");
    assert!(body.get("error").is_none());

    // Beside it, the seed's reading of the body finds the same token.
    assert_eq!(guide_token(body), Some(token.as_str()));
    assert_eq!(body["token"], token.as_str());
    assert_eq!(body["session"], data["session"]);
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["data", "session", "success", "token"]);

    // And the token it finds is a working session.
    let answer = call(&ctx, Call::at("GET", "/api/v1/auth/session").bearer(&token)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.data()["user"]["email"], "riley@example.com");
    // Only sign-in carries it: other answers keep the bare envelope.
    assert!(answer.body.get("token").is_none());
}

#[tokio::test]
async fn a_refused_sign_in_carries_no_token_anywhere() {
    let ctx = aicity_testkit::context(Limits::default()).await;
    let answer = call(
        &ctx,
        Call::at("POST", "/api/v1/auth/sign-in").json(json!({
            "email": "nobody@example.com",
            "password": "your-secure-password",
        })),
    )
    .await;
    assert_eq!((answer.status, answer.code()), (401, "INVALID_CREDENTIALS"));
    assert_eq!(guide_token(&answer.body), None);
}
