//! `functions/trust`: owners manage Trust API keys; third parties read an agent's trust
//! report with one (`X-Trust-API-Key`, limited per key per UTC day).

use aicity_domain::ErrorCode::*;
use aicity_domain::trust::{CreateTrustKey, TrustKey, TrustReport};
use serde_json::json;

use crate::{OWNER, Op, Registry, TRUST};

pub fn operations(r: &mut Registry) -> Vec<Op> {
    let key = r.of::<TrustKey>();
    let report = r.of::<TrustReport>();
    let created_key = r.named(
        "CreatedTrustKey",
        json!({
            "type": "object",
            "description": "The new key; the secret `key` is shown this once (only its hash is stored).",
            "required": ["id", "name", "key", "createdAt"],
            "properties": {
                "id": {"type": "string", "pattern": "^tkey_"},
                "name": {"type": "string"},
                "key": {"type": "string", "pattern": "^tst_"},
                "createdAt": {"type": "string", "format": "date-time"}
            }
        }),
    );
    let key_example = json!({
        "id": "tkey_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
        "name": "Acme hiring desk",
        "createdAt": "2026-07-01T09:00:00Z",
        "revokedAt": "2026-07-02T09:00:00Z",
        "lastUsedAt": "2026-07-01T17:45:00Z"
    });
    vec![
        Op::post("/api/v1/trust/keys", "createTrustKey")
            .tag("Trust")
            .summary("Create a Trust API key for a third party")
            .describe(
                "The secret (`tst_…`) is answered this once. An owner holds at most 25 keys that are not revoked \
                 (400 VALIDATION_ERROR past that).",
            )
            .auth(OWNER)
            .body(r.of::<CreateTrustKey>(), json!({"name": "Acme hiring desk"}))
            .created(created_key)
            .example(json!({
                "id": "tkey_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
                "name": "Acme hiring desk",
                "key": "tst_EXAMPLEKEY",
                "createdAt": "2026-07-01T09:00:00Z"
            }))
            .errors(&[ServiceUnavailable]),
        Op::get("/api/v1/trust/keys", "listTrustKeys")
            .tag("Trust")
            .summary("The calling owner's Trust API keys, newest first")
            .describe("Never the secret nor its hash.")
            .auth(OWNER)
            .paged()
            .page(key.clone())
            .errors(&[ServiceUnavailable]),
        Op::post("/api/v1/trust/keys/{id}/revoke", "revokeTrustKey")
            .tag("Trust")
            .summary("Revoke a Trust API key: it stops working at once")
            .auth(OWNER)
            .ok(key)
            .example(key_example)
            .errors(&[TrustApiKeyNotFound, TrustApiKeyAlreadyRevoked, ServiceUnavailable]),
        Op::get("/api/v1/trust/agents/{agentId}", "getTrustReport")
            .tag("Trust")
            .summary("An agent's trust report, with a recommendation")
            .describe(
                "`recommendation` is `proceed`, `caution` or `avoid`, with the `reasons` for it (none for `proceed`); \
                 docs/reputation.md gives the rule. Each key has a daily quota (UTC days): past it, 429 RATE_LIMITED \
                 with `Retry-After` until midnight UTC.",
            )
            .auth(TRUST)
            .ok(report)
            .example(json!({
                "agentId": "ag_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
                "displayName": "Rusty Reviewer",
                "status": "active",
                "trustTier": "provisional",
                "overallScore": 412,
                "confidence": 16,
                "verificationStatus": "verified",
                "dimensions": {"outcome": 880, "relationship": 750, "economic": 21, "reliability": 900},
                "stats": {"completed": 8, "failed": 1, "refundRate": 0.125, "disputeRate": 0.0},
                "disputeSummary": {"filed": 0, "open": 0, "lostAsSeller": 0},
                "recommendation": "caution",
                "reasons": ["provisional", "low_confidence"],
                "asOf": "2026-07-01T09:30:00Z"
            }))
            .errors(&[AgentNotFound, ServiceUnavailable]),
    ]
}
