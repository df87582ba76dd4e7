//! What a saga costs the storage: counters read before and after each measured round, divided
//! by the sagas the round ended. The names are those the peer benchmark (`../shared/peers`)
//! prints, so the two tables read side by side.
//!
//! - PostgreSQL, per service database (`pg_stat_database`): commits and rollbacks; statements
//!   from `pg_stat_statements` when the server preloads it (otherwise left out, never guessed).
//! - PostgreSQL, cluster-wide (`pg_stat_wal`): WAL records, bytes, writes and fsyncs. Anything
//!   else using the server at the time is counted too, hence the `(cluster)` in the name.
//! - NATS (JetStream's own stream and consumer state, no monitoring port needed): messages
//!   published into the producers' streams, deliveries to durable consumers, and acks (the
//!   advance of each durable's ack floor).
//!
//! PostgreSQL publishes a backend's counters at most once a second, so a reading waits
//! [`SETTLE`] first; the error at a round's edges is a few transactions out of thousands.

use async_nats::jetstream;
use futures::TryStreamExt;
use jetsaga_contracts::Producer;
use serde::Serialize;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a reading waits for backends to publish their statistics.
pub const SETTLE: Duration = Duration::from_millis(1100);

/// Counter values by name.
pub type Values = BTreeMap<String, f64>;

/// Reads the counters of one system: its service databases and its JetStream.
#[derive(Debug)]
pub struct Meter {
    /// (service, database name, a pool on it)
    databases: Vec<(String, String, PgPool)>,
    js: jetstream::Context,
    producers: Vec<Producer>,
    statements: bool,
}

impl Meter {
    /// `pools` are the system's databases in the order of `producers`.
    pub async fn new(
        producers: &[Producer],
        pools: &[PgPool],
        js: jetstream::Context,
    ) -> anyhow::Result<Meter> {
        let mut databases = Vec::new();
        for (producer, pool) in producers.iter().zip(pools) {
            let name: String = sqlx::query_scalar("SELECT current_database()::text")
                .fetch_one(pool)
                .await?;
            databases.push((producer.service().to_owned(), name, pool.clone()));
        }
        let statements = match databases.first() {
            Some((_, _, pool)) => statements_available(pool).await,
            None => false,
        };
        Ok(Meter {
            databases,
            js,
            producers: producers.to_vec(),
            statements,
        })
    }

    /// Whether statements are counted (the server preloads `pg_stat_statements`).
    pub fn counts_statements(&self) -> bool {
        self.statements
    }

    /// Every counter now, after [`SETTLE`]. A counter that cannot be read is left out.
    pub async fn read(&self) -> Values {
        tokio::time::sleep(SETTLE).await;
        let mut v = Values::new();
        if let Err(e) = self.read_postgres(&mut v).await {
            tracing::warn!(error = %e, "bench: reading PostgreSQL's counters");
        }
        self.read_nats(&mut v).await;
        v
    }

    async fn read_postgres(&self, v: &mut Values) -> Result<(), sqlx::Error> {
        let Some((_, _, any)) = self.databases.first() else {
            return Ok(());
        };
        for (service, name, _) in &self.databases {
            let (commits, rollbacks): (i64, i64) = sqlx::query_as(
                "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = $1",
            )
            .bind(name)
            .fetch_one(any)
            .await?;
            v.insert(format!("pg commits {service}"), commits as f64);
            v.insert(format!("pg rollbacks {service}"), rollbacks as f64);
            if self.statements {
                let calls: f64 = sqlx::query_scalar(
                    "SELECT coalesce(sum(s.calls), 0)::float8 FROM pg_stat_statements s \
                     JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1",
                )
                .bind(name)
                .fetch_one(any)
                .await?;
                v.insert(format!("pg statements {service}"), calls);
            }
        }
        let (records, bytes, writes, syncs): (i64, f64, i64, i64) = sqlx::query_as(
            "SELECT wal_records, wal_bytes::float8, wal_write, wal_sync FROM pg_stat_wal",
        )
        .fetch_one(any)
        .await?;
        v.insert("pg wal records (cluster)".into(), records as f64);
        v.insert("pg wal bytes (cluster)".into(), bytes);
        v.insert("pg wal writes (cluster)".into(), writes as f64);
        v.insert("pg wal syncs (cluster)".into(), syncs as f64);
        Ok(())
    }

    async fn read_nats(&self, v: &mut Values) {
        let (mut published, mut delivered, mut acked) = (0u64, 0u64, 0u64);
        for producer in &self.producers {
            let Ok(mut stream) = self.js.get_stream(producer.stream()).await else {
                continue;
            };
            if let Ok(info) = stream.info().await {
                published += info.state.last_sequence;
            }
            let mut consumers = stream.consumers();
            while let Ok(Some(info)) = consumers.try_next().await {
                if info.config.durable_name.is_some() {
                    delivered += info.delivered.consumer_sequence;
                    acked += info.ack_floor.consumer_sequence;
                }
            }
        }
        v.insert("nats publishes".into(), published as f64);
        v.insert("nats deliveries".into(), delivered as f64);
        v.insert("nats acks".into(), acked as f64);
    }
}

/// Whether `pg_stat_statements` can be read: the server preloads it and the extension exists
/// (created here if the bench's connection may).
async fn statements_available(pool: &PgPool) -> bool {
    let preloaded: Option<String> = sqlx::query_scalar("SHOW shared_preload_libraries")
        .fetch_optional(pool)
        .await
        .ok()
        .flatten();
    if !preloaded.is_some_and(|libs| libs.split(',').any(|l| l.trim() == "pg_stat_statements")) {
        return false;
    }
    let _ = sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(pool)
        .await;
    sqlx::query("SELECT 1 FROM pg_stat_statements LIMIT 1")
        .fetch_optional(pool)
        .await
        .is_ok()
}

/// Counter increases summed over rounds, and the sagas those rounds ended.
#[derive(Debug, Clone, Default)]
pub struct Cost {
    increase: Values,
    sagas: usize,
}

impl Cost {
    /// Adds one round: the counters before and after it, and the sagas it ended. A counter
    /// missing from either reading is not added (no partial figure).
    pub fn add(&mut self, before: &Values, after: &Values, sagas: usize) {
        for (name, end) in after {
            if let Some(start) = before.get(name) {
                *self.increase.entry(name.clone()).or_insert(0.0) += (end - start).max(0.0);
            }
        }
        self.sagas += sagas;
    }

    /// Each counter's increase per ended saga, rounded to two decimals; empty without sagas.
    pub fn per_saga(&self) -> PerSaga {
        if self.sagas == 0 {
            return PerSaga::default();
        }
        PerSaga(
            self.increase
                .iter()
                .map(|(name, total)| {
                    let each = total / self.sagas as f64;
                    (name.clone(), (each * 100.0).round() / 100.0)
                })
                .collect(),
        )
    }
}

/// Counters per saga side by side: a row for each counter any column has, a column for each
/// system (`-` where a system has no such counter).
pub fn table(columns: &[(&str, &Values)]) -> jetsaga_cli::output::Table {
    let mut t = jetsaga_cli::output::Table::new(
        std::iter::once("PER SAGA".to_owned()).chain(columns.iter().map(|(c, _)| c.to_string())),
    );
    let names: std::collections::BTreeSet<&String> = columns
        .iter()
        .flat_map(|(_, values)| values.keys())
        .collect();
    for name in names {
        t.row(
            std::iter::once(name.clone()).chain(columns.iter().map(|(_, values)| {
                values
                    .get(name)
                    .map(|v| format!("{v:.2}"))
                    .unwrap_or_else(|| "-".into())
            })),
        );
    }
    t
}

/// Counter increases per saga, by counter name.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct PerSaga(pub Values);

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, f64)]) -> Values {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn a_cost_is_the_increase_over_rounds_divided_by_their_sagas() {
        let mut cost = Cost::default();
        cost.add(
            &values(&[("pg commits order", 100.0), ("nats acks", 10.0)]),
            &values(&[("pg commits order", 130.0), ("nats acks", 40.0)]),
            10,
        );
        cost.add(
            &values(&[("pg commits order", 500.0), ("nats acks", 50.0)]),
            &values(&[("pg commits order", 530.0), ("nats acks", 65.0)]),
            10,
        );
        let per = cost.per_saga().0;
        assert_eq!(per["pg commits order"], 3.0);
        assert_eq!(per["nats acks"], 2.25);
    }

    #[test]
    fn a_counter_missing_from_a_reading_is_left_out_not_guessed() {
        let mut cost = Cost::default();
        cost.add(
            &values(&[("pg commits order", 1.0)]),
            &values(&[("pg commits order", 4.0), ("pg statements order", 90.0)]),
            3,
        );
        let per = cost.per_saga().0;
        assert_eq!(per.get("pg statements order"), None);
        assert_eq!(per["pg commits order"], 1.0);
    }

    #[test]
    fn no_saga_ended_means_no_figure() {
        let mut cost = Cost::default();
        cost.add(&values(&[("x", 1.0)]), &values(&[("x", 9.0)]), 0);
        assert!(cost.per_saga().0.is_empty());
    }
}
