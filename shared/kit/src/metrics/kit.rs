//! The kit's own metrics: what the consumer runner, the relay and the scrape-time gauges record,
//! registered once per [`super::Metrics`]. Counters are registered without their `_total`, which
//! the encoder adds.

use super::labels::{ConsumerLabel, ConsumerName, DeadLetterLabels, HandlerLabels, TableLabel};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// A histogram family whose every member has the same buckets.
pub type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// 1 ms to about 33 s, doubling: a handler's transaction, or a saga's step.
fn handler_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// 0.5 ms to about 8 s, doubling: one relay batch until its PubAcks.
fn publish_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

/// Counters, histograms and gauges of the consumer runner, the relay and the scrape.
#[derive(Debug)]
pub struct KitMetrics {
    pub events_handled: Family<ConsumerLabel, Counter>,
    pub events_duplicate: Family<ConsumerLabel, Counter>,
    pub handler_contended: Family<ConsumerLabel, Counter>,
    pub batches: Family<ConsumerLabel, Counter>,
    pub batches_abandoned: Family<ConsumerLabel, Counter>,
    pub handler_retries: Family<ConsumerLabel, Counter>,
    pub handler_unavailable: Family<ConsumerLabel, Counter>,
    pub consumer_pull_failures: Family<ConsumerLabel, Counter>,
    pub handed_back: Family<ConsumerLabel, Counter>,
    pub dead_letters: Family<DeadLetterLabels, Counter>,
    pub dead_letter_store_failures: Family<ConsumerLabel, Counter>,
    pub handler_duration: HistogramFamily<HandlerLabels>,
    pub relay_published: Counter,
    pub relay_refused: Counter,
    pub relay_parked: Counter,
    pub relay_errors: Counter,
    pub relay_publish_duration: Histogram,
    pub outbox_backlog: Gauge,
    pub outbox_retrying: Gauge,
    pub outbox_parked: Gauge,
    pub outbox_oldest_age_seconds: Gauge<f64, AtomicU64>,
    pub dead_letters_open: Gauge,
    pub rows_trimmed: Family<TableLabel, Counter>,
    pub consumer_pending: Family<ConsumerName, Gauge>,
    pub database_up: Gauge,
    pub nats_up: Gauge,
}

impl KitMetrics {
    /// New metrics, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = KitMetrics {
            events_handled: Family::default(),
            events_duplicate: Family::default(),
            handler_contended: Family::default(),
            batches: Family::default(),
            batches_abandoned: Family::default(),
            handler_retries: Family::default(),
            handler_unavailable: Family::default(),
            consumer_pull_failures: Family::default(),
            handed_back: Family::default(),
            dead_letters: Family::default(),
            dead_letter_store_failures: Family::default(),
            handler_duration: Family::new_with_constructor(handler_histogram),
            relay_published: Counter::default(),
            relay_refused: Counter::default(),
            relay_parked: Counter::default(),
            relay_errors: Counter::default(),
            relay_publish_duration: publish_histogram(),
            outbox_backlog: Gauge::default(),
            outbox_retrying: Gauge::default(),
            outbox_parked: Gauge::default(),
            outbox_oldest_age_seconds: Gauge::default(),
            dead_letters_open: Gauge::default(),
            rows_trimmed: Family::default(),
            consumer_pending: Family::default(),
            database_up: Gauge::default(),
            nats_up: Gauge::default(),
        };
        let r = registry;
        r.register(
            "jetsaga_events_handled",
            "Events a consumer applied",
            m.events_handled.clone(),
        );
        r.register(
            "jetsaga_events_duplicate",
            "Events a consumer's inbox already knew",
            m.events_duplicate.clone(),
        );
        r.register(
            "jetsaga_handler_contended",
            "Deliveries handed back because others held the rows",
            m.handler_contended.clone(),
        );
        r.register(
            "jetsaga_batches",
            "Transactions that committed several messages at once",
            m.batches.clone(),
        );
        r.register(
            "jetsaga_batches_abandoned",
            "Batches rolled back and handled one message at a time",
            m.batches_abandoned.clone(),
        );
        r.register(
            "jetsaga_handler_retries",
            "Deliveries whose handler failed and will be retried",
            m.handler_retries.clone(),
        );
        r.register(
            "jetsaga_handler_unavailable",
            "Attempts that found the database unavailable",
            m.handler_unavailable.clone(),
        );
        r.register(
            "jetsaga_consumer_pull_failures",
            "Pulls that failed, after which the consumer is set up again",
            m.consumer_pull_failures.clone(),
        );
        r.register(
            "jetsaga_handed_back",
            "Messages handed back at shutdown",
            m.handed_back.clone(),
        );
        r.register(
            "jetsaga_dead_letters",
            "Messages stored as dead letters, by consumer and kind",
            m.dead_letters.clone(),
        );
        r.register(
            "jetsaga_dead_letter_store_failures",
            "Dead letters that could not be stored (the message is kept)",
            m.dead_letter_store_failures.clone(),
        );
        r.register(
            "jetsaga_handler_duration_seconds",
            "From decoding a delivery to its commit and ack, by consumer and outcome",
            m.handler_duration.clone(),
        );
        r.register(
            "jetsaga_relay_published",
            "Outbox rows published",
            m.relay_published.clone(),
        );
        r.register(
            "jetsaga_relay_refused",
            "Outbox rows the server refused",
            m.relay_refused.clone(),
        );
        r.register(
            "jetsaga_relay_parked",
            "Outbox rows parked after too many refusals",
            m.relay_parked.clone(),
        );
        r.register(
            "jetsaga_relay_errors",
            "Relay steps that failed",
            m.relay_errors.clone(),
        );
        r.register(
            "jetsaga_relay_publish_duration_seconds",
            "One relay batch, from its first publish until its last PubAck",
            m.relay_publish_duration.clone(),
        );
        r.register(
            "jetsaga_outbox_backlog",
            "Unpublished outbox rows that are not parked",
            m.outbox_backlog.clone(),
        );
        r.register(
            "jetsaga_outbox_retrying",
            "Unpublished outbox rows that failed at least once",
            m.outbox_retrying.clone(),
        );
        r.register(
            "jetsaga_outbox_parked",
            "Outbox rows parked (an operator decides)",
            m.outbox_parked.clone(),
        );
        r.register(
            "jetsaga_outbox_oldest_age_seconds",
            "Age of the oldest unpublished, unparked outbox row; 0 when none",
            m.outbox_oldest_age_seconds.clone(),
        );
        r.register(
            "jetsaga_dead_letters_open",
            "Dead letters not yet resolved",
            m.dead_letters_open.clone(),
        );
        r.register(
            "jetsaga_rows_trimmed",
            "Kit rows deleted once their streams no longer hold their messages, by table",
            m.rows_trimmed.clone(),
        );
        r.register(
            "jetsaga_consumer_pending",
            "Messages a durable consumer has not yet been delivered (its lag)",
            m.consumer_pending.clone(),
        );
        r.register(
            "jetsaga_database_up",
            "1 when the last scrape reached the database, else 0",
            m.database_up.clone(),
        );
        r.register(
            "jetsaga_nats_up",
            "1 when the instance is connected to NATS, else 0",
            m.nats_up.clone(),
        );
        m
    }

    /// Counts one delivery of `consumer` with its `outcome` and how long it took.
    pub fn observe_handler(&self, consumer: &'static str, outcome: &'static str, seconds: f64) {
        self.handler_duration
            .get_or_create(&HandlerLabels { consumer, outcome })
            .observe(seconds);
    }

    /// Counts what one trim of the kit's tables deleted.
    pub fn trimmed(&self, trimmed: &crate::retention::Trimmed) {
        for (table, rows) in [("kit_outbox", trimmed.outbox), ("kit_inbox", trimmed.inbox)] {
            self.rows_trimmed
                .get_or_create(&TableLabel { table })
                .inc_by(rows);
        }
    }

    /// Adds one to a per-consumer counter.
    pub fn inc(family: &Family<ConsumerLabel, Counter>, consumer: &'static str) {
        family.get_or_create(&ConsumerLabel { consumer }).inc();
    }
}
