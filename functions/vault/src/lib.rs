//! `vault`: the owner's credit pool and the agents' wallets.
//!
//! - `GET  /api/v1/vault/pool` (owner): the pool, created empty on first read
//! - `POST /api/v1/vault/pool/top-up` (owner, `Idempotency-Key`): card → pool
//! - `PUT  /api/v1/vault/pool/auto-top-up` (owner): the reload rule
//! - `GET  /api/v1/vault/transactions` (owner): the pool's ledger entries, newest first
//! - `GET  /api/v1/vault/wallet` (agent): its earnings and escrow
//! - `POST /api/v1/vault/wallets/{agentId}/allocate` (owner, `Idempotency-Key`): pool → own agent
//! - `POST /api/v1/vault/transfers` (owner, `Idempotency-Key`): between two of its agents

use aicity_domain::embassy::AuditTarget;
use aicity_domain::identity::AgentStatus;
use aicity_domain::ids::AgentId;
use aicity_domain::money::Cents;
use aicity_domain::validate::{Validate, check_range};
use aicity_domain::vault::{Account, AutoTopUp, TopUpRequest, TransferKind};
use aicity_domain::{ApiError, ErrorCode, FieldError};
use aicity_http::audit::Auditor;
use aicity_http::auth::{self, OwnerCaller};
use aicity_http::idempotency::idempotent;
use aicity_http::request::query_param;
use aicity_http::{Context, PageRequest, json_body, listed, ok, path_param, route_key};
use aicity_store::agents::{self, AgentRecord};
use aicity_store::{StoreError, vault as ledger_store};
use aicity_vault::PaymentProvider;
use aicity_vault::service;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;

const MAX_BODY: usize = 4 * 1024;
/// Allocations and transfers move at most $100,000 at once.
const MAX_MOVE: i64 = 10_000_000;

pub struct Vault {
    pub ctx: Context,
    pub payments: Box<dyn PaymentProvider>,
}

pub async fn handle(vault: &Vault, request: Request) -> Result<Response<Body>, ApiError> {
    let ctx = &vault.ctx;
    match route_key(&request).as_deref() {
        Some("GET /api/v1/vault/pool") => get_pool(ctx, &request).await,
        Some("POST /api/v1/vault/pool/top-up") => top_up(vault, &request).await,
        Some("PUT /api/v1/vault/pool/auto-top-up") => auto_top_up(ctx, &request).await,
        Some("GET /api/v1/vault/transactions") => transactions(ctx, &request).await,
        Some("GET /api/v1/vault/wallet") => wallet(ctx, &request).await,
        Some("POST /api/v1/vault/wallets/{agentId}/allocate") => allocate(ctx, &request).await,
        Some("POST /api/v1/vault/transfers") => transfer(ctx, &request).await,
        _ => Err(ApiError::new(ErrorCode::NotFound)),
    }
}

async fn get_pool(ctx: &Context, request: &Request) -> Result<Response<Body>, ApiError> {
    let owner = auth::owner(ctx, request).await?;
    ok(ledger_store::pool(ctx.db(), &ctx.table, &owner.owner.id).await?)
}

async fn top_up(vault: &Vault, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &vault.ctx;
    let owner = auth::owner(ctx, request).await?;
    let scope = format!("{}:top-up", owner.owner.id);
    idempotent(ctx, request, &scope, |_operation| async {
        let body: TopUpRequest = json_body(request, MAX_BODY)?;
        // With an Idempotency-Key the provider sees the same key on a retry; without
        // one every request is a new charge.
        let charge_key = match request
            .headers()
            .get(aicity_http::idempotency::IDEMPOTENCY_KEY_HEADER)
        {
            Some(key) => format!(
                "topup:{}:{}",
                owner.owner.id,
                key.to_str().unwrap_or_default()
            ),
            None => format!("topup:{}", aicity_domain::ids::TransferId::new()),
        };
        // Written by whichever transaction credits the charge (this one, a retry, the
        // sweeper), with the amount charged; the target is the pool credited.
        let audit = Auditor::owner(owner.owner.id, request).entry(
            "pool.topped_up",
            AuditTarget::new("pool", owner.owner.id),
            None,
            json!({ "requested": body.amount }),
        );
        let (pool, charged, charge_id) = service::top_up(
            ctx.db(),
            &ctx.table,
            vault.payments.as_ref(),
            &owner.owner.id,
            Cents(body.amount),
            body.payment_method,
            &charge_key,
            Some(audit),
        )
        .await?;
        ok(json!({
            "newBalance": pool.balance,
            "amountCharged": charged,
            "chargeId": charge_id,
            "pool": pool,
        }))
    })
    .await
}

async fn auto_top_up(ctx: &Context, request: &Request) -> Result<Response<Body>, ApiError> {
    let owner = auth::owner(ctx, request).await?;
    let rule: AutoTopUpBody = json_body(request, MAX_BODY)?;
    let rule = AutoTopUp {
        enabled: rule.enabled,
        threshold: Cents(rule.threshold),
        reload_amount: Cents(rule.reload_amount),
    };
    let auditor = Auditor::owner(owner.owner.id, request);
    let audit = |before: &ledger_store::Pool| {
        let entry = auditor.entry(
            "pool.auto_top_up_configured",
            AuditTarget::new("pool", before.id),
            None,
            json!({ "before": before.auto_top_up, "after": rule }),
        );
        Ok(vec![aicity_store::embassy::audit_item(&ctx.table, &entry)?])
    };
    ok(
        ledger_store::set_auto_top_up_with(ctx.db(), &ctx.table, &owner.owner.id, &rule, audit)
            .await?,
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AutoTopUpBody {
    enabled: bool,
    #[serde(default)]
    threshold: i64,
    #[serde(default)]
    reload_amount: i64,
}

impl Validate for AutoTopUpBody {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        AutoTopUp {
            enabled: self.enabled,
            threshold: Cents(self.threshold),
            reload_amount: Cents(self.reload_amount),
        }
        .validate(errors);
    }
}

async fn transactions(ctx: &Context, request: &Request) -> Result<Response<Body>, ApiError> {
    let owner = auth::owner(ctx, request).await?;
    let page = PageRequest::from_request(request)?;
    let kind = match query_param(request, "type") {
        None => None,
        Some(raw) => Some(TransferKind::parse(&raw).ok_or_else(|| {
            let kinds: Vec<&str> = TransferKind::ALL.iter().map(|k| k.as_str()).collect();
            ApiError::invalid_field("type", format!("must be one of {}", kinds.join(", ")))
        })?),
    };
    let entries = ledger_store::entries(
        ctx.db(),
        &ctx.table,
        &Account::Pool(owner.owner.id),
        kind,
        &page.ask(),
    )
    .await?;
    listed(entries)
}

async fn wallet(ctx: &Context, request: &Request) -> Result<Response<Body>, ApiError> {
    let agent = auth::agent(ctx, request).await?;
    ok(ledger_store::wallet(ctx.db(), &ctx.table, &agent.agent.id).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Amount {
    amount: i64,
}

impl Validate for Amount {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_range(errors, "amount", self.amount, 1, MAX_MOVE);
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TransferBody {
    from_agent_id: AgentId,
    to_agent_id: AgentId,
    amount: i64,
}

impl Validate for TransferBody {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_range(errors, "amount", self.amount, 1, MAX_MOVE);
    }
}

/// An agent of the calling owner that may receive funds.
async fn own_agent(
    ctx: &Context,
    owner: &OwnerCaller,
    id: &AgentId,
) -> Result<AgentRecord, ApiError> {
    let record = match agents::get(ctx.db(), &ctx.table, id).await {
        Ok(record) => record,
        Err(StoreError::NotFound) => {
            return Err(ApiError::with_message(
                ErrorCode::AgentNotFound,
                format!("No agent {id}"),
            ));
        }
        Err(err) => return Err(err.into()),
    };
    if !auth::owns(&owner.owner, &record.agent) {
        return Err(ApiError::with_message(
            ErrorCode::NotAgentOwner,
            "Both agents must belong to you",
        ));
    }
    Ok(record)
}

fn must_be_active(record: &AgentRecord) -> Result<(), ApiError> {
    if record.agent.status == AgentStatus::Active {
        Ok(())
    } else {
        Err(ApiError::with_message(
            ErrorCode::CannotFundInactiveAgent,
            "Reactivate the agent before funding it",
        ))
    }
}

/// `Idempotency-Key` works here as on top-ups: a client that retries after a timeout
/// moves the money once.
async fn allocate(ctx: &Context, request: &Request) -> Result<Response<Body>, ApiError> {
    let owner = auth::owner(ctx, request).await?;
    let scope = format!("{}:allocate", owner.owner.id);
    idempotent(ctx, request, &scope, |operation| {
        allocate_once(ctx, &owner, request, operation)
    })
    .await
}

async fn allocate_once(
    ctx: &Context,
    owner: &OwnerCaller,
    request: &Request,
    operation: Option<String>,
) -> Result<Response<Body>, ApiError> {
    let agent_id: AgentId = path_param(request, "agentId")?
        .parse()
        .map_err(|_| ApiError::with_message(ErrorCode::AgentNotFound, "No such agent"))?;
    let body: Amount = json_body(request, MAX_BODY)?;
    let record = own_agent(ctx, owner, &agent_id).await?;
    must_be_active(&record)?;
    let audit = Auditor::owner(owner.owner.id, request).entry(
        "wallet.allocated",
        AuditTarget::new("wallet", agent_id),
        Some(agent_id),
        json!({ "amount": body.amount, "agentId": agent_id }),
    );
    service::allocate(
        ctx.db(),
        &ctx.table,
        &owner.owner.id,
        &agent_id,
        Cents(body.amount),
        operation.as_deref(),
        audit,
    )
    .await?;
    ok(json!({
        "wallet": ledger_store::wallet(ctx.db(), &ctx.table, &agent_id).await?,
        "pool": ledger_store::pool(ctx.db(), &ctx.table, &owner.owner.id).await?,
    }))
}

async fn transfer(ctx: &Context, request: &Request) -> Result<Response<Body>, ApiError> {
    let owner = auth::owner(ctx, request).await?;
    let scope = format!("{}:transfer", owner.owner.id);
    idempotent(ctx, request, &scope, |operation| {
        transfer_once(ctx, &owner, request, operation)
    })
    .await
}

async fn transfer_once(
    ctx: &Context,
    owner: &OwnerCaller,
    request: &Request,
    operation: Option<String>,
) -> Result<Response<Body>, ApiError> {
    let body: TransferBody = json_body(request, MAX_BODY)?;
    if body.from_agent_id == body.to_agent_id {
        return Err(ApiError::with_message(
            ErrorCode::SameWalletTransfer,
            "Source and destination must be different agents",
        ));
    }
    own_agent(ctx, owner, &body.from_agent_id).await?;
    let destination = own_agent(ctx, owner, &body.to_agent_id).await?;
    must_be_active(&destination)?;
    // The source wallet is the target (and its agent the one `?agentId=` finds); the
    // destination is in the details.
    let audit = Auditor::owner(owner.owner.id, request).entry(
        "wallet.transferred",
        AuditTarget::new("wallet", body.from_agent_id),
        Some(body.from_agent_id),
        json!({
            "amount": body.amount,
            "fromAgentId": body.from_agent_id,
            "toAgentId": body.to_agent_id,
        }),
    );
    service::transfer(
        ctx.db(),
        &ctx.table,
        &body.from_agent_id,
        &body.to_agent_id,
        Cents(body.amount),
        operation.as_deref(),
        audit,
    )
    .await?;
    ok(json!({
        "from": ledger_store::wallet(ctx.db(), &ctx.table, &body.from_agent_id).await?,
        "to": ledger_store::wallet(ctx.db(), &ctx.table, &body.to_agent_id).await?,
    }))
}
