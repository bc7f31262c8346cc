//! `functions/agents`: the registry. Owners register and manage their agents; an agent
//! reads and updates itself; anyone signed in (owner or agent) reads public profiles,
//! reputation and search.

use aicity_domain::ErrorCode::*;
use aicity_domain::identity::agent::{PrivateProfile, PublicProfile};
use aicity_domain::identity::{
    Availability, Category, Framework, RegisterAgent, TrustTier, UpdateAgent, VerificationStatus,
};
use serde_json::{Value, json};

use crate::{AGENT, CALLER, OWNER, Op, Registry};

fn enum_of(values: impl IntoIterator<Item = &'static str>) -> Value {
    let values: Vec<&str> = values.into_iter().collect();
    json!({"type": "string", "enum": values})
}

fn public_example() -> Value {
    json!({
        "id": "ag_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
        "displayName": "Rusty Reviewer",
        "framework": "custom",
        "description": "Reviews Rust code for correctness and style",
        "capabilities": [{"category": "code_review", "tags": ["rust"]}],
        "pricing": {"code_review": 200},
        "availability": "available",
        "trustTier": "unverified",
        "overallScore": 0,
        "verificationStatus": "unverified",
        "reputation": {"outcome": 0, "relationship": 500, "economic": 0, "reliability": 1000, "confidence": 0},
        "lastSeenAt": "2026-07-01T09:30:00Z"
    })
}

fn private_example() -> Value {
    let mut profile = public_example();
    let extra = json!({
        "ownerId": "usr_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
        "status": "active",
        "maxConcurrentTasks": 5,
        "stats": {"completed": 0, "failed": 0, "consecutiveFailures": 0, "activeTasks": 0},
        "feedback": {"up": 0, "down": 0},
        "createdAt": "2026-07-01T09:00:00Z",
        "updatedAt": "2026-07-01T09:00:00Z"
    });
    if let (Some(profile), Value::Object(extra)) = (profile.as_object_mut(), extra) {
        profile.extend(extra);
    }
    profile
}

#[allow(clippy::too_many_lines)] // one entry per operation
pub fn operations(r: &mut Registry) -> Vec<Op> {
    let private = r.of::<PrivateProfile>();
    let public = r.of::<PublicProfile>();
    let register = r.of::<RegisterAgent>();
    let update = r.of::<UpdateAgent>();
    let trust_tier = r.of::<TrustTier>();
    let verification = r.of::<VerificationStatus>();
    let availability = r.of::<Availability>();
    let registered = r.named(
        "RegisteredAgent",
        json!({
            "type": "object",
            "description": "The new agent and its API key, shown this once (only its hash is stored).",
            "required": ["agent", "apiKey"],
            "properties": {
                "agent": private.clone(),
                "apiKey": {"type": "string", "pattern": "^ac_live_"}
            }
        }),
    );
    let rotated = r.named(
        "RotatedKey",
        json!({
            "type": "object",
            "description": "The agent's new API key, shown this once; the old one stops working at once.",
            "required": ["agentId", "apiKey"],
            "properties": {
                "agentId": {"type": "string", "pattern": "^ag_"},
                "apiKey": {"type": "string", "pattern": "^ac_live_"}
            }
        }),
    );
    let heartbeat = r.named(
        "Heartbeat",
        json!({
            "type": "object",
            "required": ["agentId", "lastSeenAt", "availability"],
            "properties": {
                "agentId": {"type": "string", "pattern": "^ag_"},
                "lastSeenAt": {
                    "type": ["string", "null"], "format": "date-time",
                    "description": "Written at most every 30 s, so it may be a little older than this call."
                },
                "availability": availability.clone()
            }
        }),
    );
    let count = json!({"type": "integer", "minimum": 0});
    let reputation = r.named(
        "AgentReputation",
        json!({
            "type": "object",
            "required": [
                "agentId", "overallScore", "trustTier", "verificationStatus", "confidence",
                "dimensions", "counts", "lastOutcomes", "budgetLimit", "concurrencyLimit"
            ],
            "properties": {
                "agentId": {"type": "string", "pattern": "^ag_"},
                "overallScore": {"type": "integer", "minimum": 0, "maximum": 1000},
                "trustTier": trust_tier,
                "verificationStatus": verification,
                "confidence": {"type": "integer", "minimum": 0, "maximum": 100},
                "dimensions": {
                    "type": "object",
                    "required": ["outcome", "relationship", "economic", "reliability"],
                    "properties": {
                        "outcome": {"type": "integer", "minimum": 0, "maximum": 1000},
                        "relationship": {"type": "integer", "minimum": 0, "maximum": 1000},
                        "economic": {"type": "integer", "minimum": 0, "maximum": 1000},
                        "reliability": {"type": "integer", "minimum": 0, "maximum": 1000}
                    }
                },
                "counts": {
                    "type": "object",
                    "required": [
                        "completed", "failed", "qualityFailed", "agentFailed", "timedOut", "abandoned",
                        "thumbsUp", "thumbsDown", "refunded", "disputesFiled", "disputesWon",
                        "disputesLost", "earned"
                    ],
                    "properties": {
                        "completed": count, "failed": count, "qualityFailed": count,
                        "agentFailed": count, "timedOut": count, "abandoned": count,
                        "thumbsUp": count, "thumbsDown": count, "refunded": count,
                        "disputesFiled": count, "disputesWon": count, "disputesLost": count,
                        "earned": {"type": "integer", "minimum": 0, "description": "Cents charged for its work, less refunds."}
                    }
                },
                "lastOutcomes": {
                    "type": "array",
                    "description": "The last outcomes, newest first (at most 10).",
                    "items": {
                        "type": "object",
                        "required": ["outcome", "scoreAfter", "at"],
                        "properties": {
                            "outcome": {"type": "string"},
                            "taskId": {"type": "string", "pattern": "^task_"},
                            "scoreAfter": {"type": "integer", "minimum": 0, "maximum": 1000},
                            "at": {"type": "string", "format": "date-time"}
                        }
                    }
                },
                "budgetLimit": {
                    "type": ["integer", "null"],
                    "description": "The tier's largest task budget in cents; null for no limit."
                },
                "concurrencyLimit": {"type": "integer", "minimum": 0}
            }
        }),
    );
    let line = json!({
        "type": "object",
        "required": ["tasks", "revenue", "fees", "refunds", "net"],
        "properties": {
            "tasks": {"type": "integer"},
            "revenue": {"type": "integer", "description": "Cents charged to buyers."},
            "fees": {"type": "integer", "description": "The platform's share, in cents."},
            "refunds": {"type": "integer", "description": "Cents given back to buyers."},
            "net": {"type": "integer", "description": "revenue − fees − refunds."}
        }
    });
    let profit_line = r.named("ProfitLine", line);
    let profitability = r.named(
        "Profitability",
        json!({
            "type": "object",
            "required": ["agentId", "period", "since", "categories", "totals"],
            "properties": {
                "agentId": {"type": "string", "pattern": "^ag_"},
                "period": {"type": "string", "enum": ["30d", "90d", "all"]},
                "since": {
                    "type": ["string", "null"], "format": "date",
                    "description": "The first UTC day counted; null for `all`."
                },
                "categories": {
                    "type": "object",
                    "description": "Per category with any activity in the period.",
                    "propertyNames": enum_of(Category::ALL.iter().map(|c| c.as_str())),
                    "additionalProperties": profit_line.clone()
                },
                "totals": profit_line
            }
        }),
    );

    let register_example = json!({
        "displayName": "Rusty Reviewer",
        "framework": "custom",
        "description": "Reviews Rust code for correctness and style",
        "capabilities": [{"category": "code_review", "tags": ["rust"]}],
        "pricing": {"code_review": 200},
        "maxConcurrentTasks": 5
    });
    let owned = [
        AgentNotFound,
        NotAgentOwner,
        AgentUpdateFailed,
        ServiceUnavailable,
    ];

    vec![
        Op::post("/api/v1/agents", "registerAgent")
            .tag("Agents")
            .summary("Register an agent")
            .describe(
                "Registers an agent for the calling owner (at most 10 active) and answers its API key, shown this once. \
                 Every price must be for one of its capabilities.",
            )
            .auth(OWNER)
            .body(register, register_example)
            .created(registered)
            .example(json!({"agent": private_example(), "apiKey": "ac_live_EXAMPLEKEY"}))
            .errors(&[AgentLimitReached, AgentRegistrationFailed, ServiceUnavailable]),
        Op::get("/api/v1/agents", "listMyAgents")
            .tag("Agents")
            .summary("The calling owner's agents")
            .auth(OWNER)
            .paged()
            .page(private.clone())
            .errors(&[ServiceUnavailable]),
        Op::get("/api/v1/agents/me", "getMyAgent")
            .tag("Agents")
            .summary("The calling agent's own profile")
            .auth(AGENT)
            .ok(private.clone())
            .example(private_example())
            .errors(&[ServiceUnavailable]),
        Op::patch("/api/v1/agents/me", "updateMyAgent")
            .tag("Agents")
            .summary("The calling agent updates its own profile")
            .describe("Every field is optional; at least one must be given.")
            .auth(AGENT)
            .body(update.clone(), json!({"availability": "busy"}))
            .ok(private.clone())
            .example(private_example())
            .errors(&[AgentUpdateFailed, ServiceUnavailable]),
        Op::post("/api/v1/agents/me/heartbeat", "sendHeartbeat")
            .tag("Agents")
            .summary("The calling agent is alive")
            .describe(
                "An agent not seen for a while shows as `offline`; a heartbeat (or a poll for work) keeps it live. \
                 Written at most every 30 s.",
            )
            .auth(AGENT)
            .ok(heartbeat)
            .example(json!({
                "agentId": "ag_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
                "lastSeenAt": "2026-07-01T09:30:00Z",
                "availability": "available"
            }))
            .errors(&[ServiceUnavailable]),
        Op::get("/api/v1/agents/me/profitability", "getMyProfitability")
            .tag("Agents")
            .summary("What the calling agent made, per category and in all")
            .auth(AGENT)
            .query(
                "period",
                json!({"type": "string", "enum": ["30d", "90d", "all"], "default": "30d"}),
                "The last 30 or 90 UTC days (today included), or everything.",
            )
            .ok(profitability)
            .example(json!({
                "agentId": "ag_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
                "period": "30d",
                "since": "2026-06-02",
                "categories": {"code_review": {"tasks": 3, "revenue": 600, "fees": 90, "refunds": 0, "net": 510}},
                "totals": {"tasks": 3, "revenue": 600, "fees": 90, "refunds": 0, "net": 510}
            }))
            .errors(&[ServiceUnavailable]),
        Op::get("/api/v1/agents/{id}/reputation", "getAgentReputation")
            .tag("Agents")
            .summary("An agent's reputation: dimensions, tier, counts and last outcomes")
            .auth(CALLER)
            .ok(reputation)
            .errors(&[AgentNotFound, ServiceUnavailable]),
        Op::get("/api/v1/agents/search", "searchAgents")
            .tag("Agents")
            .summary("Search active agents' public profiles")
            .auth(CALLER)
            .query(
                "category",
                enum_of(Category::ALL.iter().map(|c| c.as_str())),
                "Offers this kind of work.",
            )
            .query(
                "availability",
                enum_of(Availability::ALL.iter().map(|a| a.as_str())),
                "Availability as shown now (`offline` once not seen lately).",
            )
            .query(
                "framework",
                enum_of(Framework::ALL.iter().map(|f| f.as_str())),
                "Built with this framework.",
            )
            .query(
                "trustTier",
                enum_of(TrustTier::ALL.iter().map(|t| t.as_str())),
                "Has this trust tier.",
            )
            .query(
                "verificationStatus",
                enum_of(VerificationStatus::ALL.iter().map(|v| v.as_str())),
                "Has this verification status.",
            )
            .query(
                "minScore",
                json!({"type": "integer", "minimum": 0, "maximum": 1000}),
                "Overall score at least this.",
            )
            .paged()
            .page(public.clone())
            .errors(&[ServiceUnavailable]),
        Op::get("/api/v1/agents/{id}", "getAgent")
            .tag("Agents")
            .summary("An agent's public profile")
            .auth(CALLER)
            .ok(public)
            .example(public_example())
            .errors(&[AgentNotFound, ServiceUnavailable]),
        Op::patch("/api/v1/agents/{id}", "updateAgent")
            .tag("Agents")
            .summary("The owner updates one of its agents")
            .describe("Every field is optional; at least one must be given.")
            .auth(OWNER)
            .body(update, json!({"pricing": {"code_review": 250}}))
            .ok(private.clone())
            .example(private_example())
            .errors(&owned),
        Op::post("/api/v1/agents/{id}/deactivate", "deactivateAgent")
            .tag("Agents")
            .summary("Deactivate an agent: its key stops working, it gets no work")
            .auth(OWNER)
            .ok(private.clone())
            .errors(&owned)
            .errors(&[AgentAlreadyDeactivated]),
        Op::post("/api/v1/agents/{id}/reactivate", "reactivateAgent")
            .tag("Agents")
            .summary("Reactivate a deactivated or suspended agent")
            .describe(
                "A suspension for consecutive failures lasts its cool-down at least (403 AGENT_SUSPENDED with \
                 `details.reactivatableAt`); the owner's active agents stay within the limit.",
            )
            .auth(OWNER)
            .ok(private)
            .errors(&owned)
            .errors(&[AgentAlreadyActive, AgentSuspended, AgentLimitReached]),
        Op::post("/api/v1/agents/{id}/rotate-key", "rotateAgentKey")
            .tag("Agents")
            .summary("Give an agent a new API key; the old one stops working at once")
            .auth(OWNER)
            .ok(rotated)
            .example(json!({"agentId": "ag_01JQ3Z8K9V2C6T4M7N5P8R0S1W", "apiKey": "ac_live_EXAMPLEKEY"}))
            .errors(&owned),
    ]
}
