//! Undo guards for the faults that change state outliving the run's processes: a database that
//! refuses connections, the DLQ stream's limits. The fault is undone on the ordinary path; a guard
//! still armed when it is dropped (the run failed, or Ctrl-C dropped it mid-hold) undoes it then.
//!
//! Drop is synchronous and may run on a runtime thread, where `block_on` panics; so the undo runs
//! on a thread of its own with a runtime and a connection of its own (as the testkit drops its
//! databases), and the drop waits for it.

use anyhow::Context as _;
use async_nats::jetstream::stream;
use jetsaga_testkit::postgres;
use sqlx::{Connection as _, PgConnection, PgPool};
use std::future::Future;
use std::time::Duration;

/// How long an undo from a drop may take before it is given up (and said so on stderr).
const UNDO_TIMEOUT: Duration = Duration::from_secs(20);

/// A database refusing connections (`ALLOW_CONNECTIONS false`) until [`RefusingDatabase::allow`]
/// or the drop.
#[derive(Debug)]
pub struct RefusingDatabase {
    admin_url: String,
    database: String,
    armed: bool,
}

impl RefusingDatabase {
    /// Makes `database` refuse every new connection, superusers' too (only a template database
    /// takes connections regardless), and terminates the ones it has. Returns the guard and how
    /// many connections were terminated.
    pub async fn refuse(
        admin: &PgPool,
        admin_url: &str,
        database: &str,
    ) -> anyhow::Result<(RefusingDatabase, usize)> {
        // Armed before the change: a failure half-way is undone too.
        let guard = RefusingDatabase {
            admin_url: admin_url.to_owned(),
            database: database.to_owned(),
            armed: true,
        };
        let terminated =
            postgres::refuse_connections(&mut *admin.acquire().await?, database).await?;
        Ok((guard, terminated))
    }

    /// Lets the database take connections again.
    pub async fn allow(mut self, admin: &PgPool) -> anyhow::Result<()> {
        postgres::allow_connections(&mut *admin.acquire().await?, &self.database).await?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for RefusingDatabase {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (url, database) = (self.admin_url.clone(), self.database.clone());
        undo_on_own_thread(
            &format!("letting {database} take connections"),
            async move {
                let mut admin = PgConnection::connect(&url).await?;
                postgres::allow_connections(&mut admin, &database).await
            },
        );
    }
}

/// A stream whose configuration was changed, restored to `original` by
/// [`ChangedStream::restore`] or on drop.
#[derive(Debug)]
pub struct ChangedStream {
    nats_url: String,
    original: stream::Config,
    armed: bool,
}

impl ChangedStream {
    /// Changes the stream to `changed`; the guard restores `original`.
    pub async fn change(
        js: &async_nats::jetstream::Context,
        nats_url: &str,
        original: stream::Config,
        changed: stream::Config,
    ) -> anyhow::Result<ChangedStream> {
        let guard = ChangedStream {
            nats_url: nats_url.to_owned(),
            original,
            armed: true,
        };
        js.update_stream(changed)
            .await
            .with_context(|| format!("changing stream {}", guard.original.name))?;
        Ok(guard)
    }

    /// Puts the original configuration back.
    pub async fn restore(mut self, js: &async_nats::jetstream::Context) -> anyhow::Result<()> {
        js.update_stream(self.original.clone())
            .await
            .with_context(|| format!("restoring stream {}", self.original.name))?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for ChangedStream {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (url, original) = (self.nats_url.clone(), self.original.clone());
        undo_on_own_thread(&format!("restoring stream {}", original.name), async move {
            let client = saga_kit::provision::connect(&url, "jetsaga-chaos-undo").await?;
            async_nats::jetstream::new(client)
                .update_stream(original)
                .await?;
            Ok(())
        });
    }
}

/// Runs `undo` to its end on a new thread with its own runtime, and waits for it.
fn undo_on_own_thread<F>(what: &str, undo: F)
where
    F: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let what = what.to_owned();
    let thread = std::thread::Builder::new().name("chaos-undo".into()).spawn(
        move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                tokio::time::timeout(UNDO_TIMEOUT, undo)
                    .await
                    .context("timed out")?
            })
        },
    );
    let outcome = match thread {
        Ok(handle) => handle
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the undoing thread panicked"))),
        Err(e) => Err(anyhow::Error::new(e).context("spawning the undoing thread")),
    };
    match outcome {
        Ok(()) => eprintln!("jetsaga chaos: undone on the way out: {what}"),
        Err(e) => eprintln!("jetsaga chaos: could not undo ({what}): {e:#}"),
    }
}
