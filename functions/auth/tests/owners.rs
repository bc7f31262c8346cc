//! Owner accounts and sessions through the HTTP handler, over the emulator.

use std::time::Duration;

use aicity_http::{Context, Limits};
use aicity_testkit::http::{Answer, Call, send};
use serde_json::{Value, json};

async fn call(ctx: &Context, call: Call) -> Answer {
    send(&|request| auth::handle(ctx, request), &call).await
}

fn sign_up_call(email: &str, password: &str) -> Call {
    Call::at("POST", "/api/v1/auth/sign-up")
        .json(json!({"name": "Riley Chen", "email": email, "password": password}))
}

fn sign_in_call(email: &str, password: &str) -> Call {
    Call::at("POST", "/api/v1/auth/sign-in").json(json!({"email": email, "password": password}))
}

async fn sign_in(ctx: &Context, email: &str, password: &str) -> String {
    let answer = call(ctx, sign_in_call(email, password)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.data()["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn sign_up_sign_in_session_sign_out() {
    let ctx = aicity_testkit::context(Limits::default()).await;
    let answer = call(
        &ctx,
        sign_up_call("Riley@Example.com", "your-secure-password"),
    )
    .await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    let user = &answer.data()["user"];
    assert_eq!(user["email"], "riley@example.com", "emails are normalised");
    assert!(user["id"].as_str().unwrap().starts_with("usr_"));
    assert!(user.get("passwordHash").is_none());

    let answer = call(
        &ctx,
        sign_in_call(" riley@EXAMPLE.com", "your-secure-password"),
    )
    .await;
    assert_eq!(answer.status, 200);
    let token = answer.data()["token"].as_str().unwrap().to_owned();
    assert_eq!(answer.data()["session"]["token"], token.as_str());
    assert_eq!(answer.data()["user"], *user);
    let expires = time::OffsetDateTime::parse(
        answer.data()["session"]["expiresAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let lifetime = expires - time::OffsetDateTime::now_utc();
    assert!(lifetime > time::Duration::days(7) - time::Duration::minutes(1));

    let answer = call(&ctx, Call::at("GET", "/api/v1/auth/session").bearer(&token)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.data()["user"], *user);

    let answer = call(
        &ctx,
        Call::at("POST", "/api/v1/auth/sign-out").bearer(&token),
    )
    .await;
    assert_eq!(
        (answer.status, answer.data()["signedOut"].clone()),
        (200, Value::Bool(true))
    );
    let answer = call(&ctx, Call::at("GET", "/api/v1/auth/session").bearer(&token)).await;
    assert_eq!(
        (answer.status, answer.code()),
        (401, "UNAUTHORIZED"),
        "revoked at once"
    );
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_answer_identically() {
    let ctx = aicity_testkit::context(Limits::default()).await;
    call(
        &ctx,
        sign_up_call("riley@example.com", "your-secure-password"),
    )
    .await;
    let wrong_password = call(&ctx, sign_in_call("riley@example.com", "not-the-password")).await;
    let unknown_email = call(&ctx, sign_in_call("nobody@example.com", "not-the-password")).await;
    assert_eq!(wrong_password.status, 401);
    assert_eq!(wrong_password.code(), "INVALID_CREDENTIALS");
    assert_eq!(wrong_password.status, unknown_email.status);
    assert_eq!(wrong_password.body, unknown_email.body);
}

#[tokio::test]
async fn an_email_registers_once_whatever_its_case() {
    let ctx = aicity_testkit::context(Limits::default()).await;
    assert_eq!(
        call(&ctx, sign_up_call("riley@example.com", "first-password"))
            .await
            .status,
        201
    );
    let again = call(&ctx, sign_up_call("RILEY@example.com", "second-password")).await;
    assert_eq!(
        (again.status, again.code()),
        (409, "EMAIL_ALREADY_REGISTERED")
    );
    // The first account is untouched.
    sign_in(&ctx, "riley@example.com", "first-password").await;
    let answer = call(&ctx, sign_in_call("riley@example.com", "second-password")).await;
    assert_eq!(answer.status, 401);
}

#[tokio::test]
async fn bad_input_names_the_fields_and_writes_nothing() {
    let ctx = aicity_testkit::context(Limits::default()).await;
    let cases: Vec<(Call, Vec<&str>)> = vec![
        (
            Call::at("POST", "/api/v1/auth/sign-up").json(json!({"email": "a@b.co"})),
            vec!["name"],
        ),
        (
            Call::at("POST", "/api/v1/auth/sign-up")
                .json(json!({"name": 5, "email": "a@b.co", "password": "longenough"})),
            vec!["name"],
        ),
        (sign_up_call("a@b.co", "short"), vec!["password"]),
        (sign_up_call("not-an-email", "longenough"), vec!["email"]),
        (
            Call::at("POST", "/api/v1/auth/sign-up").json(
                json!({"name": "x".repeat(101), "email": "a@b.co", "password": "p".repeat(129)}),
            ),
            vec!["name", "password"],
        ),
        (
            Call::at("POST", "/api/v1/auth/sign-up")
                .raw_body("{\"name\":")
                .header("content-type", "application/json"),
            vec!["body"],
        ),
        (
            Call::at("POST", "/api/v1/auth/sign-in").json(json!({"email": "a@b.co"})),
            vec!["password"],
        ),
    ];
    for (request, fields) in cases {
        let answer = call(&ctx, request.clone()).await;
        assert_eq!(answer.status, 400, "{request:?} → {:?}", answer.body);
        assert_eq!(answer.code(), "VALIDATION_ERROR");
        assert_eq!(answer.fields(), fields, "{request:?}");
    }
    // Nothing was created: the email of the valid-looking attempts is still free.
    assert_eq!(
        call(&ctx, sign_up_call("a@b.co", "longenough"))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_ip_and_recover_after_the_window() {
    let ctx = aicity_testkit::context(Limits {
        per_ip_auth: 3,
        window: Duration::from_secs(2),
        ..Limits::default()
    })
    .await;
    // Start at the beginning of a window so all attempts fall in the same one.
    let now = time::OffsetDateTime::now_utc();
    let into_window = (now.unix_timestamp() % 2) as f64 + f64::from(now.nanosecond()) / 1e9;
    tokio::time::sleep(Duration::from_secs_f64(2.0 - into_window)).await;

    for _ in 0..3 {
        let answer = call(
            &ctx,
            sign_in_call("x@example.com", "whatever-pass").from_ip("198.51.100.1"),
        )
        .await;
        assert_eq!(answer.status, 401);
    }
    let limited = call(
        &ctx,
        sign_in_call("x@example.com", "whatever-pass").from_ip("198.51.100.1"),
    )
    .await;
    assert_eq!((limited.status, limited.code()), (429, "RATE_LIMITED"));
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after));
    assert_eq!(limited.body["error"]["details"]["retryAfter"], retry_after);

    let elsewhere = call(
        &ctx,
        sign_in_call("x@example.com", "whatever-pass").from_ip("198.51.100.2"),
    )
    .await;
    assert_eq!(elsewhere.status, 401, "another IP has its own budget");

    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let later = call(
        &ctx,
        sign_in_call("x@example.com", "whatever-pass").from_ip("198.51.100.1"),
    )
    .await;
    assert_eq!(later.status, 401, "allowed again after the window");
}

#[tokio::test]
async fn session_errors_follow_the_seed() {
    let ctx = aicity_testkit::context(Limits {
        session_ttl: Duration::from_secs(1),
        ..Limits::default()
    })
    .await;
    let missing = call(&ctx, Call::at("GET", "/api/v1/auth/session")).await;
    assert_eq!((missing.status, missing.code()), (401, "UNAUTHORIZED"));
    let bogus = call(
        &ctx,
        Call::at("GET", "/api/v1/auth/session").bearer("ses_nope"),
    )
    .await;
    assert_eq!((bogus.status, bogus.code()), (401, "UNAUTHORIZED"));

    let created = call(&ctx, sign_up_call("sam@example.com", "long-password")).await;
    let owner_id = created.data()["user"]["id"].as_str().unwrap().to_owned();
    let token = sign_in(&ctx, "sam@example.com", "long-password").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = call(&ctx, Call::at("GET", "/api/v1/auth/session").bearer(&token)).await;
    assert_eq!((expired.status, expired.code()), (401, "SESSION_EXPIRED"));

    // A suspended owner is refused even with a fresh session.
    let ctx = Context {
        webhook_queue_url: None,
        routing_queue_url: None,
        limits: Limits::default(),
        ..ctx
    };
    let token = sign_in(&ctx, "sam@example.com", "long-password").await;
    ctx.db()
        .update_item()
        .table_name(&ctx.table)
        .set_key(Some(
            aicity_store::Key::owner(&owner_id.parse().unwrap()).to_map(),
        ))
        .update_expression("SET #status = :suspended")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(
            ":suspended",
            aws_sdk_dynamodb::types::AttributeValue::S("suspended".into()),
        )
        .send()
        .await
        .unwrap();
    let suspended = call(&ctx, Call::at("GET", "/api/v1/auth/session").bearer(&token)).await;
    assert_eq!(
        (suspended.status, suspended.code()),
        (403, "OWNER_SUSPENDED")
    );
    let sign_in_again = call(&ctx, sign_in_call("sam@example.com", "long-password")).await;
    assert_eq!(
        (sign_in_again.status, sign_in_again.code()),
        (403, "OWNER_SUSPENDED")
    );

    // An account that is gone.
    ctx.db()
        .delete_item()
        .table_name(&ctx.table)
        .set_key(Some(
            aicity_store::Key::owner(&owner_id.parse().unwrap()).to_map(),
        ))
        .send()
        .await
        .unwrap();
    let gone = call(&ctx, Call::at("GET", "/api/v1/auth/session").bearer(&token)).await;
    assert_eq!((gone.status, gone.code()), (401, "OWNER_NOT_FOUND"));
}
