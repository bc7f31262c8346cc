//! The vault's operations in API terms: what the vault and tasks functions call.

use aicity_domain::embassy::{AuditActor, AuditEntry, AuditTarget};
use aicity_domain::ids::{AgentId, OwnerId, TaskId};
use aicity_domain::money::Cents;
use aicity_domain::vault::ledger;
use aicity_domain::{ApiError, ErrorCode};
use aicity_store::faults;
use aicity_store::payment_intents::{self, Intent, IntentKind, IntentStatus};
use aicity_store::vault::{self, Pool, VaultError};
use aws_sdk_dynamodb::Client;
use serde_json::json;
use time::OffsetDateTime;

use crate::payments::{ChargeRequest, DEFAULT_PAYMENT_METHOD, PaymentError, PaymentProvider};

/// Which balance an operation spends, for naming its shortfall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spending {
    /// A task hold: 402 `INSUFFICIENT_CREDITS`.
    TaskHold,
    /// Owner pool → agent wallet: 400 `POOL_INSUFFICIENT_BALANCE`.
    Allocation,
    /// Wallet → wallet: 400 `INSUFFICIENT_BALANCE`.
    WalletTransfer,
}

/// Maps a vault failure to the seed's error for that kind of spending, with
/// `{required, available}` details on shortfalls.
pub fn api_error(err: VaultError, spending: Spending) -> ApiError {
    match err {
        VaultError::Insufficient {
            required,
            available,
            ..
        } => {
            let (code, message) = match spending {
                Spending::TaskHold => (
                    ErrorCode::InsufficientCredits,
                    "Not enough credits in the pool for this budget",
                ),
                Spending::Allocation => (
                    ErrorCode::PoolInsufficientBalance,
                    "The owner's pool balance is too low",
                ),
                Spending::WalletTransfer => (
                    ErrorCode::InsufficientBalance,
                    "Source wallet balance too low",
                ),
            };
            ApiError::with_message(code, message)
                .details(json!({ "required": required, "available": available }))
        }
        VaultError::UnderReview { agent } => ApiError::with_message(
            ErrorCode::WalletUnderReview,
            "The wallet owes a disputed earning; its next earnings repay it first",
        )
        .details(json!({ "agentId": agent })),
        VaultError::Invalid(reason) => ApiError::invalid_field("amount", reason),
        VaultError::AlreadyDone | VaultError::WrongState(_) => {
            ApiError::new(ErrorCode::InvalidTaskState)
        }
        VaultError::Store(err) => err.into(),
    }
}

pub fn payment_error(err: PaymentError) -> ApiError {
    match err {
        // Only the mapped reason, never the provider's text.
        PaymentError::Declined(reason) => {
            ApiError::with_message(ErrorCode::PaymentFailed, "The payment failed")
                .details(json!({ "reason": reason.as_str() }))
        }
        PaymentError::Unavailable(cause) => {
            tracing::error!(cause, "payment provider unavailable");
            ApiError::new(ErrorCode::PaymentFailed)
        }
        PaymentError::NotConfigured(cause) => {
            tracing::error!(cause, "payment provider not configured");
            ApiError::new(ErrorCode::StripeNotConfigured)
        }
        PaymentError::Disabled(cause) => {
            tracing::error!(cause, "no payment provider enabled");
            ApiError::new(ErrorCode::PaymentsNotConfigured)
        }
        PaymentError::Processing(_) => ApiError::with_message(
            ErrorCode::TopUpInProgress,
            "The payment is still processing; the pool is credited once it succeeds \
             (retry with the same Idempotency-Key to see the result)",
        ),
    }
}

/// Charges the card and credits the pool, once per `idempotency_key`: the intent is
/// recorded first, the provider charges once per key, and the credit moves the intent
/// to `credited` in the same transaction, so however often this runs (a retry, a
/// crash in between, the sweeper) the pool gets the money exactly once.
///
/// `audit` (`pool.topped_up` by the owner who asked) is kept on the intent and written
/// by whichever transaction credits it, exactly once; without one, the credit records
/// the owner's `pool.topped_up` with no request id.
#[allow(clippy::too_many_arguments)] // the charge, its key and who asked for it
pub async fn top_up(
    db: &Client,
    table: &str,
    provider: &dyn PaymentProvider,
    owner: &OwnerId,
    amount: Cents,
    payment_method: Option<String>,
    idempotency_key: &str,
    audit: Option<AuditEntry>,
) -> Result<(Pool, Cents, String), ApiError> {
    let mut intent = Intent::new(
        idempotency_key,
        *owner,
        amount,
        payment_method.unwrap_or_else(|| DEFAULT_PAYMENT_METHOD.to_owned()),
        IntentKind::TopUp,
        OffsetDateTime::now_utc(),
    );
    if let Some(audit) = audit {
        intent = intent.audited(audit);
    }
    let intent = payment_intents::open(db, table, &intent).await?;
    if intent.owner_id != *owner {
        tracing::error!("a payment intent key was reused across owners");
        return Err(ApiError::internal());
    }
    drive(db, table, provider, &intent).await
}

/// Takes an intent as far as it can go now: charge (or ask about a processing charge),
/// then credit once. What it cannot finish stays recorded for the next try.
pub async fn drive(
    db: &Client,
    table: &str,
    provider: &dyn PaymentProvider,
    intent: &Intent,
) -> Result<(Pool, Cents, String), ApiError> {
    let owner = &intent.owner_id;
    if let (IntentStatus::Credited, Some(charge_id)) = (intent.status, &intent.charge_id) {
        let pool = vault::pool(db, table, owner).await?;
        return Ok((pool, intent.amount, charge_id.clone()));
    }
    let request = ChargeRequest {
        owner_id: *owner,
        amount: intent.amount,
        payment_method: intent.payment_method.clone(),
        idempotency_key: intent.key.clone(),
    };
    let charged = match (&intent.status, &intent.charge_id) {
        (IntentStatus::Processing, Some(charge_id)) => provider.retrieve(&request, charge_id).await,
        _ => provider.charge(&request).await,
    };
    let charge = match charged {
        Ok(charge) => charge,
        Err(PaymentError::Processing(charge_id)) => {
            payment_intents::mark_processing(db, table, &intent.key, &charge_id).await?;
            return Err(payment_error(PaymentError::Processing(charge_id)));
        }
        Err(err @ PaymentError::Declined(_)) => {
            payment_intents::discard(db, table, &intent.key).await?;
            return Err(payment_error(err));
        }
        // Maybe charged, maybe not: the intent stays for the reconciliation pass.
        Err(err) => return Err(payment_error(err)),
    };
    if faults::fires(table, faults::point::AFTER_CHARGE_BEFORE_CREDIT) {
        return Err(ApiError::internal());
    }
    match vault::top_up(
        db,
        table,
        owner,
        charge.amount,
        &intent.key,
        &charge.id,
        OffsetDateTime::now_utc(),
    )
    .await
    {
        Ok(()) | Err(VaultError::AlreadyDone) => {}
        Err(err) => {
            // Charged but not credited: the intent stays pending, and a retry, the next
            // auto top-up or the sweeper credits it.
            tracing::error!(charge_id = charge.id, error = %err, "charge not credited yet");
            return Err(match err {
                VaultError::Store(err) => err.into(),
                _ => ApiError::internal(),
            });
        }
    }
    let pool = vault::pool(db, table, owner).await?;
    Ok((pool, charge.amount, charge.id))
}

/// What one reconciliation pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reconciled {
    pub credited: usize,
    pub processing: usize,
    pub declined: usize,
    pub failed: usize,
}

/// The sweeper's pass over intents older than `cutoff` (epoch seconds) that nobody
/// finished: each is charged again under its own key (the provider charges once) or
/// asked about, and credited once.
pub async fn reconcile(
    db: &Client,
    table: &str,
    provider: &dyn PaymentProvider,
    cutoff: i64,
) -> Result<Reconciled, ApiError> {
    let mut report = Reconciled::default();
    for intent in payment_intents::unsettled_before(db, table, cutoff).await? {
        match drive(db, table, provider, &intent).await {
            Ok(_) => report.credited += 1,
            Err(err) if err.code == ErrorCode::TopUpInProgress => report.processing += 1,
            Err(err) if !err.is_retryable() => report.declined += 1,
            Err(err) => {
                tracing::warn!(code = %err.code, "payment intent not reconciled yet");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

/// The platform's `pool.auto_topped_up` for `owner`, as [`auto_top_up_before_hold`]
/// takes it: a submit names its request and, when an agent submitted, that agent.
pub fn auto_top_up_entry(
    owner: &OwnerId,
    request_id: Option<String>,
    agent: Option<AgentId>,
    task: Option<&TaskId>,
) -> AuditEntry {
    AuditEntry {
        id: aicity_store::embassy::new_id(aicity_domain::embassy::AUDIT_PREFIX),
        at: aicity_domain::timestamps::now(),
        owner_id: *owner,
        agent_id: agent,
        actor: AuditActor::platform(),
        action: "pool.auto_topped_up".to_owned(),
        target: AuditTarget::new("pool", owner),
        request_id,
        details: match task {
            Some(task) => json!({ "taskId": task }),
            None => json!({}),
        },
    }
}

/// Reloads the pool first when holding `amount` would take it below the owner's auto
/// top-up threshold. Keyed by what it refills, the pool as it stands (everything paid
/// in so far), not by the task: racing submits that see the same pool charge once, and
/// a reload that was charged but not credited is found and credited by the next one.
/// A declined reload is logged; the hold is tried anyway.
///
/// `audit` ([`auto_top_up_entry`]) is kept on the reload's intent and written by the
/// transaction that credits it, exactly once, whoever credits it.
pub async fn auto_top_up_before_hold(
    db: &Client,
    table: &str,
    provider: &dyn PaymentProvider,
    owner: &OwnerId,
    amount: Cents,
    audit: AuditEntry,
) -> Result<(), ApiError> {
    let pool = vault::pool(db, table, owner).await?;
    if pool.auto_top_up.fires(pool.available, amount) {
        let reload = pool.auto_top_up.reload_amount;
        let key = format!("auto:{owner}:{}", -pool.external_balance.get());
        let intent = Intent::new(
            key,
            *owner,
            reload,
            DEFAULT_PAYMENT_METHOD,
            IntentKind::AutoTopUp,
            OffsetDateTime::now_utc(),
        )
        .audited(audit);
        let intent = payment_intents::open(db, table, &intent).await?;
        if let Err(err) = drive(db, table, provider, &intent).await {
            tracing::warn!(owner = %owner, code = %err.code, "auto top-up failed");
        }
    }
    Ok(())
}

/// Holds a task's budget on its own, after any auto top-up.
pub async fn hold_for_task(
    db: &Client,
    table: &str,
    provider: &dyn PaymentProvider,
    owner: &OwnerId,
    task: &TaskId,
    amount: Cents,
) -> Result<(), ApiError> {
    let audit = auto_top_up_entry(owner, None, None, Some(task));
    auto_top_up_before_hold(db, table, provider, owner, amount, audit).await?;
    match vault::place_hold(db, table, owner, task, amount, OffsetDateTime::now_utc()).await {
        Ok(()) | Err(VaultError::AlreadyDone) => Ok(()),
        Err(err) => Err(api_error(err, Spending::TaskHold)),
    }
}

/// Owner pool → agent wallet, once per `operation` (an earlier try's is no error),
/// with its audit entry (`wallet.allocated`) in the same transaction.
pub async fn allocate(
    db: &Client,
    table: &str,
    owner: &OwnerId,
    agent: &AgentId,
    amount: Cents,
    operation: Option<&str>,
    audit: AuditEntry,
) -> Result<(), ApiError> {
    let moved = match ledger::allocate(*owner, *agent, amount) {
        Ok(transfers) => move_audited(db, table, &transfers, operation, &audit).await,
        Err(err) => Err(err.into()),
    };
    match moved {
        Ok(()) | Err(VaultError::AlreadyDone) => Ok(()),
        Err(err) => Err(api_error(err, Spending::Allocation)),
    }
}

/// Wallet → wallet, once per `operation`, with its audit entry (`wallet.transferred`)
/// in the same transaction.
pub async fn transfer(
    db: &Client,
    table: &str,
    from: &AgentId,
    to: &AgentId,
    amount: Cents,
    operation: Option<&str>,
    audit: AuditEntry,
) -> Result<(), ApiError> {
    let moved = match ledger::wallet_transfer(*from, *to, amount) {
        Ok(transfers) => move_audited(db, table, &transfers, operation, &audit).await,
        Err(err) => Err(err.into()),
    };
    match moved {
        Ok(()) | Err(VaultError::AlreadyDone) => Ok(()),
        Err(err) => Err(api_error(err, Spending::WalletTransfer)),
    }
}

/// A money move and its audit entry in one transaction, once per `operation`.
async fn move_audited(
    db: &Client,
    table: &str,
    transfers: &[ledger::Transfer],
    operation: Option<&str>,
    audit: &AuditEntry,
) -> Result<(), VaultError> {
    let item = aicity_store::embassy::audit_item(table, audit)?;
    vault::move_once(
        db,
        table,
        transfers,
        operation,
        vec![item],
        OffsetDateTime::now_utc(),
    )
    .await
}
