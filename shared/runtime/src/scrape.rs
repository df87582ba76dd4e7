//! What `/metrics` reads when it is scraped: the outbox and dead-letter gauges and whether the
//! database answers, whether NATS is connected and each consumer's lag, then the service's own
//! hooks (the order service counts its overdue orders). Every read has a timeout, so a scrape stays
//! fast when the database or NATS is down: a failed read sets its `up` gauge to 0 and leaves the
//! other gauges as they were.

use crate::Runtime;
use async_nats::jetstream::consumer::pull;
use futures::future::{join_all, BoxFuture};
use saga_kit::metrics::labels::ConsumerName;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long one read at scrape time may take.
pub const READ_TIMEOUT: Duration = Duration::from_secs(1);

/// A service's own scrape-time reads: given the runtime, set its gauges.
pub type ScrapeHook = Arc<dyn Fn(Runtime) -> BoxFuture<'static, ()> + Send + Sync>;

/// The consumers whose lag is read and the hooks a service added, for one instance.
#[derive(Default)]
pub struct Scrape {
    hooks: Mutex<Vec<ScrapeHook>>,
    consumers: Mutex<Vec<(&'static str, &'static str)>>,
}

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrape")
            .field("hooks", &self.hooks().len())
            .field("consumers", &self.consumers())
            .finish()
    }
}

impl Scrape {
    /// Runs `hook` at every scrape, after the kit's reads, within [`READ_TIMEOUT`].
    pub fn add_hook<F, Fut>(&self, hook: F)
    where
        F: Fn(Runtime) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let hook: ScrapeHook = Arc::new(move |rt| Box::pin(hook(rt)));
        self.hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(hook);
    }

    /// Reads the lag of the durable consumer `durable` of `stream` at every scrape.
    pub fn add_consumer(&self, stream: &'static str, durable: &'static str) {
        self.consumers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((stream, durable));
    }

    fn hooks(&self) -> Vec<ScrapeHook> {
        self.hooks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn consumers(&self) -> Vec<(&'static str, &'static str)> {
        self.consumers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Sets every scrape-time gauge of `rt`'s instance.
pub async fn refresh(rt: &Runtime) {
    let hooks = rt.scrape.hooks().into_iter().map(|hook| {
        let rt = rt.clone();
        async move {
            if tokio::time::timeout(READ_TIMEOUT, hook(rt.clone()))
                .await
                .is_err()
            {
                tracing::debug!(service = rt.service, "a scrape hook timed out");
            }
        }
    });
    tokio::join!(database(rt), nats(rt), join_all(hooks));
}

async fn database(rt: &Runtime) {
    let kit = rt.metrics.kit();
    let read = async {
        let outbox = saga_kit::outbox::standing(&rt.pool).await?;
        let dead = saga_kit::dead_letter::open_count(&rt.pool).await?;
        Ok::<_, sqlx::Error>((outbox, dead))
    };
    match tokio::time::timeout(READ_TIMEOUT, read).await {
        Ok(Ok((outbox, dead))) => {
            kit.outbox_backlog.set(outbox.backlog);
            kit.outbox_retrying.set(outbox.retrying);
            kit.outbox_parked.set(outbox.parked);
            kit.outbox_oldest_age_seconds.set(outbox.oldest_age_seconds);
            kit.dead_letters_open.set(dead);
            kit.database_up.set(1);
        }
        Ok(Err(e)) => {
            tracing::debug!(service = rt.service, error = %e, "cannot read the outbox at scrape time");
            kit.database_up.set(0);
        }
        Err(_) => {
            tracing::debug!(
                service = rt.service,
                "the database did not answer the scrape in time"
            );
            kit.database_up.set(0);
        }
    }
}

async fn nats(rt: &Runtime) {
    let kit = rt.metrics.kit();
    let connected = rt.client.connection_state() == async_nats::connection::State::Connected;
    kit.nats_up.set(i64::from(connected));
    if !connected {
        return;
    }
    let lags = rt.scrape.consumers().into_iter().map(|(stream, durable)| {
        let js = rt.js.clone();
        async move {
            let info = js.get_consumer_from_stream::<pull::Config, _, _>(durable, stream);
            match tokio::time::timeout(READ_TIMEOUT, info).await {
                Ok(Ok(consumer)) => Some((durable, consumer.cached_info().num_pending)),
                _ => None,
            }
        }
    });
    for (durable, pending) in join_all(lags).await.into_iter().flatten() {
        kit.consumer_pending
            .get_or_create(&ConsumerName {
                consumer: durable.to_owned(),
            })
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
    }
}
