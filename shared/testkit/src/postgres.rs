//! A fresh PostgreSQL database per test, dropped when the test is done.
//!
//! Each [`TestDb`] is its own database on the server named by `JETSAGA_TEST_PG_URL`, so tests
//! can run in parallel (threads or processes) without seeing each other's rows.

use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection as _, Executor as _};

/// Environment variable with the admin URL of the PostgreSQL server tests create databases on.
pub const TEST_PG_URL_ENV: &str = "JETSAGA_TEST_PG_URL";

/// The admin URL used when `JETSAGA_TEST_PG_URL` is not set.
pub const DEFAULT_TEST_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Every test database name starts with this, so leftovers are easy to find and drop.
pub const TEST_DB_PREFIX: &str = "jetsaga_test_";

/// Connections per pool; enough for a service under test plus the test's own queries.
const POOL_SIZE: u32 = 10;
/// Upper bound for dropping the database in `Drop`, so a hung server cannot hang a test.
const DROP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often `CREATE DATABASE` is retried while template1 is busy.
const CREATE_ATTEMPTS: u32 = 20;

/// A fresh PostgreSQL database for one test, dropped (`WITH (FORCE)`) on drop.
#[derive(Debug)]
pub struct TestDb {
    name: String,
    admin_url: String,
    url: String,
    pool: PgPool,
}

impl TestDb {
    /// Creates the database `jetsaga_test_<prefix>_<12 random hex digits>` and a pool on it.
    ///
    /// The admin URL comes from the environment variable `JETSAGA_TEST_PG_URL`, by default
    /// `postgres://postgres@127.0.0.1:5432/postgres`. `prefix` is lowercased, characters other
    /// than `[a-z0-9_]` become `_`, and it is cut to 30 characters (names have at most 63).
    pub async fn create(prefix: &str) -> anyhow::Result<Self> {
        let admin_url =
            std::env::var(TEST_PG_URL_ENV).unwrap_or_else(|_| DEFAULT_TEST_PG_URL.to_owned());
        let name = database_name(prefix);
        let mut admin = PgConnection::connect(&admin_url).await.with_context(|| {
            format!(
                "connecting to PostgreSQL at {} (set {TEST_PG_URL_ENV}, or run scripts/ensure-postgres)",
                redact(&admin_url)
            )
        })?;
        create_database(&mut admin, &name).await?;
        let _ = admin.close().await;

        let url = database_url(&admin_url, &name);
        // Built before the pool, so a failing pool still drops the database.
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect_lazy(&url)
            .context("building the test database pool")?;
        let db = TestDb {
            name,
            admin_url,
            url,
            pool,
        };
        db.pool
            .acquire()
            .await
            .with_context(|| format!("connecting to the test database {}", db.name))?;
        Ok(db)
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of this database (the admin URL with the database name swapped in).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// A pool of up to 10 connections on this database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Another pool on this database, independent of [`pool`](Self::pool), e.g. for a second
    /// instance of a service.
    /// A real outage of this database ([`refuse_connections`]), until
    /// [`TestDb::allow_connections`].
    pub async fn refuse_connections(&self) -> anyhow::Result<()> {
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        refuse_connections(&mut admin, &self.name).await?;
        let _ = admin.close().await;
        Ok(())
    }

    /// Ends the outage of [`TestDb::refuse_connections`].
    pub async fn allow_connections(&self) -> anyhow::Result<()> {
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        allow_connections(&mut admin, &self.name).await?;
        let _ = admin.close().await;
        Ok(())
    }

    pub async fn connect(&self) -> anyhow::Result<PgPool> {
        PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect(&self.url)
            .await
            .with_context(|| format!("connecting to the test database {}", self.name))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // `close()` marks the pool closed at once; its future would only wait for connections
        // to be returned, which `WITH (FORCE)` makes moot.
        let closing = self.pool.close();
        drop(closing);

        // Drop is sync and may run on a runtime thread, where `block_on` panics. So the drop
        // runs on a thread of its own with a runtime of its own.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let dropper = std::thread::Builder::new()
            .name(format!("drop-{name}"))
            .spawn(move || drop_database(&admin_url, &name));
        let outcome = match dropper {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the dropping thread panicked"))),
            Err(e) => Err(anyhow::Error::new(e).context("spawning the dropping thread")),
        };
        if let Err(e) = outcome {
            eprintln!(
                "jetsaga-testkit: could not drop test database {}: {e:#}",
                self.name
            );
        }
    }
}

async fn create_database(admin: &mut PgConnection, name: &str) -> anyhow::Result<()> {
    let sql = format!("CREATE DATABASE {}", quote_ident(name));
    let mut attempt = 1;
    loop {
        match admin.execute(sql.as_str()).await {
            Ok(_) => return Ok(()),
            // 55006 object_in_use: "source database "template1" is being accessed by other
            // users", when another session happens to be connected to template1.
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("55006") && attempt < CREATE_ATTEMPTS =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("creating database {name}")))
            }
        }
    }
}

fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building a runtime to drop the test database")?;
    runtime.block_on(async {
        let work = async {
            let mut admin = PgConnection::connect(admin_url)
                .await
                .context("connecting to the admin database")?;
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name));
            admin.execute(sql.as_str()).await.context("DROP DATABASE")?;
            let _ = admin.close().await;
            anyhow::Ok(())
        };
        tokio::time::timeout(DROP_TIMEOUT, work)
            .await
            .with_context(|| format!("timed out after {DROP_TIMEOUT:?}"))?
    })
}

/// `jetsaga_test_<sanitized prefix>_<12 random hex digits>`, at most 63 bytes.
fn database_name(prefix: &str) -> String {
    let prefix: String = prefix
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(30)
        .collect();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{TEST_DB_PREFIX}{prefix}_{}", &random[..12])
}

/// The admin URL with its database (the path) replaced by `name`; the query string is kept.
fn database_url(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut url = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// A real outage of `database`, made through the superuser connection `admin`: it refuses every
/// new connection, superusers' too (superusers ignore connection limits, not this), and its open
/// sessions are ended. Returns how many sessions were ended.
pub async fn refuse_connections(admin: &mut PgConnection, database: &str) -> anyhow::Result<usize> {
    admin
        .execute(allow_connections_sql(database, false).as_str())
        .await
        .with_context(|| format!("making database {database} refuse connections"))?;
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(database)
    .fetch_all(&mut *admin)
    .await
    .with_context(|| format!("ending the sessions of database {database}"))?;
    Ok(ended.len())
}

/// Ends the outage of [`refuse_connections`].
pub async fn allow_connections(admin: &mut PgConnection, database: &str) -> anyhow::Result<()> {
    admin
        .execute(allow_connections_sql(database, true).as_str())
        .await
        .with_context(|| format!("letting database {database} take connections"))?;
    Ok(())
}

/// `ALTER DATABASE "<name>" ALLOW_CONNECTIONS <allow>`.
fn allow_connections_sql(database: &str, allow: bool) -> String {
    format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS {allow}",
        quote_ident(database)
    )
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_start..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!(
                "{}{}:***{}",
                &url[..authority_start],
                &rest[..colon],
                &rest[at..]
            ),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_name_is_quoted_as_an_identifier() {
        assert_eq!(
            allow_connections_sql("jetsaga_x", false),
            "ALTER DATABASE \"jetsaga_x\" ALLOW_CONNECTIONS false"
        );
        assert_eq!(
            allow_connections_sql("a\"b", true),
            "ALTER DATABASE \"a\"\"b\" ALLOW_CONNECTIONS true"
        );
    }

    #[test]
    fn database_url_swaps_the_database_and_keeps_the_query() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            database_url("postgres://u:p@db:5432/postgres?sslmode=disable", "t1"),
            "postgres://u:p@db:5432/t1?sslmode=disable"
        );
        assert_eq!(database_url("postgres://u@db", "t1"), "postgres://u@db/t1");
    }

    #[test]
    fn database_names_are_sanitized_short_and_unique() {
        let a = database_name("Kit/Outbox-Relay");
        let b = database_name("Kit/Outbox-Relay");
        assert!(a.starts_with("jetsaga_test_kit_outbox_relay_"), "{a}");
        assert_ne!(a, b);
        assert!(database_name(&"x".repeat(200)).len() <= 63);
    }

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://u:secret@db:5432/postgres"),
            "postgres://u:***@db:5432/postgres"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
    }
}
