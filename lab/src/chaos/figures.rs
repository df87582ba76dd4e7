//! The figures read from the services' databases once the run has settled: the dead letters
//! against the poison injected, the deadline cancellations against the faults, and the outbox
//! rows parked.

use super::inject::{Expected, Held};
use super::timeouts::{self, Allowance, TimedOut};
use anyhow::Context as _;
use jetsaga_cli::targets::Targets;
use jetsaga_contracts::Producer;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The dead letters of all five services, against those the poison must leave.
#[derive(Debug, Default)]
pub struct DeadLetters {
    pub total: usize,
    /// Dead letters no poison explains: an event, a message of a service, turned away.
    pub beyond_poison: Vec<Expected>,
    /// Poison that left no dead letter on a consumer that reads it: neither applied nor
    /// dead-lettered, lost.
    pub poison_missing: Vec<Expected>,
}

/// Reads every service's `kit_dead_letters` and compares them with `expected`, by consumer,
/// stream and sequence.
pub async fn dead_letters(targets: &Targets, expected: &[Expected]) -> anyhow::Result<DeadLetters> {
    let mut found = BTreeSet::new();
    let mut total = 0usize;
    for producer in Producer::ALL {
        let pool = targets.read_only_pool(producer).await?;
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT consumer, stream, stream_seq FROM kit_dead_letters")
                .fetch_all(&pool)
                .await
                .with_context(|| format!("reading the dead letters of {}", producer.service()))?;
        total += rows.len();
        found.extend(
            rows.into_iter()
                .map(|(consumer, stream, stream_seq)| Expected {
                    consumer,
                    stream,
                    stream_seq,
                }),
        );
    }
    let expected: BTreeSet<Expected> = expected.iter().cloned().collect();
    Ok(DeadLetters {
        total,
        beyond_poison: found.difference(&expected).cloned().collect(),
        poison_missing: expected.difference(&found).cloned().collect(),
    })
}

/// Orders cancelled by their deadline: all of them, and those no fault explains
/// ([`timeouts::without_cause`]).
#[derive(Debug, Default)]
pub struct Timeouts {
    pub total: usize,
    pub without_cause: Vec<TimedOut>,
}

pub async fn timeouts(
    targets: &Targets,
    held: &[Held],
    ack_wait: Duration,
) -> anyhow::Result<Timeouts> {
    let pool = targets.read_only_pool(Producer::ORDER).await?;
    let orders: Vec<TimedOut> = sqlx::query_as(
        "SELECT o.order_id, o.created_at, o.deadline,
                coalesce(array_agg(l.sku) FILTER (WHERE l.sku IS NOT NULL), '{}') AS skus
         FROM orders o LEFT JOIN order_lines l USING (order_id)
         WHERE o.cancel_reason = 'timeout'
         GROUP BY o.order_id",
    )
    .fetch_all(&pool)
    .await
    .context("reading the orders cancelled by their deadline")?;
    let stalls: Vec<_> = held.iter().filter_map(Held::stall).collect();
    Ok(Timeouts {
        total: orders.len(),
        without_cause: timeouts::without_cause(&orders, &stalls, Allowance::for_ack_wait(ack_wait))
            .into_iter()
            .cloned()
            .collect(),
    })
}

/// Outbox rows parked (never to be published as they are), per service.
pub async fn parked_outbox_rows(targets: &Targets) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut parked = BTreeMap::new();
    for producer in Producer::ALL {
        let pool = targets.read_only_pool(producer).await?;
        // An error here (a kit without `parked_at`) fails the run: a figure is never guessed.
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM kit_outbox WHERE parked_at IS NOT NULL")
                .fetch_one(&pool)
                .await
                .with_context(|| {
                    format!("counting the parked outbox rows of {}", producer.service())
                })?;
        parked.insert(
            producer.service().to_owned(),
            usize::try_from(n).unwrap_or(0),
        );
    }
    Ok(parked)
}
