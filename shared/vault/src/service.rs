//! The vault's operations in API terms: what the vault and tasks functions call.

use aicity_domain::ids::{AgentId, OwnerId, TaskId};
use aicity_domain::money::Cents;
use aicity_domain::{ApiError, ErrorCode};
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
        VaultError::Invalid(reason) => ApiError::invalid_field("amount", reason),
        VaultError::AlreadyDone | VaultError::WrongState(_) => {
            ApiError::new(ErrorCode::InvalidTaskState)
        }
        VaultError::Store(err) => err.into(),
    }
}

pub fn payment_error(err: PaymentError) -> ApiError {
    match err {
        PaymentError::Declined(reason) => {
            ApiError::with_message(ErrorCode::PaymentFailed, "The payment failed")
                .details(json!({ "reason": reason }))
        }
        PaymentError::Unavailable(cause) => {
            tracing::error!(cause, "payment provider unavailable");
            ApiError::new(ErrorCode::PaymentFailed)
        }
        PaymentError::NotConfigured(cause) => {
            tracing::error!(cause, "payment provider not configured");
            ApiError::new(ErrorCode::StripeNotConfigured)
        }
    }
}

/// Charges the card and credits the pool, once per `idempotency_key`: a repeat finds
/// the same charge at the provider and the ledger refuses to credit it twice.
pub async fn top_up(
    db: &Client,
    table: &str,
    provider: &dyn PaymentProvider,
    owner: &OwnerId,
    amount: Cents,
    payment_method: Option<String>,
    idempotency_key: &str,
) -> Result<(Pool, Cents, String), ApiError> {
    let charge = provider
        .charge(&ChargeRequest {
            owner_id: *owner,
            amount,
            payment_method: payment_method.unwrap_or_else(|| DEFAULT_PAYMENT_METHOD.to_owned()),
            idempotency_key: idempotency_key.to_owned(),
        })
        .await
        .map_err(payment_error)?;
    match vault::top_up(
        db,
        table,
        owner,
        charge.amount,
        &charge.id,
        OffsetDateTime::now_utc(),
    )
    .await
    {
        Ok(()) | Err(VaultError::AlreadyDone) => {}
        Err(err) => {
            // Charged but not credited: a retry with the same key finds the same charge
            // and credits it then. Say so in the logs with the charge id.
            tracing::error!(charge_id = charge.id, error = %err, "charge not credited yet");
            return Err(api_error(err, Spending::Allocation));
        }
    }
    let pool = vault::pool(db, table, owner).await?;
    Ok((pool, charge.amount, charge.id))
}

/// Reloads the pool first when holding `amount` would take it below the owner's auto
/// top-up threshold. Keyed by the task, so a retried submission reloads once. A
/// declined reload is logged; the hold is tried anyway.
pub async fn auto_top_up_before_hold(
    db: &Client,
    table: &str,
    provider: &dyn PaymentProvider,
    owner: &OwnerId,
    task: &TaskId,
    amount: Cents,
) -> Result<(), ApiError> {
    let pool = vault::pool(db, table, owner).await?;
    if pool.auto_top_up.fires(pool.available, amount) {
        let reload = pool.auto_top_up.reload_amount;
        let key = format!("auto:{task}");
        if let Err(err) = top_up(db, table, provider, owner, reload, None, &key).await {
            tracing::warn!(owner = %owner, task = %task, code = %err.code, "auto top-up failed");
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
    auto_top_up_before_hold(db, table, provider, owner, task, amount).await?;
    match vault::place_hold(db, table, owner, task, amount, OffsetDateTime::now_utc()).await {
        Ok(()) | Err(VaultError::AlreadyDone) => Ok(()),
        Err(err) => Err(api_error(err, Spending::TaskHold)),
    }
}

/// Owner pool → agent wallet.
pub async fn allocate(
    db: &Client,
    table: &str,
    owner: &OwnerId,
    agent: &AgentId,
    amount: Cents,
) -> Result<(), ApiError> {
    vault::allocate(db, table, owner, agent, amount, OffsetDateTime::now_utc())
        .await
        .map_err(|err| api_error(err, Spending::Allocation))
}

/// Wallet → wallet.
pub async fn transfer(
    db: &Client,
    table: &str,
    from: &AgentId,
    to: &AgentId,
    amount: Cents,
) -> Result<(), ApiError> {
    vault::transfer(db, table, from, to, amount, OffsetDateTime::now_utc())
        .await
        .map_err(|err| api_error(err, Spending::WalletTransfer))
}
