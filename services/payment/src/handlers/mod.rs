//! One file per event the payment service reacts to. Each takes the transaction and the typed event
//! and returns the events to emit; the kit's runner writes them to the outbox in the same
//! transaction.

pub mod order_cancelled;
pub mod points_reserved;

/// The branch of the saga barrier this service owns: its forward step is the charge, its
/// compensation the refund.
pub const BRANCH: &str = "payment";
