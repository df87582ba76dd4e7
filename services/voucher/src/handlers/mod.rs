//! One file per order event the voucher service reacts to. Each takes the consumer's transaction
//! and the typed event and returns the events to emit; the kit writes them to the outbox.

pub mod order_cancelled;
pub mod order_confirmed;
pub mod order_created;

/// This service's branch of every saga in the barrier (`kit_barrier.branch`).
pub const BRANCH: &str = "voucher";

/// Why a voucher step changed nothing for an order: what was found instead.
#[derive(Debug, thiserror::Error)]
pub enum Unchanged {
    #[error("the order holds no voucher")]
    NoVoucher,
    #[error(transparent)]
    Status(#[from] crate::domain::InvalidTransition),
}
