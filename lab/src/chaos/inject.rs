//! Carrying out a planned fault on the running system, and undoing it after its hold.
//!
//! Each fault is logged on stderr as it starts and as it is undone, and recorded with its times
//! ([`Held`]), from which [`super::timeouts`] decides which deadline cancellations a fault explains.
//! Faults on state that outlives a process (a database refusing connections, the DLQ's limits) are
//! undone by a [`guard`] also when the run fails or is interrupted.

use super::guard::{ChangedStream, RefusingDatabase};
use super::readers::{self, Reader};
use super::schedule::{Fault, Kind};
use super::timeouts::Stall;
use anyhow::Context as _;
use async_nats::jetstream::stream::DiscardPolicy;
use async_nats::HeaderMap;
use jetsaga_contracts::events::payment::PaymentSucceeded;
use jetsaga_contracts::Producer;
use jetsaga_scenarios::netcut::Cut;
use jetsaga_scenarios::{inject, Svc, System};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, RngCore, SeedableRng};
use serde::Serialize;
use sqlx::{Connection as _, PgConnection, PgPool};
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;

/// How long a graceful stop of an instance may take before it counts as hung.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// How long after its hold a deleted consumer may take to be back.
const CONSUMER_BACK_WITHIN: Duration = Duration::from_secs(30);

/// The sizes of a big poison message.
const BIG_POISON_BYTES: std::ops::RangeInclusive<usize> = 100 * 1024..=900 * 1024;

/// The dead letter a poison message must leave: one per consumer that reads its subject.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Expected {
    pub consumer: String,
    pub stream: String,
    pub stream_seq: i64,
}

/// A fault as it was carried out.
#[derive(Debug, Clone, Serialize)]
pub struct Held {
    pub kind: Kind,
    /// What it hit, in words: `payment database`, `stock-1`, `voucher-on-orders`, ...
    pub target: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ended: OffsetDateTime,
    /// The SKU whose stock row a lock holder held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
}

impl Held {
    /// The time orders stalled, if this kind stalls them.
    pub fn stall(&self) -> Option<Stall> {
        self.kind.stalls_orders().then(|| Stall {
            start: self.started,
            end: self.ended,
            sku: self.sku.clone(),
        })
    }
}

/// Injects faults into one system and counts them.
pub struct Injector {
    js: async_nats::jetstream::Context,
    nats_url: String,
    admin: PgPool,
    admin_url: String,
    /// Per service, in [`Svc::ALL`] order: its database's name and URL.
    databases: Vec<(String, String)>,
    readers: Vec<Reader>,
    hot_skus: Vec<String>,
    rng: StdRng,
    /// Poison messages published (of every size).
    pub poison: usize,
    /// The dead letters the poison must leave.
    pub expected: Vec<Expected>,
    /// Faults carried out, by kind.
    pub done: BTreeMap<Kind, usize>,
    /// Every fault carried out, in order.
    pub held: Vec<Held>,
    /// What a fault's undo found wrong with the system (a consumer not recreated, a graceful stop
    /// that was not): problems of the run, not failures to inject.
    pub findings: Vec<String>,
}

impl std::fmt::Debug for Injector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Injector")
            .field("done", &self.done)
            .finish()
    }
}

impl Injector {
    /// An injector on `sys`; `hot_skus` are the SKUs whose rows a lock holder takes.
    pub async fn new(sys: &System, seed: u64, hot_skus: Vec<String>) -> anyhow::Result<Injector> {
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
            let name = url.rsplit('/').next().unwrap_or_default();
            let name = name.split('?').next().unwrap_or_default().to_owned();
            databases.push((name, url));
        }
        Ok(Injector {
            js,
            nats_url: sys.nats_url().to_owned(),
            admin,
            admin_url,
            databases,
            readers: readers::all(),
            hot_skus,
            rng: StdRng::seed_from_u64(seed ^ 0xC4A05),
            poison: 0,
            expected: Vec::new(),
            done: BTreeMap::new(),
            held: Vec::new(),
            findings: Vec::new(),
        })
    }

    /// Carries the fault out, holds it, and undoes it.
    pub async fn inject(&mut self, sys: &mut System, fault: &Fault) -> anyhow::Result<()> {
        let hold = Duration::from_secs_f64(fault.hold);
        let svc = Svc::ALL[fault.service % Svc::ALL.len()];
        let instance = fault.instance;
        let started = OffsetDateTime::now_utc();
        let mut sku = None;
        let target = match fault.kind {
            Kind::KillService => {
                sys.kill_instance(svc, instance)?;
                tokio::time::sleep(hold).await;
                sys.restart_instance(svc, instance).await?;
                format!("{}-{instance}", svc.name())
            }
            Kind::PauseService => {
                sys.pause_instance(svc, instance)?;
                tokio::time::sleep(hold).await;
                sys.resume_instance(svc, instance)?;
                format!("{}-{instance}", svc.name())
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
                format!("nats node {node}")
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
                "the services' link to NATS".to_owned()
            }
            Kind::KillPgConnections => {
                let names: Vec<&str> = self.databases.iter().map(|(n, _)| n.as_str()).collect();
                let killed: Vec<bool> = sqlx::query_scalar(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE datname = ANY($1) AND pid <> pg_backend_pid()",
                )
                .bind(&names)
                .fetch_all(&self.admin)
                .await
                .context("terminating the services' PostgreSQL connections")?;
                format!("{} connections", killed.len())
            }
            Kind::DuplicateEvents => self.duplicate_events().await?,
            Kind::Poison => {
                let subject = PaymentSucceeded::subject_of(uuid::Uuid::new_v4());
                self.poison(&subject, b"\x00poison{".to_vec(), HeaderMap::new())
                    .await?;
                subject
            }
            Kind::PgOutage => self.pg_outage(svc, hold).await?,
            Kind::RollingRestart => self.rolling_restart(sys, svc).await?,
            Kind::BigPoison => self.big_poison().await?,
            Kind::DeleteConsumer => self.delete_consumer(fault.service, hold).await?,
            Kind::LockHolder => {
                let (target, held) = self.lock_holder(hold).await?;
                sku = Some(held);
                target
            }
            Kind::DlqFull => self.dlq_full(hold).await?,
        };
        let ended = OffsetDateTime::now_utc();
        eprintln!(
            "jetsaga chaos: {} on {target}, held {:.1} s",
            fault.kind.as_str(),
            (ended - started).as_seconds_f64()
        );
        self.held.push(Held {
            kind: fault.kind,
            target,
            started,
            ended,
            sku,
        });
        *self.done.entry(fault.kind).or_insert(0) += 1;
        Ok(())
    }

    /// Publishes a poison message and records the dead letters it must leave.
    async fn poison(
        &mut self,
        subject: &str,
        payload: Vec<u8>,
        headers: HeaderMap,
    ) -> anyhow::Result<()> {
        let seq = inject::publish_junk_with_headers(&self.js, subject, payload, headers)
            .await
            .with_context(|| format!("publishing poison on {subject}"))?;
        self.poison += 1;
        let readers = readers::of_subject(&self.readers, subject);
        anyhow::ensure!(
            !readers.is_empty(),
            "no consumer reads {subject}: the poison would test nothing"
        );
        for r in readers {
            self.expected.push(Expected {
                consumer: r.durable.to_owned(),
                stream: r.stream.to_owned(),
                stream_seq: i64::try_from(seq)?,
            });
        }
        Ok(())
    }

    /// Publishes up to five recent events of one stream again, in shuffled order, under new
    /// Msg-Ids (so JetStream does not dedupe them): duplicates that arrive out of order.
    async fn duplicate_events(&mut self) -> anyhow::Result<String> {
        let producer = Producer::ALL[self.rng.random_range(0..4)];
        let mut stream = self.js.get_stream(producer.stream()).await?;
        let last = stream.info().await?.state.last_sequence;
        if last == 0 {
            return Ok(producer.stream().to_owned());
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
        Ok(producer.stream().to_owned())
    }

    /// The service's database refuses every connection (its own included, though it connects as
    /// a superuser) for the hold, then takes them again.
    async fn pg_outage(&mut self, svc: Svc, hold: Duration) -> anyhow::Result<String> {
        let (database, url) = &self.databases[svc as usize];
        let (refusing, terminated) =
            RefusingDatabase::refuse(&self.admin, &self.admin_url, database).await?;
        // The services connect as a superuser too: the fault is real only if it refuses them.
        if let Ok(conn) = PgConnection::connect(url).await {
            let _ = conn.close().await;
            anyhow::bail!("{database} still takes connections with ALLOW_CONNECTIONS false");
        }
        eprintln!(
            "jetsaga chaos: pg_outage: the {} database refuses connections ({terminated} \
             terminated) for {:.1} s",
            svc.name(),
            hold.as_secs_f64()
        );
        tokio::time::sleep(hold).await;
        refusing.allow(&self.admin).await?;
        Ok(format!("{} database", svc.name()))
    }

    /// Every instance of the service, one after another: SIGTERM, wait for its exit, start it
    /// again, wait until healthy.
    async fn rolling_restart(&mut self, sys: &mut System, svc: Svc) -> anyhow::Result<String> {
        let instances = sys.instance_count(svc);
        for instance in 0..instances {
            let began = std::time::Instant::now();
            let restarted = sys
                .restart_instance_gracefully(svc, instance, STOP_GRACE)
                .await;
            eprintln!(
                "jetsaga chaos: rolling_restart: {}-{instance} stopped and healthy again in \
                 {:.1} s",
                svc.name(),
                began.elapsed().as_secs_f64()
            );
            match restarted {
                Ok(status) if status.success() => {}
                Ok(status) => self.findings.push(format!(
                    "{}-{instance} ended with {status} on SIGTERM (a graceful stop exits 0)",
                    svc.name()
                )),
                Err(e) => {
                    self.findings.push(format!(
                        "{}-{instance}: graceful restart: {e:#}",
                        svc.name()
                    ));
                    // Whatever failed, the instance runs again before the next fault.
                    sys.restart_instance(svc, instance).await?;
                }
            }
        }
        Ok(format!("{} ({instances} instances)", svc.name()))
    }

    /// 100 KB–900 KB of random bytes on a subject some consumer reads; every other one also
    /// carries NUL bytes in header values (which neither JSONB nor TEXT can store as they are).
    async fn big_poison(&mut self) -> anyhow::Result<String> {
        let reader = self
            .readers
            .choose(&mut self.rng)
            .context("the services declare no consumers")?;
        let filter = reader
            .filters
            .choose(&mut self.rng)
            .context("a consumer with no filter")?;
        let order = uuid::Uuid::new_v4().to_string();
        let subject = filter
            .split('.')
            .map(|t| {
                if t == "*" || t == ">" {
                    order.as_str()
                } else {
                    t
                }
            })
            .collect::<Vec<_>>()
            .join(".");
        let mut payload = vec![0u8; self.rng.random_range(BIG_POISON_BYTES)];
        self.rng.fill_bytes(&mut payload);
        // Binary from its first byte, whatever the draw.
        payload[0] = 0;
        let mut headers = HeaderMap::new();
        let nul_headers = self.rng.random_bool(0.5);
        if nul_headers {
            headers.insert("ce-type", "jetsaga.junk\u{0}.v1");
            headers.insert("x-junk", "\u{0}\u{0}junk\u{0}");
        }
        let size = payload.len();
        self.poison(&subject, payload, headers).await?;
        Ok(format!(
            "{subject} ({} KB{})",
            size / 1024,
            if nul_headers {
                ", NUL in header values"
            } else {
                ""
            }
        ))
    }

    /// Deletes one of the service's durable consumers as an admin would; after the hold, the
    /// service must have created it again.
    async fn delete_consumer(&mut self, service: usize, hold: Duration) -> anyhow::Result<String> {
        let producer = Producer::ALL[service % 4];
        let own: Vec<&Reader> = self
            .readers
            .iter()
            .filter(|r| r.service == producer)
            .collect();
        let reader = (*own
            .choose(&mut self.rng)
            .with_context(|| format!("{} has no consumer", producer.service()))?)
        .clone();
        let stream = self.js.get_stream(reader.stream).await?;
        stream
            .delete_consumer(reader.durable)
            .await
            .with_context(|| format!("deleting consumer {}", reader.durable))?;
        tokio::time::sleep(hold).await;
        let back = tokio::time::Instant::now() + CONSUMER_BACK_WITHIN;
        loop {
            if stream.consumer_info(reader.durable).await.is_ok() {
                break;
            }
            if tokio::time::Instant::now() >= back {
                self.findings.push(format!(
                    "consumer {} was deleted and not created again within {:?} of the hold \
                     ({} s)",
                    reader.durable,
                    CONSUMER_BACK_WITHIN,
                    hold.as_secs_f64()
                ));
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(reader.durable.to_owned())
    }

    /// A session of its own on the stock database holds a hot SKU's row (`FOR UPDATE`) for the
    /// hold, then rolls back. Returns the target and the SKU.
    async fn lock_holder(&mut self, hold: Duration) -> anyhow::Result<(String, String)> {
        let url = &self.databases[Svc::Stock as usize].1;
        let mut conn = PgConnection::connect(url)
            .await
            .context("connecting to the stock database to hold a row")?;
        // Whatever timeouts the services' sessions get, or a role default, this one holds on.
        for setting in [
            "SET idle_in_transaction_session_timeout = 0",
            "SET lock_timeout = 0",
            "SET statement_timeout = 0",
        ] {
            sqlx::query(setting).execute(&mut conn).await?;
        }
        let sku = match self.hot_skus.choose(&mut self.rng) {
            Some(sku) => sku.clone(),
            None => sqlx::query_scalar("SELECT sku FROM stock ORDER BY reserved DESC LIMIT 1")
                .fetch_optional(&mut conn)
                .await?
                .context("the stock table is empty: no row to hold")?,
        };
        let mut tx = conn.begin().await?;
        let locked: Option<String> = tokio::time::timeout(
            Duration::from_secs(10),
            sqlx::query_scalar("SELECT sku FROM stock WHERE sku = $1 FOR UPDATE")
                .bind(&sku)
                .fetch_optional(&mut *tx),
        )
        .await
        .with_context(|| format!("locking the stock row of {sku}: waited 10 s"))??;
        anyhow::ensure!(locked.is_some(), "no stock row for SKU {sku}");
        eprintln!(
            "jetsaga chaos: lock_holder: holding the stock row of {sku} for {:.1} s",
            hold.as_secs_f64()
        );
        tokio::time::sleep(hold).await;
        tx.rollback().await.context("releasing the held row")?;
        conn.close().await?;
        Ok((format!("stock row {sku}"), sku))
    }

    /// The DLQ stream refuses writes for the hold: its limit set to what it holds, discard new.
    /// A poison message published meanwhile needs its copy written there. The original
    /// configuration comes back after the hold, also if the run ends first ([`ChangedStream`]).
    async fn dlq_full(&mut self, hold: Duration) -> anyhow::Result<String> {
        let name = saga_kit::provision::DLQ_STREAM;
        let mut stream = self.js.get_stream(name).await?;
        let info = stream.info().await?.clone();
        let original = info.config.clone();
        let mut full = original.clone();
        full.discard = DiscardPolicy::New;
        // JetStream reads a limit of 0 as none: an empty stream is made full by one byte.
        if info.state.messages > 0 {
            full.max_messages = i64::try_from(info.state.messages)?;
        } else {
            full.max_bytes = 1;
        }
        let changed = ChangedStream::change(&self.js, &self.nats_url, original, full).await?;
        // The fault is real only if the stream now refuses what is published to it.
        let probe = self
            .js
            .publish("dlq.chaos-probe", "is the DLQ full?".into())
            .await?
            .await;
        anyhow::ensure!(
            probe.is_err(),
            "the DLQ stream still takes messages after its limits were lowered"
        );
        eprintln!(
            "jetsaga chaos: dlq_full: the DLQ stream refuses writes for {:.1} s",
            hold.as_secs_f64()
        );
        let subject = PaymentSucceeded::subject_of(uuid::Uuid::new_v4());
        self.poison(
            &subject,
            b"\x00poison while the DLQ is full{".to_vec(),
            HeaderMap::new(),
        )
        .await?;
        tokio::time::sleep(hold).await;
        changed.restore(&self.js).await?;
        let after = stream.info().await?.state.messages;
        if after < info.state.messages {
            self.findings.push(format!(
                "the DLQ stream held {} messages before it was full and {after} after",
                info.state.messages
            ));
        }
        Ok(format!("{name} ({} messages)", info.state.messages))
    }
}
