//! Where the system is: NATS and the five service databases, from flags and environment, with the
//! design's defaults.

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use jetsaga_contracts::Producer;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::time::Duration;

/// A service, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum ServiceName {
    Order,
    Voucher,
    Points,
    Payment,
    Stock,
}

impl ServiceName {
    pub fn producer(self) -> Producer {
        match self {
            ServiceName::Order => Producer::ORDER,
            ServiceName::Voucher => Producer::VOUCHER,
            ServiceName::Points => Producer::POINTS,
            ServiceName::Payment => Producer::PAYMENT,
            ServiceName::Stock => Producer::STOCK,
        }
    }
}

/// Connection flags every command shares.
#[derive(Debug, Clone, Args)]
pub struct Targets {
    /// NATS URL; credentials as `nats://user:password@host:port` (the admin user for replay and
    /// requeue).
    /// Default `nats://127.0.0.1:4222`.
    #[arg(long, env = "NATS_URL", global = true, hide_env_values = true)]
    pub nats_url: Option<String>,
    /// The order database. Default `postgres://postgres@127.0.0.1:5432/jetsaga_order`.
    #[arg(
        long,
        env = "ORDER_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub order_db: Option<String>,
    /// The voucher database. Default `.../jetsaga_voucher`.
    #[arg(
        long,
        env = "VOUCHER_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub voucher_db: Option<String>,
    /// The points database. Default `.../jetsaga_points`.
    #[arg(
        long,
        env = "POINTS_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub points_db: Option<String>,
    /// The payment database. Default `.../jetsaga_payment`.
    #[arg(
        long,
        env = "PAYMENT_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub payment_db: Option<String>,
    /// The stock database. Default `.../jetsaga_stock`.
    #[arg(
        long,
        env = "STOCK_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub stock_db: Option<String>,
}

/// The design's default NATS URL.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

impl Targets {
    /// The NATS URL given, or the design's default.
    pub fn nats_url(&self) -> &str {
        self.nats_url.as_deref().unwrap_or(DEFAULT_NATS_URL)
    }

    /// The database URL of a service: the flag, the environment, or the design's default.
    pub fn database_url(&self, producer: Producer) -> String {
        self.given_database_url(producer)
            .map(str::to_owned)
            .unwrap_or_else(|| default_database_url(producer))
    }

    /// The database URL of a service when a flag or the environment gave one.
    pub fn given_database_url(&self, producer: Producer) -> Option<&str> {
        [
            (Producer::ORDER, &self.order_db),
            (Producer::VOUCHER, &self.voucher_db),
            (Producer::POINTS, &self.points_db),
            (Producer::PAYMENT, &self.payment_db),
            (Producer::STOCK, &self.stock_db),
        ]
        .into_iter()
        .find(|(p, _)| *p == producer)
        .and_then(|(_, url)| url.as_deref())
    }

    /// A small pool on a service's database.
    pub async fn pool(&self, producer: Producer) -> anyhow::Result<PgPool> {
        connect_pool(&self.database_url(producer), producer).await
    }

    /// A pool whose transactions can only read: what the reconciler checks with.
    pub async fn read_only_pool(&self, producer: Producer) -> anyhow::Result<PgPool> {
        let url = self.database_url(producer);
        PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("SET default_transaction_read_only = on")
                        .execute(conn)
                        .await
                        .map(|_| ())
                })
            })
            .connect(&url)
            .await
            .with_context(|| {
                format!(
                    "cannot connect to the {producer} database at {}",
                    saga_kit::provision::redact(&url)
                )
            })
    }

    /// A NATS connection, refusing servers older than 2.10.
    pub async fn nats(&self) -> anyhow::Result<async_nats::jetstream::Context> {
        let client = saga_kit::provision::connect(self.nats_url(), "jetsaga-cli")
            .await
            .with_context(|| {
                format!(
                    "cannot connect to NATS at {}",
                    saga_kit::provision::redact(self.nats_url())
                )
            })?;
        Ok(async_nats::jetstream::new(client))
    }
}

/// `postgres://postgres@127.0.0.1:5432/jetsaga_<service>`, the design's default.
pub fn default_database_url(producer: Producer) -> String {
    format!(
        "postgres://postgres@127.0.0.1:5432/jetsaga_{}",
        producer.service()
    )
}

pub async fn connect_pool(url: &str, producer: Producer) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .with_context(|| {
            format!(
                "cannot connect to the {producer} database at {}",
                saga_kit::provision::redact(url)
            )
        })
}
