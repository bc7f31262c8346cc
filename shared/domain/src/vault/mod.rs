//! Credits: a double-entry ledger with two-phase holds.
//!
//! Every movement is a [`Transfer`] from one account to another; a balance is what has
//! come into an account minus what has gone out, so all balances always sum to zero.
//! Money enters the system from an owner's external funding account (card payments),
//! which is the only account allowed to go negative.
//!
//! A hold is TigerBeetle's pending transfer: buyer pool → the task's hold account.
//! It ends exactly once, by posting (charge the agent's price: 85 % to the agent's
//! escrow, 15 % platform fee, the rest back to the pool) or by voiding (all back).

pub mod ledger;
pub mod pool;
pub mod shards;

pub use ledger::{Account, Ledger, LedgerError, Transfer, TransferKind};
pub use pool::{AutoTopUp, MAX_TOP_UP, MIN_TOP_UP, TopUpRequest};
