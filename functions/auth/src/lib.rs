//! `auth`: owner accounts and sessions.
//!
//! - `POST /api/v1/auth/sign-up` {name, email, password} → 201 `{user}`
//! - `POST /api/v1/auth/sign-in` {email, password} → `{token, session:{token, expiresAt}, user}`,
//!   with `token` and `session` also beside `success` and `data` (as Better Auth answers)
//! - `POST /api/v1/auth/sign-out` (Bearer) → `{signedOut: true}`; the token dies at once
//! - `GET  /api/v1/auth/session` (Bearer) → `{session:{expiresAt}, user}`
//!
//! A wrong password and an unknown email get the same answer, in about the same time.
//!
//! Sign-up and sign-in are limited per client IP twice: `anonymous_per_minute` (batched,
//! like every route callable without credentials) and `per_ip_auth` per window
//! (strict). Sign-in is also limited per account: `sign_in_per_account` attempts per
//! `sign_in_account_window` for one normalized email, from any IP, counted before the
//! password is checked (so parallel guesses cannot race past it) and given back when
//! the sign-in succeeds, so only failed attempts use it up; an unknown email is counted
//! the same way. Past any of them: `429 RATE_LIMITED` with `Retry-After`.

use aicity_domain::identity::owner::normalize_email;
use aicity_domain::identity::secrets::{
    decoy_password_hash, generate_session_token, hash_password, hash_secret, verify_password,
};
use aicity_domain::identity::{Owner, OwnerStatus, SignIn, SignUp};
use aicity_domain::ids::OwnerId;
use aicity_domain::timestamps;
use aicity_domain::{ApiError, ErrorCode};
use aicity_http::auth::{self, source_ip};
use aicity_http::response::ok_with_top_level;
use aicity_http::{Context, created, json_body, ok, route_key};
use aicity_store::StoreError;
use aicity_store::owners::{self, OwnerRecord};
use aicity_store::rate_limit;
use aicity_store::sessions::{self, Session};
use lambda_http::{Body, Request, Response};
use serde_json::json;
use time::OffsetDateTime;

/// Sign-up and sign-in bodies are small.
const MAX_BODY: usize = 16 * 1024;

pub async fn handle(ctx: &Context, request: Request) -> Result<Response<Body>, ApiError> {
    match route_key(&request).as_deref() {
        Some("POST /api/v1/auth/sign-up") => sign_up(ctx, &request).await,
        Some("POST /api/v1/auth/sign-in") => sign_in(ctx, &request).await,
        Some("POST /api/v1/auth/sign-out") => sign_out(ctx, &request).await,
        Some("GET /api/v1/auth/session") => session(ctx, &request).await,
        _ => Err(ApiError::new(ErrorCode::NotFound)),
    }
}

fn user_view(owner: &Owner) -> serde_json::Value {
    json!({ "id": owner.id, "name": owner.name, "email": owner.email })
}

/// argon2 is deliberately slow: keep it off the async executor.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|err| {
        tracing::error!(error = %err, "password hashing task failed");
        ApiError::internal()
    })
}

async fn limit_by_ip(ctx: &Context, request: &Request) -> Result<(), ApiError> {
    auth::limit_anonymous(ctx, request).await?;
    let subject = format!("auth-ip:{}", source_ip(request));
    auth::rate_limit_strict(ctx, &subject, ctx.limits.per_ip_auth, ctx.limits.window).await
}

/// Counts one sign-in attempt for the account; the window's start, to give it back.
async fn limit_by_account(ctx: &Context, email: &str) -> Result<i64, ApiError> {
    let window = ctx.limits.sign_in_account_window;
    let (start, _) = rate_limit::window_of(window, OffsetDateTime::now_utc());
    let subject = sign_in_subject(email);
    auth::rate_limit_strict(ctx, &subject, ctx.limits.sign_in_per_account, window).await?;
    Ok(start)
}

fn sign_in_subject(email: &str) -> String {
    format!("sign-in:{email}")
}

async fn sign_up(ctx: &Context, request: &Request) -> Result<Response<Body>, ApiError> {
    limit_by_ip(ctx, request).await?;
    let body: SignUp = json_body(request, MAX_BODY)?;
    let now = OffsetDateTime::now_utc();
    let password = body.password;
    let record = OwnerRecord {
        owner: Owner {
            id: OwnerId::new(),
            name: body.name.trim().to_owned(),
            email: normalize_email(&body.email),
            status: OwnerStatus::Active,
            created_at: timestamps::format(now),
        },
        password_hash: blocking(move || hash_password(&password)).await?,
        active_agents: 0,
    };
    match owners::create(ctx.db(), &ctx.table, &record).await {
        Ok(()) => created(json!({ "user": user_view(&record.owner) })),
        Err(err) if err.failed_labels() == ["email"] => Err(ApiError::with_message(
            ErrorCode::EmailAlreadyRegistered,
            "An account with this email already exists",
        )),
        Err(err) => Err(err.into()),
    }
}

fn invalid_credentials() -> ApiError {
    ApiError::with_message(ErrorCode::InvalidCredentials, "Invalid email or password")
}

async fn sign_in(ctx: &Context, request: &Request) -> Result<Response<Body>, ApiError> {
    limit_by_ip(ctx, request).await?;
    let body: SignIn = json_body(request, MAX_BODY)?;
    let email = normalize_email(&body.email);
    let window_start = limit_by_account(ctx, &email).await?;
    let found = match owners::by_email(ctx.db(), &ctx.table, &email).await {
        Ok(record) => Some(record),
        Err(StoreError::NotFound) => None,
        Err(err) => return Err(err.into()),
    };
    // Verify against a decoy when there is no account, so both cases cost the same.
    let stored = found.as_ref().map_or_else(
        || decoy_password_hash().to_owned(),
        |r| r.password_hash.clone(),
    );
    let password = body.password;
    let matches = blocking(move || verify_password(&password, &stored)).await?;
    let Some(record) = found.filter(|_| matches) else {
        return Err(invalid_credentials());
    };
    // Only failed attempts use up the account's budget.
    if let Err(err) =
        rate_limit::give_back(ctx.db(), &ctx.table, &sign_in_subject(&email), window_start).await
    {
        tracing::warn!(error = %err, "sign-in attempt not given back");
    }
    if record.owner.status == OwnerStatus::Suspended {
        return Err(ApiError::new(ErrorCode::OwnerSuspended));
    }

    let now = OffsetDateTime::now_utc();
    let expires = now + ctx.limits.session_ttl;
    let token = generate_session_token();
    let session = Session {
        owner_id: record.owner.id,
        created_at: timestamps::format(now),
        expires: timestamps::format(expires),
    };
    sessions::create(
        ctx.db(),
        &ctx.table,
        &hash_secret(&token),
        &session,
        expires,
    )
    .await?;
    let session = json!({ "token": token, "expiresAt": session.expires });
    // Also beside the envelope, where a Better Auth client reads it
    // (`body.token ?? body.session?.token`).
    let top = serde_json::Map::from_iter([
        ("token".to_owned(), json!(token)),
        ("session".to_owned(), session.clone()),
    ]);
    ok_with_top_level(
        json!({ "token": token, "session": session, "user": user_view(&record.owner) }),
        top,
    )
}

async fn sign_out(ctx: &Context, request: &Request) -> Result<Response<Body>, ApiError> {
    let caller = auth::owner(ctx, request).await?;
    sessions::delete(ctx.db(), &ctx.table, &caller.token_hash).await?;
    ok(json!({ "signedOut": true }))
}

async fn session(ctx: &Context, request: &Request) -> Result<Response<Body>, ApiError> {
    let caller = auth::owner(ctx, request).await?;
    ok(json!({
        "session": { "expiresAt": caller.session.expires, "createdAt": caller.session.created_at },
        "user": user_view(&caller.owner),
    }))
}
