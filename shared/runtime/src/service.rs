//! A service process: start-up, its tasks, and graceful shutdown in the right order.
//!
//! Start-up connects to PostgreSQL (retrying while it comes up), runs the kit's and the service's
//! migrations, connects to NATS (refusing servers older than 2.10), provisions the streams and starts
//! the relay. The service then adds its consumers and background tasks and calls [`Service::serve`].
//!
//! While it serves, the kit's tables are trimmed in the background ([`crate::trim`]).
//!
//! Shutdown: stop accepting HTTP, stop pulling and finish the messages in flight, stop background
//! tasks, and only then flush the relay, so the events of the last transactions go out too.

use crate::operators::AdminAccess;
use crate::ops;
use crate::scrape::Scrape;
use crate::settings::Settings;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use jetsaga_contracts::Producer;
use saga_kit::consumer::ConsumerConfig;
use saga_kit::kept::Kept;
use saga_kit::provision::{self, ProvisionError, StreamSettings};
use saga_kit::{Consumer, Handler, Metrics, Relay, RelayConfig, RelayWake};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Why a service could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{service}: cannot connect to PostgreSQL at {url}: {source}")]
    Database {
        service: &'static str,
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("{service}: migrations failed: {source}")]
    Migrate {
        service: &'static str,
        #[source]
        source: MigrateError,
    },
    #[error("{service}: {source}")]
    Nats {
        service: &'static str,
        #[source]
        source: ProvisionError,
    },
    #[error("cannot listen for HTTP on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{service}: no operator may use the admin routes: set ADMIN_TOKENS (name=token,...), or pass --insecure-admin to open them to anyone")]
    NoAdminAccess { service: &'static str },
    #[error("{service}: {source}")]
    AdminTokens {
        service: &'static str,
        #[source]
        source: crate::operators::OperatorsError,
    },
    #[error("{service}: HTTP server failed: {source}")]
    Http {
        service: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// What handlers, routes and tasks of a service share. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub service: &'static str,
    pub pool: PgPool,
    pub client: async_nats::Client,
    pub js: async_nats::jetstream::Context,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    /// What `/metrics` reads when scraped: the consumers' lag and the service's hooks.
    pub scrape: Arc<Scrape>,
}

impl Runtime {
    /// A consumer configuration with this instance's concurrency, ack wait and max deliveries.
    pub fn consumer_config(
        &self,
        durable: &'static str,
        filter_subjects: &[&str],
    ) -> ConsumerConfig {
        let mut config = ConsumerConfig::new(
            self.service,
            durable,
            filter_subjects.iter().map(|s| (*s).to_owned()).collect(),
        );
        config.concurrency = self.settings.consumer_concurrency;
        config.batch = usize::from(self.settings.consumer_batch);
        config.ack_wait = self.settings.ack_wait;
        config.max_failures = self.settings.max_failures;
        config
    }
}

/// A started service: its runtime and its running tasks.
#[derive(Debug)]
pub struct Service {
    rt: Runtime,
    shutdown: CancellationToken,
    consumers: JoinSet<()>,
    background: JoinSet<()>,
    relay_stop: CancellationToken,
    relay: tokio::task::JoinHandle<()>,
    /// Wakes the relay when a consumer committed events.
    relay_wake: RelayWake,
    /// Connections the consumers keep between their transactions.
    kept: Kept,
    streams: StreamSettings,
    /// The streams this service writes and reads: how long they keep events is how long the kit
    /// keeps its rows.
    touched: Vec<&'static str>,
}

/// How many of the pool's `db_max_connections` the consumers keep between their transactions: a
/// quarter, none of a pool under four. The rest stays for the relay, HTTP requests and timers.
fn consumers_keep(db_max_connections: u32) -> usize {
    usize::try_from(db_max_connections / 4).unwrap_or(usize::MAX)
}

async fn connect_pool(settings: &Settings, service: &'static str) -> Result<PgPool, ServiceError> {
    let mut attempt = 0u32;
    loop {
        let result = async {
            let options = connect_options(settings)?;
            // No ping before each acquire: it is a round trip for every transaction, and a
            // connection the database dropped fails its first statement instead, which every
            // caller already treats as the database being unavailable.
            PgPoolOptions::new()
                .max_connections(settings.db_max_connections)
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options)
                .await
        }
        .await;
        match result {
            Ok(pool) => return Ok(pool),
            // A database that is still starting (compose, a restart) gets about a minute.
            Err(e) if attempt < 30 && is_connect_error(&e) => {
                attempt += 1;
                tracing::warn!(service, error = %e, "PostgreSQL not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(source) => {
                return Err(ServiceError::Database {
                    service,
                    url: provision::redact(&settings.database_url),
                    source,
                })
            }
        }
    }
}

/// How long a service starting waits for NATS to answer, as for PostgreSQL ([`connect_pool`]).
const NATS_START_WAIT: Duration = Duration::from_secs(60);

/// A NATS that is starting, restarting or not reachable yet (compose, a node that rebooted with
/// its services) is waited for about a minute. One connect gives up after 10 s without an answer,
/// and the service used to exit then. A wrong URL, credentials or TLS, or a server too old, is an
/// error at once.
async fn connect_nats(
    settings: &Settings,
    service: &'static str,
) -> Result<async_nats::Client, ServiceError> {
    let started = tokio::time::Instant::now();
    loop {
        match provision::connect(&settings.nats_url, &format!("jetsaga-{service}")).await {
            Ok(client) => return Ok(client),
            Err(e) if !e.is_misconfiguration() && started.elapsed() < NATS_START_WAIT => {
                tracing::warn!(service, error = %e, "NATS not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(source) => return Err(ServiceError::Nats { service, source }),
        }
    }
}

/// The service's connections wait at most `lock_timeout` for a lock, and PostgreSQL ends a session
/// left idle in a transaction: one held row (an operator's `psql`, a paused instance) makes the
/// handlers that need it wait and retry, not every handler slot hang behind it.
fn connect_options(settings: &Settings) -> Result<PgConnectOptions, sqlx::Error> {
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    Ok(
        PgConnectOptions::from_str(&settings.database_url)?.options([
            ("lock_timeout", ms(settings.lock_timeout)),
            (
                "idle_in_transaction_session_timeout",
                ms(settings.idle_in_transaction_timeout),
            ),
        ]),
    )
}

/// A database that is starting, restarting or refusing connections for a while is waited for; a
/// database that does not exist, or a wrong password, is an error at once.
fn is_connect_error(e: &sqlx::Error) -> bool {
    saga_kit::handler::is_unavailable(e)
        && e.as_database_error()
            .and_then(|d| d.code())
            .is_none_or(|c| c != "3D000")
}

impl Service {
    /// Connects, migrates, provisions and starts the relay.
    pub async fn start(
        settings: Settings,
        producer: Producer,
        migrations: &'static Migrator,
        shutdown: CancellationToken,
    ) -> Result<Service, ServiceError> {
        let service = producer.service();
        match &settings.admin {
            AdminAccess::Unset => return Err(ServiceError::NoAdminAccess { service }),
            AdminAccess::Invalid(e) => {
                return Err(ServiceError::AdminTokens {
                    service,
                    source: e.clone(),
                })
            }
            AdminAccess::Insecure => {
                tracing::warn!(
                    service,
                    "--insecure-admin: admin routes are open to anyone, as anonymous"
                )
            }
            AdminAccess::Operators(operators) => {
                tracing::info!(service, operators = ?operators.names(), "admin routes need an operator's token")
            }
        }
        let pool = connect_pool(&settings, service).await?;
        saga_kit::migrate::migrate(&pool, Some(migrations))
            .await
            .map_err(|source| ServiceError::Migrate { service, source })?;
        let nats = |source| ServiceError::Nats { service, source };
        let client = connect_nats(&settings, service).await?;
        let js = async_nats::jetstream::new(client.clone());
        let streams = StreamSettings {
            replicas: settings.stream_replicas,
            max_bytes: settings.stream_max_bytes,
            ..StreamSettings::default()
        };
        // Its own stream and the DLQ; each consumer makes sure of the stream it reads.
        provision::ensure_streams(&js, &[producer], &streams)
            .await
            .map_err(nats)?;
        let metrics = Arc::new(Metrics::new());
        let rt = Runtime {
            service,
            pool,
            client,
            js,
            metrics,
            settings,
            scrape: Arc::new(Scrape::default()),
        };
        let relay_stop = CancellationToken::new();
        let relay = Relay::new(
            rt.pool.clone(),
            rt.js.clone(),
            RelayConfig {
                workers: usize::from(rt.settings.relay_workers),
                ..RelayConfig::default()
            },
            rt.metrics.clone(),
        );
        let relay_wake = relay.wake_handle();
        let relay = tokio::spawn(relay.run(relay_stop.clone()));
        let kept = Kept::new(consumers_keep(rt.settings.db_max_connections));
        Ok(Service {
            rt,
            shutdown,
            consumers: JoinSet::new(),
            background: JoinSet::new(),
            relay_stop,
            relay,
            relay_wake,
            kept,
            streams,
            // Its own stream, and the DLQ its dead letters' copies and decisions go to.
            touched: vec![producer.stream(), provision::DLQ_STREAM],
        })
    }

    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// Runs `handler` on the durable consumer `durable` of its input stream.
    pub fn spawn_consumer<H: Handler>(
        &mut self,
        durable: &'static str,
        filter_subjects: &[&str],
        handler: H,
    ) {
        let config = self.rt.consumer_config(durable, filter_subjects);
        let input = <H::Input as jetsaga_contracts::EventSet>::PRODUCER;
        self.rt.scrape.add_consumer(input.stream(), durable);
        if !self.touched.contains(&input.stream()) {
            self.touched.push(input.stream());
        }
        // Not ready until the runner pulls: /health must not answer 200 before the input stream
        // and the durable exist (a test that waited for /health then published onto a stream the
        // spawned task had not created yet).
        self.rt
            .metrics
            .health()
            .set(durable, saga_kit::health::ConsumerState::Starting);
        let consumer = Consumer::new(
            self.rt.pool.clone(),
            self.rt.js.clone(),
            config,
            Arc::new(handler),
            self.rt.metrics.clone(),
        )
        .with_relay(self.relay_wake.clone())
        .with_kept(self.kept.clone());
        let (js, streams, shutdown) = (
            self.rt.js.clone(),
            self.streams.clone(),
            self.shutdown.clone(),
        );
        self.consumers.spawn(async move {
            // The input stream is its producer's; a service that starts first creates it. When it
            // may not (a locked-down user), the runner waits for the operator's provisioning.
            let input = <H::Input as jetsaga_contracts::EventSet>::PRODUCER;
            let config = provision::producer_stream_config(input, &streams);
            if let Err(e) = provision::ensure_stream(&js, &config).await {
                tracing::warn!(durable, stream = input.stream(), error = %e, "cannot make sure of the input stream");
            }
            consumer.run(shutdown).await
        });
    }

    /// Runs `hook` at every scrape of `/metrics` (within [`crate::scrape::READ_TIMEOUT`]), to set
    /// the service's own gauges.
    pub fn on_scrape<F, Fut>(&mut self, hook: F)
    where
        F: Fn(Runtime) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.rt.scrape.add_hook(hook);
    }

    /// Runs a background task (a timer, a sweeper) until shutdown.
    pub fn spawn_task<F, Fut>(&mut self, task: F)
    where
        F: FnOnce(Runtime, CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.background
            .spawn(task(self.rt.clone(), self.shutdown.clone()));
    }

    /// Serves `api` plus `/health` and `/metrics` on `listener` until shutdown, then stops in order.
    pub async fn serve(
        mut self,
        listener: tokio::net::TcpListener,
        api: Router,
    ) -> Result<(), ServiceError> {
        let service = self.rt.service;
        if let Some(every) = self.rt.settings.trim_every {
            let streams = std::mem::take(&mut self.touched);
            self.spawn_task(move |rt, shutdown| crate::trim::run(rt, streams, every, shutdown));
        }
        let router = api
            .layer(axum::middleware::from_fn(crate::http_trace::trace_request))
            .merge(ops::routes(self.rt.clone()))
            .layer(DefaultBodyLimit::max(crate::json::BODY_LIMIT));
        let addr = listener.local_addr().ok();
        tracing::info!(service, ?addr, "serving");
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(self.shutdown.clone().cancelled_owned())
            .await;
        // Whatever ended the server, stop everything else in order.
        self.shutdown.cancel();
        while self.consumers.join_next().await.is_some() {}
        while self.background.join_next().await.is_some() {}
        self.relay_stop.cancel();
        let _ = self.relay.await;
        tracing::info!(service, "stopped");
        served.map_err(|source| ServiceError::Http { service, source })
    }
}

/// A service runs the consumers it declares as durable consumers of this instance.
impl saga_kit::replay::Wiring for Service {
    fn consumer<H: Handler>(
        &mut self,
        durable: &'static str,
        filter_subjects: &[&str],
        handler: H,
    ) {
        self.spawn_consumer(durable, filter_subjects, handler);
    }
}

/// What every service binary does around its `run`: bind HTTP on `http_addr`, cancel on Ctrl-C or
/// SIGTERM, and run until the service has shut down.
pub async fn run_until_signal<F, Fut>(
    http_addr: std::net::SocketAddr,
    run: F,
) -> Result<(), ServiceError>
where
    F: FnOnce(tokio::net::TcpListener, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), ServiceError>>,
{
    let listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .map_err(|source| ServiceError::Bind {
            addr: http_addr,
            source,
        })?;
    let shutdown = CancellationToken::new();
    tokio::spawn(crate::signal::cancel_on_signal(shutdown.clone()));
    run(listener, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::consumers_keep;

    #[test]
    fn consumers_keep_a_quarter_of_the_pool_and_none_of_a_small_one() {
        assert_eq!(consumers_keep(20), 5);
        assert_eq!(consumers_keep(4), 1);
        assert_eq!(consumers_keep(3), 0);
        assert_eq!(consumers_keep(1), 0);
    }
}
