//! Events of the stock service, on the STOCK stream (`stock.>`).

use super::{keyed_by_order, StockLine};
use crate::event_set::Keyed;
use crate::{event_set, Actor, OrderId, Sku};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An operator added or removed units (admin change, keyed by SKU).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockAdjusted {
    pub adjustment_id: Uuid,
    pub sku: Sku,
    pub delta: i64,
    /// The operator who made the change; `anonymous` when admin routes were open, and in events
    /// written before changes carried one.
    #[serde(default = "Actor::anonymous")]
    pub actor: Actor,
}

/// Every line of the order is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockReserved {
    pub order_id: OrderId,
    pub lines: Vec<StockLine>,
}

/// At least one line could not be held; nothing is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockFailed {
    pub order_id: OrderId,
    /// The first line that was short.
    pub sku: Sku,
    pub requested: u32,
    pub available: i64,
}

/// Compensation: the units held for a cancelled order are available again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockReleased {
    pub order_id: OrderId,
    pub lines: Vec<StockLine>,
}

keyed_by_order!(StockReserved, StockFailed, StockReleased);

impl Keyed for StockAdjusted {
    fn key(&self) -> String {
        self.sku.to_string()
    }
}

event_set! {
    /// Everything the stock service says.
    pub enum StockEvent {
        service: "stock", stream: "STOCK", domain: "stock";
        StockAdjusted(StockAdjusted) = "adjusted",
        StockReserved(StockReserved) = "reserved",
        StockFailed(StockFailed) = "failed",
        StockReleased(StockReleased) = "released",
    }
}
