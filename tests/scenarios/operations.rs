//! Ordinary operations on the whole system: a participant's database refuses every connection for
//! twenty seconds under load, a hot SKU's row is held by someone else's transaction, a consumer's
//! durable is deleted. None of them may lose, dead-letter or cancel a saga.

use jetsaga_scenarios::checker::assert_invariants;
use jetsaga_scenarios::ledger::new_sku;
use jetsaga_scenarios::{Ledger, Svc, System, SystemOptions};
use jetsaga_testkit::{postgres, wait_until};
use sqlx::Connection as _;
use sqlx::Executor as _;
use std::time::{Duration, Instant};

const SETTLE: Duration = Duration::from_secs(120);

/// A connection to PostgreSQL as its superuser, as the tests' own databases are made.
async fn admin() -> anyhow::Result<sqlx::PgConnection> {
    let url = std::env::var(postgres::TEST_PG_URL_ENV)
        .unwrap_or_else(|_| postgres::DEFAULT_TEST_PG_URL.to_owned());
    Ok(sqlx::PgConnection::connect(&url).await?)
}

fn database_name(sys: &System, svc: Svc) -> anyhow::Result<String> {
    let url = sys.database_url(svc)?;
    Ok(url.rsplit('/').next().unwrap_or_default().to_owned())
}

/// Dead letters across the five services.
async fn dead_letters(sys: &System) -> anyhow::Result<i64> {
    let mut n = 0;
    for svc in Svc::ALL {
        n += sqlx::query_scalar::<_, i64>("SELECT count(*) FROM kit_dead_letters")
            .fetch_one(&sys.db(svc).await?)
            .await?;
    }
    Ok(n)
}

#[tokio::test]
async fn payment_database_outage_of_twenty_seconds_under_load_dead_letters_and_cancels_nothing(
) -> anyhow::Result<()> {
    // Given a system whose orders have a minute to finish
    let sys = System::start(SystemOptions {
        order_deadline: Duration::from_secs(60),
        ..SystemOptions::default()
    })
    .await?;
    if sys.is_external() {
        println!("not run against an external deployment: it stops a database");
        return Ok(());
    }
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let sku = new_sku("OUTAGE");
    ledger.sku(api, &sku, 300, 10_000).await?;
    let customer = ledger.customer(api, 10_000_000).await?;
    let mut admin = admin().await?;
    let payment_db = database_name(&sys, Svc::Payment)?;
    // When orders arrive at about ten a second for thirty seconds, and payment's database refuses
    // every connection from the fifth second to the twenty-fifth
    let start = Instant::now();
    let mut down = false;
    let mut up_again = false;
    while start.elapsed() < Duration::from_secs(30) {
        let t = start.elapsed();
        if !down && t >= Duration::from_secs(5) {
            postgres::refuse_connections(&mut admin, &payment_db).await?;
            down = true;
        }
        if down && !up_again && t >= Duration::from_secs(25) {
            postgres::allow_connections(&mut admin, &payment_db).await?;
            up_again = true;
        }
        ledger.order(api, &customer, &[(&sku, 1)], None).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !up_again {
        postgres::allow_connections(&mut admin, &payment_db).await?;
    }
    // Then every order is confirmed, nothing is dead-lettered, and every invariant holds
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(
        outcome.cancelled_total(),
        0,
        "orders cancelled by the outage: {:?}",
        outcome.cancelled
    );
    assert_eq!(outcome.confirmed, ledger.orders.len());
    assert_eq!(dead_letters(&sys).await?, 0, "the outage was dead-lettered");
    Ok(())
}

#[tokio::test]
async fn a_hot_skus_row_held_by_someone_else_does_not_stall_orders_for_other_skus(
) -> anyhow::Result<()> {
    // Orders have two minutes: the test is about stalling, not speed, and CI runs it beside others.
    let sys = System::start(SystemOptions {
        order_deadline: Duration::from_secs(120),
        ..SystemOptions::default()
    })
    .await?;
    if sys.is_external() {
        println!("not run against an external deployment: it holds a row lock");
        return Ok(());
    }
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let hot = new_sku("HOT");
    let cold = new_sku("COLD");
    ledger.sku(api, &hot, 100, 1_000).await?;
    ledger.sku(api, &cold, 100, 1_000).await?;
    let customer = ledger.customer(api, 1_000_000).await?;
    // Given someone holding the hot SKU's stock row, as a long psql session would
    let stock = sys.db(Svc::Stock).await?;
    let mut holder = stock.begin().await?;
    holder
        .execute("SET LOCAL idle_in_transaction_session_timeout = 0")
        .await?;
    sqlx::query("SELECT 1 FROM stock WHERE sku = $1 FOR UPDATE")
        .bind(&hot)
        .execute(&mut *holder)
        .await?;
    // When thirty orders for the hot SKU and twenty for another arrive
    for _ in 0..30 {
        ledger.order(api, &customer, &[(&hot, 1)], None).await?;
    }
    let mut others = Vec::new();
    for _ in 0..20 {
        others.push(ledger.order(api, &customer, &[(&cold, 1)], None).await?);
    }
    // Then the other SKU's orders are confirmed while the lock is still held
    let confirmed = wait_until(
        "the other SKU's orders confirmed during the hold",
        Duration::from_secs(90),
        || async {
            for id in &others {
                let status = api
                    .order(id)
                    .await
                    .ok()
                    .and_then(|a| a.body["status"].as_str().map(str::to_owned));
                if status.as_deref() != Some("CONFIRMED") {
                    return false;
                }
            }
            true
        },
    )
    .await;
    if confirmed.is_err() {
        eprintln!("stock service log:\n{}", sys.log_tail(Svc::Stock));
    }
    confirmed?;
    holder.rollback().await?;
    // And, once it is released, the hot SKU's too, with nothing dead-lettered
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.confirmed, 50, "{:?}", outcome.cancelled);
    assert_eq!(
        dead_letters(&sys).await?,
        0,
        "a lock wait was dead-lettered"
    );
    Ok(())
}

#[tokio::test]
async fn a_deleted_durable_is_recreated_and_health_reports_it_until_then() -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    if sys.is_external() {
        println!("not run against an external deployment: it deletes a consumer");
        return Ok(());
    }
    let api = &sys.api;
    let js = jetsaga_scenarios::inject::jetstream(sys.nats_url()).await?;
    // When an operator deletes the voucher service's durable while it runs
    js.get_stream("ORDERS")
        .await?
        .delete_consumer("voucher-on-orders")
        .await?;
    wait_until(
        "the voucher service to recreate its durable",
        SETTLE / 4,
        || async {
            api.metric(
                Svc::Voucher,
                "jetsaga_consumer_pull_failures_total",
                "voucher-on-orders",
            )
            .await
            .unwrap_or(0.0)
                > 0.0
        },
    )
    .await?;
    // Then orders still complete through it, and its health is green again
    let mut ledger = Ledger::default();
    let sku = new_sku("AGAIN");
    ledger.sku(api, &sku, 100, 10).await?;
    let customer = ledger.customer(api, 10_000).await?;
    for _ in 0..3 {
        ledger.order(api, &customer, &[(&sku, 1)], None).await?;
    }
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.confirmed, 3);
    let health = api.get(Svc::Voucher, "/health").await?;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(
        health.body["consumers"]["voucher-on-orders"]["state"],
        "pulling"
    );
    Ok(())
}

#[tokio::test]
async fn rolling_restart_of_stock_in_the_middle_of_a_burst_cancels_nothing() -> anyhow::Result<()> {
    // Given two stock instances, orders with 20 s to finish, and an ack wait longer than that (as
    // in production, where it is 30 s and so is the deadline)
    let mut sys = System::start(SystemOptions {
        instances: 2,
        order_deadline: Duration::from_secs(20),
        ack_wait: Duration::from_secs(30),
        ..SystemOptions::default()
    })
    .await?;
    if sys.is_external() {
        println!("not run against an external deployment: it restarts processes");
        return Ok(());
    }
    let mut ledger = Ledger::default();
    let sku = new_sku("ROLL");
    ledger.sku(&sys.api, &sku, 100, 10_000).await?;
    let customer = ledger.customer(&sys.api, 10_000_000).await?;
    // When 200 orders arrive and each stock instance is restarted gracefully, one after the
    // other, while they flow
    for instance in 0..2 {
        for _ in 0..100 {
            ledger
                .order(&sys.api, &customer, &[(&sku, 1)], None)
                .await?;
        }
        let status = sys
            .restart_instance_gracefully(Svc::Stock, instance, Duration::from_secs(30))
            .await?;
        assert!(
            status.success(),
            "stock instance {instance} exited with {status}"
        );
    }
    // Then every order is confirmed: what a stopping instance would not finish it handed back
    let outcome = assert_invariants(&sys.api, &ledger, SETTLE).await?;
    assert_eq!(
        outcome.cancelled_total(),
        0,
        "orders cancelled by the restart: {:?}",
        outcome.cancelled
    );
    assert_eq!(outcome.confirmed, 200);
    Ok(())
}
