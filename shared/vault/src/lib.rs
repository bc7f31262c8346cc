//! Vault services over the ledger store: taking card payments through a
//! [`payments::PaymentProvider`], and the money steps of a task (hold with auto
//! top-up, post, void, release, reverse) with their errors in API terms.

pub mod payments;
pub mod service;

pub use payments::{Charge, ChargeRequest, DeclineReason, PaymentError, PaymentProvider};
