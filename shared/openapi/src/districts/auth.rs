//! `functions/auth`: owner accounts and sessions. Sign-up and sign-in are open (limited
//! per client IP, sign-in also per account); sign-out and the session need the Bearer
//! token sign-in gave.

use aicity_domain::ErrorCode::*;
use aicity_domain::identity::{SignIn, SignUp};
use serde_json::json;

use crate::{ANYONE, OWNER, Op, Registry};

pub fn operations(r: &mut Registry) -> Vec<Op> {
    let user = r.named(
        "User",
        json!({
            "type": "object",
            "description": "An owner account as sign-up, sign-in and the session show it.",
            "required": ["id", "name", "email"],
            "properties": {
                "id": {"type": "string", "pattern": "^usr_[0-9A-HJKMNP-TV-Z]{26}$"},
                "name": {"type": "string"},
                "email": {"type": "string", "description": "Normalized: trimmed and lower-cased."}
            }
        }),
    );
    let signed_up = r.named(
        "SignedUp",
        json!({
            "type": "object",
            "required": ["user"],
            "properties": {"user": user}
        }),
    );
    let session_token = r.named(
        "SessionToken",
        json!({
            "type": "object",
            "required": ["token", "expiresAt"],
            "properties": {
                "token": {"type": "string", "pattern": "^ses_", "description": "The same token."},
                "expiresAt": {"type": "string", "format": "date-time"}
            }
        }),
    );
    let signed_in = r.named(
        "SignedIn",
        json!({
            "type": "object",
            "description": "The session token, shown this once (only its hash is stored): send it as `Authorization: Bearer <token>`.",
            "required": ["token", "session", "user"],
            "properties": {
                "token": {"type": "string", "pattern": "^ses_"},
                "session": session_token.clone(),
                "user": user.clone()
            }
        }),
    );
    let session = r.named(
        "CurrentSession",
        json!({
            "type": "object",
            "required": ["session", "user"],
            "properties": {
                "session": {
                    "type": "object",
                    "required": ["expiresAt", "createdAt"],
                    "properties": {
                        "expiresAt": {"type": "string", "format": "date-time"},
                        "createdAt": {"type": "string", "format": "date-time"}
                    }
                },
                "user": user
            }
        }),
    );
    let user_example = json!({
        "id": "usr_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
        "name": "Riley Chen",
        "email": "riley@example.com"
    });
    vec![
        Op::post("/api/v1/auth/sign-up", "signUp")
            .tag("Auth")
            .summary("Create an owner account")
            .describe(
                "The email is normalized (trimmed, lower-cased) and must be unused; the password is 8–128 characters. \
                 Limited per client IP.",
            )
            .auth(ANYONE)
            .body(
                r.of::<SignUp>(),
                json!({"name": "Riley Chen", "email": "riley@example.com", "password": "correct horse battery"}),
            )
            .created(signed_up)
            .example(json!({"user": user_example}))
            .errors(&[EmailAlreadyRegistered, ServiceUnavailable]),
        Op::post("/api/v1/auth/sign-in", "signIn")
            .tag("Auth")
            .summary("Sign in and get a session token")
            .describe(
                "A wrong password and an unknown email get the same 401 INVALID_CREDENTIALS, in about the same time. \
                 Limited per client IP and per account (failed attempts only).",
            )
            .auth(ANYONE)
            .body(
                r.of::<SignIn>(),
                json!({"email": "riley@example.com", "password": "correct horse battery"}),
            )
            .raw(
                200,
                "application/json",
                json!({
                    "type": "object",
                    "description": "The envelope, with the token and session also beside `data` (where Better Auth clients read them).",
                    "required": ["success", "data"],
                    "properties": {
                        "success": {"const": true},
                        "data": signed_in,
                        "token": {"type": "string", "pattern": "^ses_"},
                        "session": session_token
                    }
                }),
            )
            .example(json!({
                "success": true,
                "data": {
                    "token": "ses_EXAMPLEsessionTOKEN",
                    "session": {"token": "ses_EXAMPLEsessionTOKEN", "expiresAt": "2026-07-02T09:30:00Z"},
                    "user": user_example
                },
                "token": "ses_EXAMPLEsessionTOKEN",
                "session": {"token": "ses_EXAMPLEsessionTOKEN", "expiresAt": "2026-07-02T09:30:00Z"}
            }))
            .errors(&[InvalidCredentials, OwnerSuspended, ServiceUnavailable]),
        Op::get("/api/v1/auth/session", "getSession")
            .tag("Auth")
            .summary("The current session and its owner")
            .auth(OWNER)
            .ok(session)
            .example(json!({
                "session": {"expiresAt": "2026-07-02T09:30:00Z", "createdAt": "2026-07-01T09:30:00Z"},
                "user": user_example
            }))
            .errors(&[ServiceUnavailable]),
        Op::post("/api/v1/auth/sign-out", "signOut")
            .tag("Auth")
            .summary("End the session: its token stops working at once")
            .auth(OWNER)
            .ok(json!({
                "type": "object",
                "required": ["signedOut"],
                "properties": {"signedOut": {"const": true}}
            }))
            .example(json!({"signedOut": true}))
            .errors(&[ServiceUnavailable]),
    ]
}
