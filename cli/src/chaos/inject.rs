//! Carrying out a planned fault on the running system, and undoing it after its hold.

use super::schedule::{Fault, Kind};
use anyhow::Context as _;
use jetsaga_contracts::Producer;
use jetsaga_scenarios::netcut::Cut;
use jetsaga_scenarios::{inject, Svc, System};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::Duration;

/// Injects faults into one system and counts them.
pub struct Injector {
    js: async_nats::jetstream::Context,
    admin: PgPool,
    databases: Vec<String>,
    rng: StdRng,
    /// Poison messages published: each is read by one consumer, so each is one dead letter.
    pub poison: usize,
    /// Faults carried out, by kind.
    pub done: BTreeMap<Kind, usize>,
}

impl std::fmt::Debug for Injector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Injector")
            .field("done", &self.done)
            .finish()
    }
}

impl Injector {
    pub async fn new(sys: &System, seed: u64) -> anyhow::Result<Injector> {
        let js = inject::jetstream(sys.nats_url()).await?;
        let admin_url = std::env::var(jetsaga_testkit::postgres::TEST_PG_URL_ENV)
            .unwrap_or_else(|_| jetsaga_testkit::postgres::DEFAULT_TEST_PG_URL.to_owned());
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin_url)
            .await
            .context("connecting to PostgreSQL as its admin (to terminate connections)")?;
        let mut databases = Vec::new();
        for svc in Svc::ALL {
            let url = sys.database_url(svc)?;
            databases.push(url.rsplit('/').next().unwrap_or_default().to_owned());
        }
        Ok(Injector {
            js,
            admin,
            databases,
            rng: StdRng::seed_from_u64(seed ^ 0xC4A05),
            poison: 0,
            done: BTreeMap::new(),
        })
    }

    /// Carries the fault out, holds it, and undoes it.
    pub async fn inject(&mut self, sys: &mut System, fault: &Fault) -> anyhow::Result<()> {
        let hold = Duration::from_secs_f64(fault.hold);
        let svc = Svc::ALL[fault.service % 4];
        let instance = fault.instance;
        tracing::info!(
            kind = fault.kind.as_str(),
            svc = svc.name(),
            instance,
            hold = fault.hold,
            "fault"
        );
        match fault.kind {
            Kind::KillService => {
                sys.kill_instance(svc, instance)?;
                tokio::time::sleep(hold).await;
                sys.restart_instance(svc, instance).await?;
            }
            Kind::PauseService => {
                sys.pause_instance(svc, instance)?;
                tokio::time::sleep(hold).await;
                sys.resume_instance(svc, instance)?;
            }
            Kind::KillNats => {
                // On a cluster, one of its nodes.
                let node = fault.service % (1 + sys.nats_peers.len());
                let nats = match node {
                    0 => sys.nats.as_mut().context("no nats-server to kill")?,
                    n => &mut sys.nats_peers[n - 1],
                };
                nats.kill()?;
                tokio::time::sleep(hold).await;
                nats.restart().await?;
            }
            Kind::CutNatsDrop | Kind::CutNatsReject => {
                let how = if fault.kind == Kind::CutNatsDrop {
                    Cut::Drop
                } else {
                    Cut::Reject
                };
                sys.cut_nats(how)?;
                tokio::time::sleep(hold).await;
                sys.heal_nats();
            }
            Kind::KillPgConnections => {
                let killed: Vec<bool> = sqlx::query_scalar(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE datname = ANY($1) AND pid <> pg_backend_pid()",
                )
                .bind(&self.databases)
                .fetch_all(&self.admin)
                .await
                .context("terminating the services' PostgreSQL connections")?;
                tracing::info!(connections = killed.len(), "terminated");
            }
            Kind::DuplicateEvents => self.duplicate_events().await?,
            Kind::Poison => {
                let subject = format!("payments.succeeded.{}", uuid::Uuid::new_v4());
                inject::publish_junk(&self.js, &subject, b"\x00poison{".to_vec()).await?;
                self.poison += 1;
            }
        }
        *self.done.entry(fault.kind).or_insert(0) += 1;
        Ok(())
    }

    /// Publishes up to five recent events of one stream again, in shuffled order, under new
    /// Msg-Ids (so JetStream does not dedupe them): duplicates that arrive out of order.
    async fn duplicate_events(&mut self) -> anyhow::Result<()> {
        let producer = Producer::ALL[self.rng.random_range(0..4)];
        let mut stream = self.js.get_stream(producer.stream()).await?;
        let last = stream.info().await?.state.last_sequence;
        if last == 0 {
            return Ok(());
        }
        let first = last.saturating_sub(200).max(1);
        let mut seqs: Vec<u64> = (0..5)
            .map(|_| self.rng.random_range(first..=last))
            .collect();
        seqs.shuffle(&mut self.rng);
        for seq in seqs {
            // Only events: a poison message published again would be one more dead letter.
            let (_, headers, _) = inject::read_message(&self.js, producer.stream(), seq).await?;
            if headers.get("ce-id").is_none() {
                continue;
            }
            inject::republish(&self.js, producer.stream(), seq)
                .await
                .with_context(|| format!("republishing {} seq {seq}", producer.stream()))?;
        }
        Ok(())
    }
}
