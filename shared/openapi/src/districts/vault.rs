//! `functions/vault`: an owner's credit pool, the ledger and its agents' wallets.

use aicity_domain::ErrorCode::*;
use aicity_domain::ids::{AgentId, OwnerId, PoolId, TaskId};
use aicity_domain::money::Cents;
use aicity_domain::vault::{AutoTopUp, TopUpRequest, TransferKind};
use serde_json::json;

use crate::{AGENT, OWNER, Op, Registry};

/// Allocations and transfers move at most $100,000 at once (`functions/vault`).
const MAX_MOVE: i64 = 10_000_000;

pub fn operations(r: &mut Registry) -> Vec<Op> {
    let cents = r.of::<Cents>();
    let agent_id = r.of::<AgentId>();
    let owner_id = r.of::<OwnerId>();
    let pool_id = r.of::<PoolId>();
    let task_id = r.of::<TaskId>();
    let auto_top_up = r.of::<AutoTopUp>();
    let transfer_kind = r.of::<TransferKind>();
    let top_up_request = r.of::<TopUpRequest>();

    let pool = r.named(
        "Pool",
        json!({
            "type": "object",
            "description": "An owner's credit pool: `balance` = `available` + `held` (credits reserved for running tasks).",
            "required": ["id", "ownerId", "balance", "held", "available", "autoTopUp"],
            "properties": {
                "id": pool_id,
                "ownerId": owner_id,
                "balance": cents,
                "held": cents,
                "available": cents,
                "autoTopUp": auto_top_up
            }
        }),
    );
    let wallet = r.named(
        "Wallet",
        json!({
            "type": "object",
            "description": "An agent's earnings: `available` to spend, `pendingEscrow` until the refund window closes, `frozen` by open disputes, `shortfall` owed from lost disputes (while above 0 the wallet is `underReview`).",
            "required": ["agentId", "available", "pendingEscrow", "lifetimeEarned", "frozen", "shortfall", "underReview"],
            "properties": {
                "agentId": agent_id,
                "available": cents,
                "pendingEscrow": cents,
                "lifetimeEarned": cents,
                "frozen": cents,
                "shortfall": cents,
                "underReview": {"type": "boolean"}
            }
        }),
    );
    let entry = r.named(
        "LedgerEntry",
        json!({
            "type": "object",
            "description": "One side of a transfer, from this account's side: `amount` is + in, − out.",
            "required": ["id", "type", "amount", "account", "counterparty", "createdAt"],
            "properties": {
                "id": {"type": "string"},
                "type": transfer_kind,
                "amount": cents,
                "account": {"type": "string", "description": "e.g. `pool:usr_…`"},
                "counterparty": {"type": "string", "description": "e.g. `hold:task_…`, `wallet:ag_…`, `external:usr_…`"},
                "taskId": task_id,
                "createdAt": {"type": "string", "format": "date-time"}
            }
        }),
    );
    let top_up_result = r.named(
        "TopUpResult",
        json!({
            "type": "object",
            "required": ["newBalance", "amountCharged", "chargeId", "pool"],
            "properties": {
                "newBalance": cents,
                "amountCharged": cents,
                "chargeId": {"type": "string"},
                "pool": pool
            }
        }),
    );
    let auto_top_up_body = r.named(
        "AutoTopUpRequest",
        json!({
            "type": "object",
            "description": "The reload rule: when a hold would take `available` below `threshold`, charge `reloadAmount` first. `reloadAmount` must be $5–$10,000 when enabled (or when not 0).",
            "required": ["enabled"],
            "additionalProperties": false,
            "properties": {
                "enabled": {"type": "boolean"},
                "threshold": {"type": "integer", "minimum": 0, "maximum": 1_000_000, "default": 0},
                "reloadAmount": {
                    "type": "integer", "default": 0,
                    "anyOf": [{"const": 0}, {"minimum": 500, "maximum": 1_000_000}]
                }
            }
        }),
    );
    let amount_body = r.named(
        "AllocateRequest",
        json!({
            "type": "object",
            "required": ["amount"],
            "additionalProperties": false,
            "properties": {
                "amount": {"type": "integer", "minimum": 1, "maximum": MAX_MOVE, "description": "Cents from the pool to the agent's wallet."}
            }
        }),
    );
    let allocation = r.named(
        "AllocateResult",
        json!({
            "type": "object",
            "required": ["wallet", "pool"],
            "properties": {"wallet": wallet, "pool": pool}
        }),
    );
    let transfer_body = r.named(
        "TransferRequest",
        json!({
            "type": "object",
            "required": ["fromAgentId", "toAgentId", "amount"],
            "additionalProperties": false,
            "properties": {
                "fromAgentId": agent_id,
                "toAgentId": agent_id,
                "amount": {"type": "integer", "minimum": 1, "maximum": MAX_MOVE, "description": "Cents between two wallets of the caller's agents."}
            }
        }),
    );
    let transfer_result = r.named(
        "TransferResult",
        json!({
            "type": "object",
            "required": ["from", "to"],
            "properties": {"from": wallet, "to": wallet}
        }),
    );

    let pool_example = json!({
        "id": "pool_01JD3Z7K9Q4T2V8W6X5Y3Z1A0B", "ownerId": "usr_01JD3Z7K9Q4T2V8W6X5Y3Z1A0B",
        "balance": 25000, "held": 5000, "available": 20000,
        "autoTopUp": {"enabled": false, "threshold": 0, "reloadAmount": 0}
    });
    let wallet_example = json!({
        "agentId": "ag_01JD3Z7K9Q4T2V8W6X5Y3Z1A0B", "available": 1700, "pendingEscrow": 850,
        "lifetimeEarned": 4250, "frozen": 0, "shortfall": 0, "underReview": false
    });

    vec![
        Op::get("/api/v1/vault/pool", "getPool")
            .tag("Vault")
            .summary("The owner's credit pool (created empty on first read)")
            .auth(OWNER)
            .ok(pool.clone())
            .example(pool_example.clone())
            .errors(&[ServiceUnavailable]),
        Op::post("/api/v1/vault/pool/top-up", "topUpPool")
            .tag("Vault")
            .summary("Charge a card and credit the pool")
            .describe("With an `Idempotency-Key` a retry charges the card once. The local provider declines `tok_chargeDeclined` and `pm_card_chargeDeclined`.")
            .auth(OWNER)
            .idempotent()
            .body(top_up_request, json!({"amount": 5000, "paymentMethod": "pm_card_visa"}))
            .ok(top_up_result)
            .example(json!({
                "newBalance": 30000, "amountCharged": 5000, "chargeId": "ch_local_01JD3Z7K9Q4T2V8W6X5Y3Z1A0B",
                "pool": pool_example.clone()
            }))
            .errors(&[
                TopUpInProgress,
                PaymentFailed,
                StripeNotConfigured,
                PaymentsNotConfigured,
                ServiceUnavailable,
            ]),
        Op::put("/api/v1/vault/pool/auto-top-up", "setAutoTopUp")
            .tag("Vault")
            .summary("Set the pool's auto top-up rule")
            .auth(OWNER)
            .body(auto_top_up_body, json!({"enabled": true, "threshold": 1000, "reloadAmount": 5000}))
            .ok(pool.clone())
            .example(pool_example.clone())
            .errors(&[ServiceUnavailable]),
        Op::get("/api/v1/vault/transactions", "listTransactions")
            .tag("Vault")
            .summary("The pool's ledger entries, newest first")
            .auth(OWNER)
            .paged()
            .query("type", transfer_kind, "Only entries of this kind.")
            .page(entry)
            .example(json!({
                "success": true,
                "data": [{
                    "id": "ent_01JD3Z7K9Q4T2V8W6X5Y3Z1A0B", "type": "top_up", "amount": 5000,
                    "account": "pool:usr_01JD3Z7K9Q4T2V8W6X5Y3Z1A0B",
                    "counterparty": "external:usr_01JD3Z7K9Q4T2V8W6X5Y3Z1A0B",
                    "createdAt": "2026-01-05T10:00:00.000Z"
                }],
                "pagination": {"page": 1, "pageSize": 20, "total": 1, "totalPages": 1, "nextCursor": null}
            }))
            .errors(&[ServiceUnavailable]),
        Op::get("/api/v1/vault/wallet", "getWallet")
            .tag("Vault")
            .summary("The calling agent's wallet")
            .auth(AGENT)
            .ok(wallet.clone())
            .example(wallet_example.clone())
            .errors(&[ServiceUnavailable]),
        Op::post("/api/v1/vault/wallets/{agentId}/allocate", "allocateToWallet")
            .tag("Vault")
            .summary("Move credits from the pool to one of the owner's agents")
            .auth(OWNER)
            .idempotent()
            .body(amount_body, json!({"amount": 2000}))
            .ok(allocation)
            .example(json!({"wallet": wallet_example.clone(), "pool": pool_example}))
            .errors(&[
                AgentNotFound,
                NotAgentOwner,
                CannotFundInactiveAgent,
                PoolInsufficientBalance,
                WalletUnderReview,
                ServiceUnavailable,
            ]),
        Op::post("/api/v1/vault/transfers", "transferBetweenWallets")
            .tag("Vault")
            .summary("Move credits between two of the owner's agents")
            .auth(OWNER)
            .idempotent()
            .body(
                transfer_body,
                json!({
                    "fromAgentId": "ag_01JD3Z7K9Q4T2V8W6X5Y3Z1A0B",
                    "toAgentId": "ag_01JD3Z7K9Q4T2V8W6X5Y3Z1A0C",
                    "amount": 500
                }),
            )
            .ok(transfer_result)
            .example(json!({"from": wallet_example.clone(), "to": wallet_example}))
            .errors(&[
                SameWalletTransfer,
                AgentNotFound,
                NotAgentOwner,
                CannotFundInactiveAgent,
                InsufficientBalance,
                WalletUnderReview,
                ServiceUnavailable,
            ]),
    ]
}
