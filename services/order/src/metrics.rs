//! The order service's own metrics, registered in the instance's registry on first use:
//! `jetsaga_orders_accepted_total`, `jetsaga_sagas_total{outcome,reason}`, the saga duration
//! histogram and the gauge of pending orders past their deadline (set at scrape time).

use jetsaga_contracts::{OrderEvent, OrderId};
use saga_kit::metrics::kit::HistogramFamily;
use saga_kit::metrics::prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};
use saga_kit::metrics::prometheus_client::metrics::counter::Counter;
use saga_kit::metrics::prometheus_client::metrics::family::Family;
use saga_kit::metrics::prometheus_client::metrics::gauge::Gauge;
use saga_kit::metrics::prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use saga_kit::metrics::prometheus_client::registry::Registry;
use saga_kit::metrics::MetricsExtension;
use saga_kit::Metrics;
use sqlx::PgPool;
use std::sync::OnceLock;
use uuid::Uuid;

/// `outcome` (`confirmed`, `cancelled`) and, for a cancellation, its `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SagaLabels {
    pub outcome: &'static str,
    pub reason: Option<&'static str>,
}

impl EncodeLabelSet for SagaLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        [("outcome", self.outcome)].as_slice().encode(encoder)?;
        match self.reason {
            Some(reason) => [("reason", reason)].as_slice().encode(encoder),
            None => Ok(()),
        }
    }
}

/// The labels of a saga ended by `event`; `None` for an event that ends no saga.
pub fn saga_labels(event: &OrderEvent) -> Option<(OrderId, SagaLabels)> {
    match event {
        OrderEvent::OrderConfirmed(c) => Some((
            c.order_id,
            SagaLabels {
                outcome: "confirmed",
                reason: None,
            },
        )),
        OrderEvent::OrderCancelled(c) => Some((
            c.order_id,
            SagaLabels {
                outcome: "cancelled",
                reason: Some(c.reason.as_str()),
            },
        )),
        OrderEvent::OrderCreated(_) | OrderEvent::ProductPriced(_) => None,
    }
}

/// 10 ms to about 5.5 min, doubling: a saga runs until its deadline at most.
fn saga_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 16))
}

/// The order service's metrics.
#[derive(Debug)]
pub struct OrderMetrics {
    pub orders_accepted: Counter,
    pub sagas: Family<SagaLabels, Counter>,
    pub saga_duration: HistogramFamily<SagaLabels>,
    pub past_deadline: Gauge,
    /// Where the orders' creation times are read from, once the service has started.
    pool: OnceLock<PgPool>,
}

impl MetricsExtension for OrderMetrics {
    fn register(registry: &mut Registry) -> Self {
        let m = OrderMetrics {
            orders_accepted: Counter::default(),
            sagas: Family::default(),
            saga_duration: Family::new_with_constructor(saga_histogram),
            past_deadline: Gauge::default(),
            pool: OnceLock::new(),
        };
        registry.register(
            "jetsaga_orders_accepted",
            "Orders accepted by POST /orders",
            m.orders_accepted.clone(),
        );
        registry.register(
            "jetsaga_sagas",
            "Sagas ended, by outcome and cancellation reason",
            m.sagas.clone(),
        );
        registry.register(
            "jetsaga_saga_duration_seconds",
            "From an order's creation until it was confirmed or cancelled",
            m.saga_duration.clone(),
        );
        registry.register(
            "jetsaga_sagas_past_deadline",
            "Pending orders whose deadline has passed (the sweep has not cancelled them)",
            m.past_deadline.clone(),
        );
        m
    }
}

impl OrderMetrics {
    /// Lets the saga durations be read from `pool`.
    pub fn attach(&self, pool: PgPool) {
        let _ = self.pool.set(pool);
    }
}

/// Counts the sagas ended by the events a committed transaction emitted, and records how long each
/// took: the ended orders' `updated_at - created_at`, read after the commit, off the caller's path.
pub(crate) fn sagas_ended(metrics: &Metrics, events: &[OrderEvent]) {
    let m = metrics.extension::<OrderMetrics>();
    let ended: Vec<(OrderId, SagaLabels)> = events.iter().filter_map(saga_labels).collect();
    if ended.is_empty() {
        return;
    }
    for (_, labels) in &ended {
        m.sagas.get_or_create(labels).inc();
    }
    let (Some(pool), Ok(runtime)) = (m.pool.get().cloned(), tokio::runtime::Handle::try_current())
    else {
        return;
    };
    runtime.spawn(async move {
        let ids: Vec<Uuid> = ended.iter().map(|(id, _)| *id.as_uuid()).collect();
        match durations(&pool, &ids).await {
            Ok(found) => {
                for (id, seconds) in found {
                    if let Some((_, labels)) = ended.iter().find(|(o, _)| *o.as_uuid() == id) {
                        m.saga_duration.get_or_create(labels).observe(seconds);
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot read the durations of ended sagas"),
        }
    });
}

/// How long each of these terminal orders took, in seconds. A terminal order never changes again,
/// so its `updated_at` is when its saga ended.
async fn durations(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<(Uuid, f64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT order_id, EXTRACT(EPOCH FROM updated_at - created_at)::float8
         FROM orders WHERE order_id = ANY($1) AND status <> 'PENDING'",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
}

/// Sets `jetsaga_sagas_past_deadline`; at scrape time.
pub async fn count_past_deadline(metrics: &Metrics, pool: &PgPool) -> Result<(), sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM orders WHERE status = 'PENDING' AND deadline < now()",
    )
    .fetch_one(pool)
    .await?;
    metrics.extension::<OrderMetrics>().past_deadline.set(n);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jetsaga_contracts::events::order::OrderCancelled;
    use jetsaga_contracts::CancelReason;

    #[test]
    fn a_confirmed_saga_has_no_reason_label_and_a_cancelled_one_has_its_reason() {
        let metrics = Metrics::new();
        let m = metrics.extension::<OrderMetrics>();
        m.sagas
            .get_or_create(&SagaLabels {
                outcome: "confirmed",
                reason: None,
            })
            .inc();
        let cancelled = OrderEvent::OrderCancelled(OrderCancelled {
            order_id: OrderId::new_random(),
            reason: CancelReason::Timeout,
        });
        sagas_ended(&metrics, &[cancelled]);
        let text = metrics.render();
        assert!(text.contains("jetsaga_sagas_total{outcome=\"confirmed\"} 1\n"));
        assert!(text.contains("jetsaga_sagas_total{outcome=\"cancelled\",reason=\"timeout\"} 1\n"));
        assert_eq!(metrics.counter_total("jetsaga_sagas_total"), 2);
    }
}
