//! One file per event the stock service reacts to. Each takes the transaction and the typed event
//! and returns the events to emit; the kit's runner writes them to the outbox in the same
//! transaction.

pub mod order_cancelled;
pub mod payment_succeeded;

use jetsaga_contracts::Sku;
use saga_kit::HandlerError;

/// The saga barrier's branch name of this service's step.
pub const BRANCH: &str = "stock";

/// A SKU read back from our own table. It was validated when it was stored, so a bad one means
/// the table was changed by hand: retrying will not help.
pub(crate) fn stored_sku(raw: String) -> Result<Sku, HandlerError> {
    Sku::parse(raw)
        .map_err(|e| HandlerError::permanent(format!("stock table holds an invalid sku: {e}")))
}
