//! The testkit's PostgreSQL database per test.

use std::time::Duration;

use jetsaga_testkit::TestDb;
use sqlx::postgres::PgPool;

async fn database_exists(admin: &PgPool, name: &str) -> anyhow::Result<bool> {
    Ok(sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
    )
    .bind(name)
    .fetch_one(admin)
    .await?)
}

async fn admin_pool() -> anyhow::Result<PgPool> {
    let url = std::env::var(jetsaga_testkit::postgres::TEST_PG_URL_ENV)
        .unwrap_or_else(|_| jetsaga_testkit::postgres::DEFAULT_TEST_PG_URL.to_owned());
    Ok(PgPool::connect(&url).await?)
}

#[tokio::test]
async fn test_database_is_dropped_on_drop() -> anyhow::Result<()> {
    let admin = admin_pool().await?;
    let db = TestDb::create("testkit").await?;
    let name = db.name().to_owned();
    assert!(name.starts_with("jetsaga_test_testkit_"), "{name}");
    // A connection held open by another pool must not keep the database alive.
    let other = db.connect().await?;
    sqlx::query("CREATE TABLE t (id int)")
        .execute(db.pool())
        .await?;
    sqlx::query("SELECT 1").execute(&other).await?;
    assert!(database_exists(&admin, &name).await?);

    drop(db);

    assert!(
        !database_exists(&admin, &name).await?,
        "{name} still exists"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_database_is_dropped_on_drop_inside_a_multi_thread_runtime() -> anyhow::Result<()> {
    let admin = admin_pool().await?;
    let db = TestDb::create("testkit_mt").await?;
    let name = db.name().to_owned();

    drop(db);

    assert!(
        !database_exists(&admin, &name).await?,
        "{name} still exists"
    );
    Ok(())
}

#[tokio::test]
async fn each_test_database_is_private_and_reachable_by_url() -> anyhow::Result<()> {
    let (a, b) = tokio::try_join!(TestDb::create("iso"), TestDb::create("iso"))?;
    assert_ne!(a.name(), b.name());
    assert!(a.url().ends_with(a.name()), "{}", a.url());

    sqlx::query("CREATE TABLE only_in_a (id int)")
        .execute(a.pool())
        .await?;
    let in_b: Option<String> = sqlx::query_scalar("SELECT to_regclass('only_in_a')::text")
        .fetch_one(b.pool())
        .await?;
    assert_eq!(in_b, None);

    let by_url = tokio::time::timeout(Duration::from_secs(10), PgPool::connect(&a.url())).await??;
    let current: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&by_url)
        .await?;
    assert_eq!(current, a.name());
    Ok(())
}
