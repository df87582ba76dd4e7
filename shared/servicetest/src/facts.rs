//! A service's state rebuilt from its own events applied as recorded facts, the way `jetsaga
//! replay` rebuilds it from the service's stream, and the business state of two databases side by
//! side: for the five services' restore tests.
//!
//! A test drives the real service on one database (its outbox then holds what it said), reads
//! those events back as facts with [`recorded`] (or builds them with [`Fact::root`] and
//! [`Fact::answer`]), applies them to a fresh database with [`restore_all`], and compares the two
//! with [`state`] over the service's `state::TABLES`; [`handle`] then runs the service's handler
//! on an input that comes later, to show what the restored barrier makes of it.

use anyhow::Context as _;
use jetsaga_contracts::{EventId, EventSet};
use jetsaga_testkit::TestDb;
use saga_kit::envelope::{derived_event_id, header_map};
use saga_kit::facts::{FactContext, Restore, StateTable};
use saga_kit::{Envelope, EventContext, Handler};
use serde_json::Value;
use sqlx::migrate::Migrator;
use sqlx::PgPool;
use std::collections::BTreeMap;

/// One of a service's own events, and where it came from.
#[derive(Debug, Clone)]
pub struct Fact<E> {
    pub event: E,
    pub ctx: FactContext,
}

impl<E: EventSet> Fact<E> {
    /// A root event (an API call, an admin change, a timer, a repair) under a fresh id.
    pub fn root(event: E) -> Self {
        let id = EventId::new_random();
        Fact {
            event,
            ctx: context(id, id),
        }
    }

    /// A handler's answer to the input `cause`, under the kind of id the runner gives it.
    pub fn answer(event: E, cause: EventId) -> Self {
        Fact {
            event,
            ctx: context(derived_event_id(cause, "test-handler", 0), cause),
        }
    }
}

fn context(event_id: EventId, causation_id: EventId) -> FactContext {
    FactContext {
        event_id,
        causation_id,
        consumer: None,
        event_time: time::OffsetDateTime::now_utc(),
        stream_seq: 0,
    }
}

/// A fresh database with the kit's tables and `migrations`: an empty service database to rebuild
/// into.
pub async fn fresh_db(prefix: &str, migrations: &Migrator) -> anyhow::Result<TestDb> {
    let db = TestDb::create(prefix).await?;
    saga_kit::migrate::migrate(db.pool(), Some(migrations))
        .await
        .context("migrating the rebuilt database")?;
    Ok(db)
}

/// Every event in the outbox of `pool`, decoded, in the order the replay applies them: by
/// `ce-time`, the outbox's order breaking ties.
pub async fn recorded<E: EventSet>(pool: &PgPool) -> anyhow::Result<Vec<Fact<E>>> {
    let rows: Vec<(i64, String, Value, Vec<u8>)> =
        sqlx::query_as("SELECT id, subject, headers, payload FROM kit_outbox ORDER BY id")
            .fetch_all(pool)
            .await?;
    let mut facts = Vec::with_capacity(rows.len());
    for (id, subject, headers, payload) in rows {
        let envelope =
            Envelope::from_message(&subject, Some(&header_map(&headers)), payload.into())
                .with_context(|| format!("outbox row {id}"))?;
        let event = E::from_payload(&envelope.ce_type, &envelope.payload)
            .with_context(|| format!("outbox row {id}"))?;
        let ctx = FactContext {
            event_id: envelope.id,
            causation_id: envelope.causation_id,
            consumer: None,
            event_time: envelope.time,
            stream_seq: u64::try_from(id)?,
        };
        facts.push(Fact { event, ctx });
    }
    facts.sort_by_key(|f| (f.ctx.event_time, f.ctx.stream_seq));
    Ok(facts)
}

/// Applies each fact with `restorer`, each in a transaction of its own, as the replay does.
pub async fn restore_all<R: Restore>(
    restorer: &R,
    pool: &PgPool,
    facts: &[Fact<R::Event>],
) -> anyhow::Result<()> {
    for fact in facts {
        let mut tx = pool.begin().await?;
        restorer
            .restore(&mut tx, fact.event.clone(), &fact.ctx)
            .await
            .with_context(|| format!("restoring {:?}", fact.event))?;
        tx.commit().await?;
    }
    Ok(())
}

/// Rebuilds `rebuilt` (empty, migrated) from the facts `live` recorded, after checking that there
/// are `count` of them (`what` says which), and asserts that the rebuilt state and barrier are the
/// live ones.
pub async fn assert_rebuilt_from_facts<R: Restore>(
    restorer: &R,
    live: &PgPool,
    rebuilt: &PgPool,
    tables: &[StateTable],
    count: usize,
    what: &str,
) -> anyhow::Result<()> {
    let recorded = recorded::<R::Event>(live).await?;
    assert_eq!(recorded.len(), count, "{what}");
    restore_all(restorer, rebuilt, &recorded).await?;
    assert_eq!(state(rebuilt, tables).await?, state(live, tables).await?);
    assert_eq!(barrier(rebuilt).await?, barrier(live).await?);
    Ok(())
}

/// Restores `recorded` into `pool` once, then each fact again right after itself, then all of
/// them again, and asserts that the repeats changed neither the state nor the barrier.
pub async fn assert_restoring_twice_changes_nothing<R: Restore>(
    restorer: &R,
    pool: &PgPool,
    tables: &[StateTable],
    recorded: &[Fact<R::Event>],
) -> anyhow::Result<()> {
    restore_all(restorer, pool, recorded).await?;
    let once = (state(pool, tables).await?, barrier(pool).await?);
    let doubled: Vec<_> = recorded
        .iter()
        .flat_map(|f| [f.clone(), f.clone()])
        .collect();
    restore_all(restorer, pool, &doubled).await?;
    assert_eq!((state(pool, tables).await?, barrier(pool).await?), once);
    Ok(())
}

/// The business state of `pool`: per table, its `(key, state)` rows in order.
pub async fn state(
    pool: &PgPool,
    tables: &[StateTable],
) -> anyhow::Result<BTreeMap<&'static str, Vec<(String, Value)>>> {
    let mut all = BTreeMap::new();
    for table in tables {
        let rows: Vec<(String, Value)> = sqlx::query_as(table.query)
            .fetch_all(pool)
            .await
            .with_context(|| format!("the state query of {}", table.name))?;
        all.insert(table.name, rows);
    }
    Ok(all)
}

/// Runs the service's `handler` on `event` in a transaction of its own under a fresh event id,
/// as its consumer `consumer` would (without the inbox), and returns what it says: for an input
/// that comes after the restored facts.
pub async fn handle<H: Handler>(
    pool: &PgPool,
    handler: &H,
    consumer: &'static str,
    event: H::Input,
) -> anyhow::Result<Vec<H::Output>> {
    let ctx = EventContext {
        event_id: EventId::new_random(),
        event_time: time::OffsetDateTime::now_utc(),
        consumer,
        stream_seq: None,
        delivered: 1,
    };
    let mut tx = pool.begin().await?;
    let emitted = handler
        .handle(&mut tx, event, &ctx)
        .await
        .with_context(|| format!("{consumer} handling an event"))?;
    tx.commit().await?;
    Ok(emitted)
}

/// The saga barrier's records of `pool`, `(saga, branch, op)`, sorted.
pub async fn barrier(pool: &PgPool) -> anyhow::Result<Vec<(String, String, String)>> {
    Ok(
        sqlx::query_as("SELECT saga_id, branch, op FROM kit_barrier ORDER BY saga_id, branch, op")
            .fetch_all(pool)
            .await?,
    )
}
