//! Instances that start together migrate their database in turn, against a real PostgreSQL,
//! through pools whose connections wait at most half a second for a lock, as a service's do.

use jetsaga_testkit::{wait_until, TestDb};
use saga_kit::migrate::migrate;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

/// The kit's migrations and one that takes 1.5 s and alters the inbox.
static SLOW: sqlx::migrate::Migrator = sqlx::migrate!("tests/slow_migrations");

const SLOW_VERSION: i64 = 20270101000000;

/// A pool like a service's: every connection waits at most 500 ms for a lock.
async fn service_pool(db: &TestDb) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(&db.url())?.options([("lock_timeout", "500ms")]);
    Ok(PgPoolOptions::new()
        .max_connections(3)
        .connect_with(options)
        .await?)
}

async fn applied(db: &TestDb) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE version = $1 AND success")
            .bind(SLOW_VERSION)
            .fetch_one(db.pool())
            .await?,
    )
}

/// Two instances of a service start at once on a new release with a slow migration. The one
/// that waits for the other's migrations must not give up after its lock timeout (it did, and
/// exited at start with "canceling statement due to lock timeout").
#[tokio::test]
async fn instances_starting_together_wait_for_each_others_migrations() -> anyhow::Result<()> {
    let db = TestDb::create("kitmigr").await?;
    let (one, two) = (service_pool(&db).await?, service_pool(&db).await?);
    let (first, second) = tokio::join!(migrate(&one, Some(&SLOW)), migrate(&two, Some(&SLOW)));
    first?;
    second?;
    assert_eq!(applied(&db).await?, 1, "the slow migration ran once");
    Ok(())
}

/// A migration whose `ALTER TABLE` finds the table held by another session (an old instance's
/// transaction, an operator's `psql`) gives up on its lock timeout, is rolled back and is tried
/// again, and goes through once the table is free.
#[tokio::test]
async fn a_migration_that_finds_its_table_held_is_tried_again_once_it_is_free() -> anyhow::Result<()>
{
    let db = TestDb::create("kitmigr").await?;
    migrate(db.pool(), None).await?;
    let mut holder = db.pool().begin().await?;
    sqlx::query("LOCK TABLE kit_inbox IN ACCESS SHARE MODE")
        .execute(&mut *holder)
        .await?;
    let pool = service_pool(&db).await?;
    let migrating = tokio::spawn(async move { migrate(&pool, Some(&SLOW)).await });

    let waiting = || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_locks \
             WHERE relation = 'kit_inbox'::regclass AND NOT granted)",
        )
        .fetch_one(db.pool())
        .await
        .unwrap_or(false)
    };
    wait_until(
        "the migration waits for the inbox",
        Duration::from_secs(30),
        waiting,
    )
    .await?;
    wait_until(
        "the migration gives up its wait on its lock timeout",
        Duration::from_secs(30),
        || async { !waiting().await },
    )
    .await?;
    assert_eq!(
        applied(&db).await?,
        0,
        "nothing is applied while the inbox is held"
    );
    holder.commit().await?;

    migrating.await??;
    assert_eq!(
        applied(&db).await?,
        1,
        "the migration went through once the inbox was free"
    );
    Ok(())
}
