//! The background task that keeps the kit's tables from growing for ever: every `TRIM_EVERY_SECS`
//! it reads how long the streams this service reads and writes keep their events, and trims the
//! rows no message can need any more (`saga_kit::retention`).

use crate::service::Runtime;
use saga_kit::retention;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The first trim waits this long after start (or a whole interval, if shorter): a deploy's
/// restarts do not each start with a walk of the tables.
const FIRST_AFTER: Duration = Duration::from_secs(600);

/// Trims every `every` until shutdown, reading the retention of `streams` each time.
pub async fn run(
    rt: Runtime,
    streams: Vec<&'static str>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut wait = every.min(FIRST_AFTER);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = every;
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = once(&rt, &streams) => {}
        }
    }
}

/// One trim; whatever fails is logged and tried again at the next.
async fn once(rt: &Runtime, streams: &[&'static str]) {
    let service = rt.service;
    let keep = match retention::stream_max_ages(&rt.js, streams).await {
        Ok(ages) => retention::keep_for(ages),
        Err(e) => {
            tracing::warn!(service, error = %e, "kit tables not trimmed: the streams' retention is unknown");
            return;
        }
    };
    let Some(keep) = keep else {
        tracing::info!(
            service,
            ?streams,
            "kit tables not trimmed: a stream keeps its events for ever"
        );
        return;
    };
    let started = Instant::now();
    match retention::trim(&rt.pool, keep).await {
        Ok(trimmed) if trimmed.skipped => {
            tracing::info!(
                service,
                "kit tables not trimmed: another instance is trimming them"
            );
        }
        Ok(trimmed) => {
            rt.metrics.kit().trimmed(&trimmed);
            tracing::info!(
                service,
                outbox = trimmed.outbox,
                inbox = trimmed.inbox,
                kept_days = keep.as_secs() / 86_400,
                seconds = started.elapsed().as_secs_f64(),
                "kit tables trimmed"
            );
        }
        Err(e) => {
            tracing::warn!(service, error = %e, "kit tables not trimmed: the database failed");
        }
    }
}
