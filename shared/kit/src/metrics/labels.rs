//! The typed label sets of the kit's metrics: encoded only when `/metrics` is scraped, never
//! formatted on an increment.

use prometheus_client::encoding::EncodeLabelSet;

/// `consumer`: the durable consumer's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ConsumerLabel {
    pub consumer: &'static str,
}

/// `consumer`, for gauges read at scrape time from names that are not static.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ConsumerName {
    pub consumer: String,
}

/// `consumer` and the `outcome` of one delivery (`applied`, `duplicate`, `dead_lettered`,
/// `retry`, `contended`, `unavailable`, `diverged`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct HandlerLabels {
    pub consumer: &'static str,
    pub outcome: &'static str,
}

/// `consumer` and the dead letter's `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DeadLetterLabels {
    pub consumer: &'static str,
    pub kind: &'static str,
}

/// `table`: a kit table (`kit_outbox`, `kit_inbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TableLabel {
    pub table: &'static str,
}

/// `outcome` alone: the services' business counters (`jetsaga_vouchers_total{outcome=..}` ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}
