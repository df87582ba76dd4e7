//! Double effects, counted from the streams themselves: an effect event (a charge, a refund, a
//! reservation, a release, a redemption, points held, given back or earned, an order's end) that appears for one order under more than
//! one event id was applied twice. The same event id twice is a duplicate message, not a second
//! effect: consumers dedupe it.

use async_nats::jetstream::{self, consumer::DeliverPolicy};
use futures::StreamExt;
use jetsaga_contracts::events::{
    order::{OrderCancelled, OrderConfirmed},
    payment::{PaymentFailed, PaymentRefunded, PaymentSucceeded},
    points::{PointsEarned, PointsRejected, PointsReleased, PointsReserved},
    stock::{StockFailed, StockReleased, StockReserved},
    voucher::{VoucherRedeemed, VoucherReleased, VoucherReserved},
};
use jetsaga_contracts::Producer;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// The events of which one order may have one only, by their subject filters
/// (`<domain>.<event>.*`, as the contracts declare them).
const ONCE_PER_ORDER: [&str; 15] = [
    OrderConfirmed::SUBJECT_FILTER,
    OrderCancelled::SUBJECT_FILTER,
    VoucherReserved::SUBJECT_FILTER,
    VoucherReleased::SUBJECT_FILTER,
    VoucherRedeemed::SUBJECT_FILTER,
    PointsReserved::SUBJECT_FILTER,
    PointsRejected::SUBJECT_FILTER,
    PointsReleased::SUBJECT_FILTER,
    PointsEarned::SUBJECT_FILTER,
    PaymentSucceeded::SUBJECT_FILTER,
    PaymentFailed::SUBJECT_FILTER,
    PaymentRefunded::SUBJECT_FILTER,
    StockReserved::SUBJECT_FILTER,
    StockFailed::SUBJECT_FILTER,
    StockReleased::SUBJECT_FILTER,
];

/// Whether `<domain>.<event>` is one of [`ONCE_PER_ORDER`].
fn once_per_order(kind: &str) -> bool {
    ONCE_PER_ORDER
        .iter()
        .any(|filter| filter.strip_suffix(".*") == Some(kind))
}

/// Per `<domain>.<event>` and order: the distinct event ids seen.
#[derive(Debug, Default)]
pub struct Effects {
    seen: HashMap<(String, String), HashSet<String>>,
}

impl Effects {
    pub fn add(&mut self, subject: &str, event_id: &str) {
        let mut parts = subject.splitn(3, '.');
        let (Some(domain), Some(event), Some(order)) = (parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        let kind = format!("{domain}.{event}");
        if once_per_order(&kind) {
            self.seen
                .entry((kind, order.to_owned()))
                .or_default()
                .insert(event_id.to_owned());
        }
    }

    /// `<kind> <order>` of every effect applied more than once.
    pub fn doubles(&self) -> Vec<String> {
        let mut doubles: Vec<String> = self
            .seen
            .iter()
            .filter(|(_, ids)| ids.len() > 1)
            .map(|((kind, order), ids)| format!("{kind} of order {order}: {} event ids", ids.len()))
            .collect();
        doubles.sort();
        doubles
    }
}

/// Reads every message of the five producer streams.
pub async fn read(js: &jetstream::Context) -> anyhow::Result<Effects> {
    let mut effects = Effects::default();
    for producer in Producer::ALL {
        let stream = js.get_stream(producer.stream()).await?;
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await?;
        let total = consumer.cached_info().num_pending;
        if total == 0 {
            continue;
        }
        let mut messages = consumer.messages().await?;
        let mut read = 0u64;
        while read < total {
            let Ok(Some(msg)) =
                tokio::time::timeout(Duration::from_secs(10), messages.next()).await
            else {
                anyhow::bail!(
                    "reading stream {}: stopped after {read} of {total} messages",
                    producer.stream()
                );
            };
            let msg = msg?;
            read += 1;
            if let Some(id) = msg.headers.as_ref().and_then(|h| h.get("ce-id")) {
                effects.add(&msg.subject, id.as_str());
            }
        }
    }
    Ok(effects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_event_twice_is_a_duplicate_and_two_ids_are_a_double_effect() {
        let mut e = Effects::default();
        e.add("payments.succeeded.o1", "a");
        e.add("payments.succeeded.o1", "a");
        e.add("payments.succeeded.o2", "b");
        e.add("stock.adjusted.MUG", "c");
        e.add("stock.adjusted.MUG", "d");
        assert!(e.doubles().is_empty());
        e.add("payments.succeeded.o2", "x");
        assert_eq!(e.doubles(), ["payments.succeeded of order o2: 2 event ids"]);
    }
}
