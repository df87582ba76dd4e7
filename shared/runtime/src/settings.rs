//! Typed settings from flags and environment. Each service passes its own [`Defaults`] (port and
//! database name from the design's contract table); everything else is shared.

use crate::operators::{AdminAccess, Operators};
use clap::Args;
use std::net::SocketAddr;
use std::time::Duration;

/// The parts of the settings whose defaults differ per service.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    /// e.g. `127.0.0.1:8080` for order.
    pub http_addr: &'static str,
    /// e.g. `jetsaga_order`.
    pub database: &'static str,
}

/// Flags and environment shared by every service.
#[derive(Debug, Clone, Args)]
pub struct SettingsArgs {
    /// Address to serve HTTP on. Default: the service's port on 127.0.0.1 (8080 order, 8081
    /// payment, 8082 stock, 8083 voucher).
    #[arg(long, env = "HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// PostgreSQL URL of this service's own database. Default:
    /// `postgres://postgres@127.0.0.1:5432/jetsaga_<service>`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// NATS URL; credentials may be given as `nats://user:password@host:port`.
    #[arg(
        long,
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        hide_env_values = true
    )]
    pub nats_url: String,
    /// Maximum PostgreSQL connections of this instance.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 20)]
    pub db_max_connections: u32,
    /// Transactions each consumer runs at once.
    #[arg(long, env = "CONSUMER_CONCURRENCY", default_value_t = 16)]
    pub consumer_concurrency: usize,
    /// Most messages a consumer handles in one transaction, when that many wait while its
    /// transactions are busy (1: every message in its own).
    #[arg(long, env = "CONSUMER_BATCH", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub consumer_batch: u16,
    /// Threads of the service's async runtime. A service mostly waits on PostgreSQL and NATS, and
    /// where it shares the cores with them, one thread spends less CPU per saga than one per core
    /// (`docs/bench-notes.md`, fourth round). Raise it where a service has cores of its own and
    /// uses them, or run more instances.
    #[arg(long, env = "WORKER_THREADS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub worker_threads: u16,
    /// Outbox relay steps at once: while one waits for its PubAcks, another publishes what was
    /// committed meanwhile.
    #[arg(long, env = "RELAY_WORKERS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub relay_workers: u16,
    /// Replicas of each stream when this instance creates them (3 on a 3-node cluster).
    #[arg(long, env = "STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,
    /// Byte limit of each stream when this instance creates them, -1 for none. A limit is reserved
    /// up front against the server's file store.
    #[arg(long, env = "STREAM_MAX_BYTES", default_value_t = -1, allow_negative_numbers = true)]
    pub stream_max_bytes: i64,
    /// Seconds before the server redelivers an unacked message.
    #[arg(long, env = "ACK_WAIT_SECS", default_value_t = 30)]
    pub ack_wait_secs: u64,
    /// Deliveries of a message that may fail while the database answers before it is
    /// dead-lettered. An unavailable database (or NATS) never counts: it is waited for.
    #[arg(long, env = "MAX_FAILURES", default_value_t = 5)]
    pub max_failures: i64,
    /// Longest wait for a row lock, in milliseconds; past it the statement fails and the message is
    /// tried again later, so one held lock cannot stall every handler. A wait holds one of the
    /// instance's few connections, so it is kept short: a step holds its rows for milliseconds.
    #[arg(long, env = "LOCK_TIMEOUT_MS", default_value_t = 500)]
    pub lock_timeout_ms: u64,
    /// A session of this service idle inside a transaction this long (milliseconds) is ended by
    /// PostgreSQL, releasing its locks (a paused or hung instance).
    #[arg(long, env = "IDLE_IN_TRANSACTION_TIMEOUT_MS", default_value_t = 30000)]
    pub idle_in_transaction_timeout_ms: u64,
    /// Seconds between two trims of the kit's tables: published outbox rows and inbox rows older
    /// than the streams keep events, plus a day, are deleted (`saga_kit::retention`). The first
    /// trim runs ten minutes after start (or after this, if shorter). 0: never trim.
    #[arg(long, env = "TRIM_EVERY_SECS", default_value_t = 86_400)]
    pub trim_every_secs: u64,
    /// The operators who may use the admin routes, as `name=token` pairs separated by commas
    /// (tokens of at least 16 characters). An admin request carries `Authorization: Bearer
    /// <token>`, and the name is recorded as the `actor` of the change's event.
    #[arg(
        long,
        env = "ADMIN_TOKENS",
        hide_env_values = true,
        conflicts_with = "insecure_admin"
    )]
    // Read as text and checked at start-up (Service::start), so that a malformed value is refused
    // without clap printing the value, tokens included.
    pub admin_tokens: Option<String>,
    /// Open the admin routes to anyone, recorded as `anonymous`. Without this or ADMIN_TOKENS
    /// the service refuses to start.
    #[arg(long, env = "INSECURE_ADMIN")]
    pub insecure_admin: bool,
}

/// The resolved settings of one service instance.
#[derive(Clone)]
pub struct Settings {
    pub http_addr: SocketAddr,
    pub database_url: String,
    pub nats_url: String,
    pub db_max_connections: u32,
    pub consumer_concurrency: usize,
    pub consumer_batch: u16,
    pub relay_workers: u16,
    pub stream_replicas: usize,
    pub stream_max_bytes: i64,
    pub ack_wait: Duration,
    pub max_failures: i64,
    pub lock_timeout: Duration,
    pub idle_in_transaction_timeout: Duration,
    /// How often the kit's tables are trimmed; `None`: never.
    pub trim_every: Option<Duration>,
    /// Who may use the admin routes.
    pub admin: AdminAccess,
}

/// Secrets stay out of logs: the URLs are shown without their passwords.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("http_addr", &self.http_addr)
            .field(
                "database_url",
                &saga_kit::provision::redact(&self.database_url),
            )
            .field("nats_url", &saga_kit::provision::redact(&self.nats_url))
            .field("db_max_connections", &self.db_max_connections)
            .field("consumer_concurrency", &self.consumer_concurrency)
            .field("consumer_batch", &self.consumer_batch)
            .field("relay_workers", &self.relay_workers)
            .field("stream_replicas", &self.stream_replicas)
            .field("stream_max_bytes", &self.stream_max_bytes)
            .field("ack_wait", &self.ack_wait)
            .field("max_failures", &self.max_failures)
            .field("lock_timeout", &self.lock_timeout)
            .field(
                "idle_in_transaction_timeout",
                &self.idle_in_transaction_timeout,
            )
            .field("trim_every", &self.trim_every)
            .field("admin", &self.admin)
            .finish()
    }
}

impl SettingsArgs {
    /// The service's async runtime, with `worker_threads` threads.
    pub fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(self.worker_threads))
            .enable_all()
            .build()
    }

    pub fn resolve(self, defaults: Defaults) -> Settings {
        Settings {
            http_addr: self.http_addr.unwrap_or_else(|| {
                defaults
                    .http_addr
                    .parse()
                    .expect("service default addresses are valid")
            }),
            database_url: self.database_url.unwrap_or_else(|| {
                format!("postgres://postgres@127.0.0.1:5432/{}", defaults.database)
            }),
            nats_url: self.nats_url,
            db_max_connections: self.db_max_connections,
            consumer_concurrency: self.consumer_concurrency,
            consumer_batch: self.consumer_batch,
            relay_workers: self.relay_workers,
            stream_replicas: self.stream_replicas,
            stream_max_bytes: self.stream_max_bytes,
            ack_wait: Duration::from_secs(self.ack_wait_secs),
            max_failures: self.max_failures,
            lock_timeout: Duration::from_millis(self.lock_timeout_ms),
            idle_in_transaction_timeout: Duration::from_millis(self.idle_in_transaction_timeout_ms),
            trim_every: Some(Duration::from_secs(self.trim_every_secs)).filter(|d| !d.is_zero()),
            admin: match (self.admin_tokens, self.insecure_admin) {
                (Some(text), _) => match text.parse::<Operators>() {
                    Ok(operators) => AdminAccess::Operators(operators),
                    Err(e) => AdminAccess::Invalid(e),
                },
                (None, true) => AdminAccess::Insecure,
                (None, false) => AdminAccess::Unset,
            },
        }
    }
}

impl Settings {
    /// The defaults of a service with nothing given, for tests and the dev command. Its admin
    /// access is unset: the caller names its operators (see [`Settings::with_operator`]).
    pub fn with_defaults(defaults: Defaults) -> Settings {
        SettingsArgs {
            http_addr: None,
            database_url: None,
            nats_url: "nats://127.0.0.1:4222".to_owned(),
            db_max_connections: 20,
            consumer_concurrency: 16,
            consumer_batch: 16,
            worker_threads: 1,
            relay_workers: 1,
            stream_replicas: 1,
            stream_max_bytes: -1,
            ack_wait_secs: 30,
            max_failures: 5,
            lock_timeout_ms: 500,
            idle_in_transaction_timeout_ms: 30000,
            trim_every_secs: 86_400,
            admin_tokens: None,
            insecure_admin: false,
        }
        .resolve(defaults)
    }

    /// These settings with one operator admitted by `token`.
    pub fn with_operator(mut self, name: jetsaga_contracts::Actor, token: &str) -> Settings {
        self.admin = AdminAccess::Operators(Operators::single(name, token));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        settings: SettingsArgs,
    }

    fn runtime_workers(args: &[&str]) -> Result<usize, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("service").chain(args.iter().copied()))?;
        let runtime = cli.settings.runtime().expect("the runtime starts");
        Ok(runtime.metrics().num_workers())
    }

    #[test]
    fn a_service_runs_on_one_runtime_thread_unless_told_otherwise() {
        assert_eq!(runtime_workers(&[]).unwrap(), 1);
        assert_eq!(runtime_workers(&["--worker-threads", "3"]).unwrap(), 3);
    }

    fn trim_every(args: &[&str]) -> Option<Duration> {
        let cli = Cli::try_parse_from(std::iter::once("service").chain(args.iter().copied()))
            .expect("the arguments parse");
        cli.settings
            .resolve(Defaults {
                http_addr: "127.0.0.1:8080",
                database: "jetsaga_order",
            })
            .trim_every
    }

    #[test]
    fn the_kit_tables_are_trimmed_daily_unless_told_otherwise_or_never() {
        assert_eq!(trim_every(&[]), Some(Duration::from_secs(86_400)));
        assert_eq!(
            trim_every(&["--trim-every-secs", "3600"]),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(trim_every(&["--trim-every-secs", "0"]), None);
    }

    #[test]
    fn zero_runtime_threads_is_refused_with_the_setting_named() {
        let e = runtime_workers(&["--worker-threads", "0"]).unwrap_err();
        assert!(e.to_string().contains("--worker-threads"), "{e}");
    }
}
