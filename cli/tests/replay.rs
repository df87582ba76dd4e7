//! `jetsaga replay` against the real system: a service whose database is put back from an older
//! backup catches up from the streams, and an empty database is rebuilt from them, with no double
//! effect and nothing lost.

mod common;

use anyhow::Context as _;
use common::Jetsaga;
use jetsaga_scenarios::checker::assert_invariants;
use jetsaga_scenarios::ledger::new_sku;
use jetsaga_scenarios::{Ledger, Svc, System, SystemOptions};
use sqlx::PgPool;
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(60);

/// Runs `jetsaga <args>` against the system and returns its exit code and stdout.
async fn jetsaga(sys: &System, args: &[&str]) -> anyhow::Result<(i32, String)> {
    let run = Jetsaga::new(sys)?.run(args).await?;
    Ok((run.code, run.stdout))
}

/// Runs a PostgreSQL client tool (pg_dump, pg_restore).
async fn pg(tool: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = tokio::process::Command::new(tool)
        .args(args)
        .output()
        .await
        .with_context(|| format!("running {tool} (PostgreSQL client tools)"))?;
    anyhow::ensure!(
        out.status.success(),
        "{tool} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// What the payment service holds: balances and the ledger, in a comparable form.
async fn payment_state(pool: &PgPool) -> anyhow::Result<(Vec<(String, i64)>, Vec<String>)> {
    let balances: Vec<(String, i64)> = sqlx::query_as(
        "SELECT customer_id::text, balance_cents FROM accounts ORDER BY customer_id",
    )
    .fetch_all(pool)
    .await?;
    let payments: Vec<String> = sqlx::query_scalar(
        "SELECT order_id::text || ' ' || payment_id::text || ' ' || amount_cents || ' ' || status
         FROM payments ORDER BY order_id",
    )
    .fetch_all(pool)
    .await?;
    Ok((balances, payments))
}

/// What the stock service holds: stock per SKU and the reservations.
async fn stock_state(pool: &PgPool) -> anyhow::Result<(Vec<(String, i64, i64)>, Vec<String>)> {
    let stock: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT sku, available, reserved FROM stock ORDER BY sku")
            .fetch_all(pool)
            .await?;
    let reservations: Vec<String> = sqlx::query_scalar(
        "SELECT order_id::text || ' ' || sku || ' ' || quantity || ' ' || status
         FROM reservations ORDER BY order_id, sku",
    )
    .fetch_all(pool)
    .await?;
    Ok((stock, reservations))
}

/// Some sagas of every outcome: confirmed with and without a voucher, payment failed, stock failed.
async fn some_sagas(
    sys: &System,
    ledger: &mut Ledger,
    rich: &str,
    poor: &str,
) -> anyhow::Result<()> {
    let api = &sys.api;
    let mug = new_sku("MUG");
    let rare = new_sku("RARE");
    ledger.sku(api, &mug, 1_000, 50).await?;
    ledger.sku(api, &rare, 700, 1).await?;
    let code = new_sku("TENOFF");
    ledger.voucher(api, &code, rich, 300, None).await?;
    ledger.order(api, rich, &[(&mug, 2)], None).await?;
    ledger.order(api, rich, &[(&mug, 1)], Some(&code)).await?;
    ledger.order(api, poor, &[(&mug, 5)], None).await?;
    ledger.order(api, rich, &[(&rare, 2)], None).await?;
    ledger
        .order(api, rich, &[(&rare, 1), (&mug, 1)], None)
        .await?;
    Ok(())
}

#[tokio::test]
async fn payment_database_restored_from_a_backup_catches_up_by_replay_with_no_double_charge(
) -> anyhow::Result<()> {
    // Given a system that has run sagas of every outcome
    let mut sys = System::start(SystemOptions::default()).await?;
    let mut ledger = Ledger::default();
    let rich = ledger.customer(&sys.api, 50_000).await?;
    let poor = ledger.customer(&sys.api, 100).await?;
    some_sagas(&sys, &mut ledger, &rich, &poor).await?;
    assert_invariants(&sys.api, &ledger, SETTLE).await?;

    // When the payment database is backed up, as a nightly backup would be, once its consumers
    // have written where they stand
    let pool = sys.db(Svc::Payment).await?;
    wait_for_floors(&pool, 2).await?;
    pool.close().await;
    let dir = tempdir()?;
    let backup = dir.join("payment.dump");
    let payment_url = sys.database_url(Svc::Payment)?;
    let since = time::OffsetDateTime::now_utc() - time::Duration::seconds(5);
    pg("pg_dump", &["-Fc", "-f", path(&backup)?, &payment_url]).await?;

    // and the run goes on: a credit the poor customer needs, and more sagas of every outcome
    ledger.credit(&sys.api, &poor, 20_000).await?;
    some_sagas(&sys, &mut ledger, &rich, &poor).await?;
    assert_invariants(&sys.api, &ledger, SETTLE).await?;
    let pool = sys.db(Svc::Payment).await?;
    let before = payment_state(&pool).await?;
    pool.close().await;

    // and then the database is lost and put back from the backup
    sys.kill(Svc::Payment)?;
    pg(
        "pg_restore",
        &[
            "--clean",
            "--if-exists",
            "--no-owner",
            "-d",
            &payment_url,
            path(&backup)?,
        ],
    )
    .await?;
    let pool = sys.db(Svc::Payment).await?;
    assert_ne!(payment_state(&pool).await?, before, "the backup is older");

    // Then a replay, told nothing about when the backup was made, starts where the restored
    // database says it is safe and brings back everything that happened after it
    let rfc = since.format(&time::format_description::well_known::Rfc3339)?;
    let (code, out) = jetsaga(&sys, &["--json", "replay", "--service", "payment"]).await?;
    assert_eq!(code, 0, "replay failed");
    let summary: serde_json::Value = serde_json::from_str(&out)?;
    let restored: u64 = summary["sources"]
        .as_array()
        .context("sources")?
        .iter()
        .map(|s| s["restored"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        restored, 1,
        "the credit after the backup is restored from the own stream"
    );
    assert_eq!(
        payment_state(&pool).await?,
        before,
        "the same balances and ledger as before the loss"
    );

    // and once the service runs again, nothing is charged twice and every invariant holds
    sys.restart(Svc::Payment).await?;
    assert_invariants(&sys.api, &ledger, SETTLE).await?;
    assert_eq!(payment_state(&pool).await?, before);

    // and a second replay changes nothing
    let (code, out) = jetsaga(
        &sys,
        &["--json", "replay", "--service", "payment", "--since", &rfc],
    )
    .await?;
    assert_eq!(code, 0);
    let again: serde_json::Value = serde_json::from_str(&out)?;
    let applied: u64 = again["sources"]
        .as_array()
        .context("sources")?
        .iter()
        .map(|s| {
            s["applied"].as_u64().unwrap_or(0)
                + s["restored"].as_u64().unwrap_or(0)
                + s["recorded"].as_u64().unwrap_or(0)
        })
        .sum();
    assert_eq!(applied, 0, "everything is already applied");
    assert_eq!(payment_state(&pool).await?, before);

    // and the payment service rebuilt from the streams alone is exactly the live one
    let (code, out) = jetsaga(&sys, &["replay", "--service", "payment", "--verify"]).await?;
    assert_eq!(code, 0, "verify found differences:\n{out}");
    assert!(out.contains("0 differences"), "{out}");

    // and a balance changed by hand is found, with its row
    sqlx::query(
        "UPDATE accounts SET balance_cents = balance_cents + 1 WHERE customer_id = $1::uuid",
    )
    .bind(&poor)
    .execute(&pool)
    .await?;
    let (code, out) = jetsaga(&sys, &["replay", "--service", "payment", "--verify"]).await?;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("1 difference(s)"), "{out}");
    let row = out
        .lines()
        .find(|l| l.starts_with("accounts") && l.contains(&poor))
        .with_context(|| format!("no row for {poor}:\n{out}"))?;
    assert!(row.contains("differs"), "{row}");
    let scratch: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_verify\\_%'")
            .fetch_one(&pool)
            .await?;
    assert_eq!(scratch, 0, "the scratch databases were dropped");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// Waits until the runner has written the ack floor of `consumers` consumers into `pool`, with
/// every message it was given settled.
async fn wait_for_floors(pool: &PgPool, consumers: i64) -> anyhow::Result<()> {
    let started = time::OffsetDateTime::now_utc();
    jetsaga_testkit::wait_until("the consumers' ack floors", SETTLE, || async {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM kit_consumer_floor WHERE recorded_at > $1")
                .bind(started + time::Duration::seconds(1))
                .fetch_one(pool)
                .await
                .unwrap_or(0);
        n >= consumers
    })
    .await
}

#[tokio::test]
async fn empty_stock_database_is_rebuilt_from_the_streams_alone() -> anyhow::Result<()> {
    let mut sys = System::start(SystemOptions::default()).await?;
    let mut ledger = Ledger::default();
    let rich = ledger.customer(&sys.api, 50_000).await?;
    let poor = ledger.customer(&sys.api, 100).await?;
    some_sagas(&sys, &mut ledger, &rich, &poor).await?;
    assert_invariants(&sys.api, &ledger, SETTLE).await?;
    let pool = sys.db(Svc::Stock).await?;
    let before = stock_state(&pool).await?;

    // The stock database is lost entirely
    sys.kill(Svc::Stock)?;
    sqlx::query("DROP SCHEMA public CASCADE")
        .execute(&pool)
        .await?;
    sqlx::query("CREATE SCHEMA public").execute(&pool).await?;
    pool.close().await;

    // A replay from scratch rebuilds it from its own stream and its inputs
    let (code, _) = jetsaga(&sys, &["replay", "--service", "stock", "--from-scratch"]).await?;
    assert_eq!(code, 0, "replay failed");
    let pool = sys.db(Svc::Stock).await?;
    assert_eq!(stock_state(&pool).await?, before);
    let backlog: i64 =
        sqlx::query_scalar("SELECT count(*) FROM kit_outbox WHERE published_at IS NULL")
            .fetch_one(&pool)
            .await?;
    assert_eq!(
        backlog, 0,
        "events already in the stream are not published again"
    );

    // and the rebuilt service carries on with every invariant intact
    sys.restart(Svc::Stock).await?;
    let mug = new_sku("MUG");
    ledger.sku(&sys.api, &mug, 500, 3).await?;
    ledger.order(&sys.api, &rich, &[(&mug, 2)], None).await?;
    assert_invariants(&sys.api, &ledger, SETTLE).await?;

    // and a from-scratch replay refuses a database that is not empty
    let (code, _) = jetsaga(&sys, &["replay", "--service", "stock", "--from-scratch"]).await?;
    assert_eq!(code, 2);
    Ok(())
}

fn tempdir() -> anyhow::Result<std::path::PathBuf> {
    let dir =
        std::env::temp_dir().join(format!("jetsaga-replay-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn path(p: &std::path::Path) -> anyhow::Result<&str> {
    p.to_str().context("temp path is not UTF-8")
}
