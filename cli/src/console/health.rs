//! `GET /api/health`: per service, whether its database and NATS answer, each instance's own
//! `/health`, its consumers' lag, its outbox backlog and parked rows, its open dead letters. The
//! figures come from [`crate::stats`], as `jetsaga stats` reads them; a part that does not answer
//! is shown as such (`false`, or `null` figures) instead of failing the whole page.

use super::error::ConsoleResult;
use super::session::Signed;
use super::{ServiceUrl, Shared};
use crate::stats::{self, ConsumerLag};
use axum::extract::State;
use axum::Json;
use jetsaga_contracts::Producer;
use serde::Serialize;
use std::time::Duration;

/// How long NATS or an instance may take to answer before it counts as down.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a database may take for the figures (a busy database is slow, not down).
pub const DATABASE_TIMEOUT: Duration = Duration::from_secs(5);

/// One instance of a service, as its own `/health` answers.
#[derive(Debug, Serialize)]
pub struct Instance {
    /// Its base URL.
    pub instance: String,
    /// `/health` answered 200: its database and NATS are reachable from it.
    pub ready: bool,
}

/// One durable consumer of the service.
#[derive(Debug, Serialize)]
pub struct Consumer {
    pub name: String,
    pub stream: &'static str,
    /// Messages not yet delivered to it.
    pub lag: u64,
    /// Delivered, not yet acknowledged.
    pub pending_acks: usize,
    pub redelivered: usize,
    /// Seconds since its last delivery; `None` if it never had one.
    pub last_delivery_secs_ago: Option<u64>,
    /// No instance pulls it ([`stats::nobody_pulls`]): its lag only grows.
    pub nobody_pulls: bool,
}

/// One service's health.
#[derive(Debug, Serialize)]
pub struct ServiceHealth {
    pub service: &'static str,
    /// Its database answers the console.
    pub database: bool,
    /// Why it did not, when it did not.
    pub database_error: Option<String>,
    /// Its stream answers the console.
    pub nats: bool,
    pub instances: Vec<Instance>,
    pub consumers: Vec<Consumer>,
    /// Outbox rows not yet published (`null` when the database does not answer).
    pub outbox_backlog: Option<i64>,
    /// Outbox rows the stream refused, waiting for their back-off.
    pub outbox_retrying: Option<i64>,
    /// Outbox rows set aside because they can never be published as they are.
    pub parked: Option<i64>,
    pub dead_letters_open: Option<i64>,
    /// The database's size on disk, in bytes (`pg_database_size`).
    pub database_bytes: Option<i64>,
    /// The outbox and inbox tables with their indexes, in bytes: what the trim keeps level.
    pub outbox_inbox_bytes: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct Health {
    pub services: Vec<ServiceHealth>,
    /// When NATS did not answer: why.
    pub nats_error: Option<String>,
}

async fn instance(http: &reqwest::Client, url: &ServiceUrl) -> Instance {
    let ready = http
        .get(format!("{}/health", url.base))
        .timeout(PROBE_TIMEOUT)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    Instance {
        instance: url.base.clone(),
        ready,
    }
}

async fn service(
    state: &Shared,
    producer: Producer,
    lags: Option<&[ConsumerLag]>,
) -> ServiceHealth {
    let pool = state.sources.pool(producer);
    let (figures, database_error) =
        match tokio::time::timeout(DATABASE_TIMEOUT, stats::service_stats(pool, producer)).await {
            Ok(Ok(figures)) => (Some(figures), None),
            Ok(Err(e)) => (None, Some(format!("{e:#}"))),
            Err(_) => (
                None,
                Some(format!("no answer in {} s", DATABASE_TIMEOUT.as_secs())),
            ),
        };
    if let Some(e) = &database_error {
        tracing::warn!(service = producer.service(), error = %e, "console: a database did not answer");
    }
    let nats = tokio::time::timeout(
        PROBE_TIMEOUT,
        state.js.get_stream_no_info(producer.stream()),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let instances = futures::future::join_all(
        state
            .service_urls
            .iter()
            .filter(|u| u.producer == producer)
            .map(|u| instance(&state.http, u)),
    )
    .await;
    let consumers = lags
        .unwrap_or_default()
        .iter()
        .filter(|c| c.service == producer.service())
        .map(|c| Consumer {
            name: c.consumer.clone(),
            stream: c.stream,
            lag: c.pending,
            pending_acks: c.ack_pending,
            redelivered: c.redelivered,
            last_delivery_secs_ago: c.last_delivery_secs_ago,
            nobody_pulls: c.nobody_pulls,
        })
        .collect();
    ServiceHealth {
        service: producer.service(),
        database: figures.is_some(),
        database_error,
        nats,
        instances,
        consumers,
        outbox_backlog: figures.as_ref().map(|f| f.outbox_backlog),
        outbox_retrying: figures.as_ref().map(|f| f.outbox_retrying),
        parked: figures.as_ref().map(|f| f.outbox_parked),
        dead_letters_open: figures.as_ref().map(|f| f.dead_letters_open),
        database_bytes: figures.as_ref().map(|f| f.database_bytes),
        outbox_inbox_bytes: figures.as_ref().map(|f| f.outbox_inbox_bytes),
    }
}

/// `GET /api/health`.
pub async fn show(Signed(_): Signed, State(state): State<Shared>) -> ConsoleResult<Json<Health>> {
    // Two reads, plus the looks again at a durable that looked read by nobody.
    let looks = stats::LOOK_AGAIN_AFTER * u32::try_from(stats::LOOKS - 1).unwrap_or(0);
    let lags =
        tokio::time::timeout(PROBE_TIMEOUT * 2 + looks, stats::consumer_lags(&state.js)).await;
    let (lags, nats_error) = match lags {
        Ok(Ok((lags, _streams))) => (Some(lags), None),
        Ok(Err(e)) => (None, Some(format!("{e:#}"))),
        Err(_) => (None, Some("NATS did not answer in time".to_owned())),
    };
    let services = futures::future::join_all(
        Producer::ALL
            .iter()
            .map(|&p| service(&state, p, lags.as_deref())),
    )
    .await;
    Ok(Json(Health {
        services,
        nats_error,
    }))
}
