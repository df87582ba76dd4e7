//! The kit's tables, migrated together with a service's own.

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::PgPool;
use std::borrow::Cow;

/// The kit's migrations (outbox, inbox, dead letters, barrier), from `migrations/kit`.
pub static KIT_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/kit");

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
    migrator.run(pool).await
}
