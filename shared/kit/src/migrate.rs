//! The kit's tables, migrated together with a service's own.
//!
//! Instances of a service that start together (a scale-out, a rolling deploy, a test with two
//! instances) take turns. Each first takes [`MIGRATION_LOCK`] with no lock timeout, so it waits
//! for as long as the instance migrating takes: the service's connections carry a short
//! `lock_timeout`, and with it the second instance's wait for sqlx's own migration lock failed
//! after half a second and the instance exited at start. The statements of a migration keep that
//! timeout, so an `ALTER TABLE` never queues every query on its table behind a long transaction
//! for long; one that times out (or deadlocks) is rolled back and tried again for
//! [`RETRY_CONTENTION_FOR`].

use crate::handler::is_contention;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{Connection as _, PgConnection, PgPool};
use std::borrow::Cow;
use std::time::Duration;

/// The kit's migrations (outbox, inbox, dead letters, barrier), from `migrations/kit`.
pub static KIT_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/kit");

/// The advisory lock instances take around their migrations, in the database migrated.
pub const MIGRATION_LOCK: i64 = 0x6a65_7473_6d69_6772; // "jetsmigr"

/// How long a migration whose statements lose to other sessions' locks is tried again.
pub const RETRY_CONTENTION_FOR: Duration = Duration::from_secs(120);

/// The pause between two tries.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Runs the kit's migrations and then the service's, as one ordered list in one history table.
/// Kit versions are dated 2026-01-01; a service's must be later.
pub async fn migrate(pool: &PgPool, service: Option<&Migrator>) -> Result<(), MigrateError> {
    let mut all: Vec<_> = KIT_MIGRATIONS.iter().cloned().collect();
    if let Some(service) = service {
        all.extend(service.iter().cloned());
    }
    all.sort_by_key(|m| m.version);
    let migrator = Migrator {
        migrations: Cow::Owned(all),
        ..Migrator::DEFAULT
    };
    // Since the first try that lost to a lock: the wait for another instance's turn is not counted.
    let mut contended_since = None;
    loop {
        // Its own connection, closed afterwards: the locks are the session's, and a failed run
        // leaves sqlx's held, so the connection must never go back to the pool.
        let mut conn = pool.acquire().await?.detach();
        let run = async {
            wait_for_turn(&mut conn).await?;
            migrator.run_direct(&mut conn).await
        }
        .await;
        let _ = conn.close().await;
        match run {
            Err(e)
                if contended(&e)
                    && contended_since
                        .get_or_insert_with(tokio::time::Instant::now)
                        .elapsed()
                        < RETRY_CONTENTION_FOR =>
            {
                tracing::warn!(
                    error = %e,
                    "a migration waited too long for another session's lock; it was rolled back and is tried again"
                );
                tokio::time::sleep(RETRY_AFTER).await;
            }
            done => return done,
        }
    }
}

/// Takes [`MIGRATION_LOCK`] for the session, waiting as long as another instance migrates, and
/// puts the session's `lock_timeout` back for the migrations themselves.
async fn wait_for_turn(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .fetch_one(&mut *conn)
        .await?;
    if free {
        return Ok(());
    }
    tracing::info!("another instance is migrating this database; waiting for it to finish");
    let timeout: String = sqlx::query_scalar("SELECT current_setting('lock_timeout')")
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query("SELECT set_config('lock_timeout', '0', false)")
        .execute(&mut *conn)
        .await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    sqlx::query("SELECT set_config('lock_timeout', $1, false)")
        .bind(timeout)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Whether a run failed because its statements lost to other sessions' locks.
fn contended(e: &MigrateError) -> bool {
    match e {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => is_contention(e),
        _ => false,
    }
}
