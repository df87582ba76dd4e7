//! `jetsaga reconcile` against the whole system: five service processes, a real nats-server and
//! five PostgreSQL databases. Each test runs sagas to the end, corrupts the databases on purpose
//! with SQL, and runs the real binary to see each difference reported, and repaired where an
//! ordinary compensating event can repair it.

mod common;

use anyhow::Context as _;
use common::{Jetsaga, Run};
use jetsaga_scenarios::checker::assert_invariants;
use jetsaga_scenarios::ledger::{new_id, new_sku};
use jetsaga_scenarios::{Ledger, Svc, System, SystemOptions};
use jetsaga_testkit::wait_until;
use serde_json::Value;
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::time::Duration;
use uuid::Uuid;

const SETTLE: Duration = Duration::from_secs(60);

/// `jetsaga reconcile` pointed at the system's databases and NATS.
struct Reconciler(Jetsaga);

impl Reconciler {
    fn new(sys: &System) -> anyhow::Result<Self> {
        Ok(Reconciler(Jetsaga::new(sys)?))
    }

    /// `reconcile <args>`. The sagas of a test are over before it corrupts anything, so nothing
    /// needs time to settle: `--settle-secs 0` unless `args` say otherwise.
    fn args<'a>(args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["reconcile"];
        if !args.contains(&"--settle-secs") {
            all.extend(["--settle-secs", "0"]);
        }
        all.extend_from_slice(args);
        all
    }

    async fn run(&self, args: &[&str]) -> anyhow::Result<Run> {
        self.0.run(&Self::args(args)).await
    }

    /// Runs it with `--json`; returns the exit code and the document.
    async fn json(&self, args: &[&str]) -> anyhow::Result<(i32, Value)> {
        self.0.json(&Self::args(args)).await
    }
}

fn found(list: &Value) -> BTreeSet<(String, String, String, String)> {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|d| {
                    let s = |k: &str| d[k].as_str().unwrap_or("person").to_owned();
                    (s("kind"), s("service"), s("id"), s("repair"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn diff(kind: &str, service: &str, id: &str, repair: &str) -> (String, String, String, String) {
    (kind.into(), service.into(), id.into(), repair.into())
}

async fn exec(db: &PgPool, sql: &str, id: &str) -> anyhow::Result<()> {
    let n = sqlx::query(sql)
        .bind(Uuid::parse_str(id)?)
        .execute(db)
        .await
        .with_context(|| sql.to_owned())?
        .rows_affected();
    anyhow::ensure!(n > 0, "no row changed by {sql} for {id}");
    Ok(())
}

/// Flips an order's payment to `status` and moves its amount out of (CHARGED) or back into
/// (REFUNDED) the balance, as if the row had been restored from the wrong backup. The account
/// books still balance; only the order and its payment disagree.
async fn set_payment(payment: &PgPool, order_id: &str, status: &str) -> anyhow::Result<()> {
    let sign = if status == "CHARGED" { -1 } else { 1 };
    let (customer, amount): (Uuid, i64) = sqlx::query_as(
        "UPDATE payments SET status = $2 WHERE order_id = $1 RETURNING customer_id, amount_cents",
    )
    .bind(Uuid::parse_str(order_id)?)
    .bind(status)
    .fetch_one(payment)
    .await?;
    sqlx::query("UPDATE accounts SET balance_cents = balance_cents + $2 WHERE customer_id = $1")
        .bind(customer)
        .bind(sign * amount)
        .execute(payment)
        .await?;
    Ok(())
}

async fn outbox_types(db: &PgPool, key: &str) -> anyhow::Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT ce_type FROM kit_outbox WHERE order_key = $1 ORDER BY id")
            .bind(key)
            .fetch_all(db)
            .await?,
    )
}

#[tokio::test]
async fn repairable_differences_are_reported_then_repaired_through_the_owners_outboxes(
) -> anyhow::Result<()> {
    // Given finished sagas: two confirmed (one with a voucher), one cancelled after its charge
    let mut sys = System::start(SystemOptions::default()).await?;
    if sys.is_external() {
        return Ok(());
    }
    let api = sys.api.clone();
    let mut ledger = Ledger::default();
    let mug = new_sku("MUG");
    ledger.sku(&api, &mug, 1_000, 10).await?;
    let alice = ledger.customer(&api, 100_000).await?;
    let (v1, v2) = (new_sku("TENOFF"), new_sku("TWENTY"));
    ledger.voucher(&api, &v1, &alice, 100, None).await?;
    ledger.voucher(&api, &v2, &alice, 200, None).await?;
    let overdue = ledger.order(&api, &alice, &[(&mug, 2)], None).await?;
    let redeemed = ledger.order(&api, &alice, &[(&mug, 1)], Some(&v1)).await?;
    let cancelled = ledger.order(&api, &alice, &[(&mug, 20)], Some(&v2)).await?;
    let outcome = assert_invariants(&api, &ledger, SETTLE).await?;
    assert_eq!(outcome.reason(&cancelled), "stock_failed");
    let reconcile = Reconciler::new(&sys)?;

    // Then the system is clean, for every order and for today
    let clean = reconcile.run(&[]).await?;
    assert_eq!(clean.code, 0, "{clean:?}");
    assert!(
        clean.stdout.starts_with("clean: checked 3 orders"),
        "{clean:?}"
    );
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let (code, doc) = reconcile.json(&["--date", &today]).await?;
    assert_eq!(
        (code, &doc["summary"]["clean"]),
        (0, &Value::Bool(true)),
        "{doc:#}"
    );

    // When the cancelled order is charged again, holds stock and its voucher again, the confirmed
    // order's voucher is only reserved, and an order is PENDING long past its deadline while the
    // order service (and so its deadline sweep) is down
    let (order_db, payment_db) = (sys.db(Svc::Order).await?, sys.db(Svc::Payment).await?);
    let (stock_db, voucher_db) = (sys.db(Svc::Stock).await?, sys.db(Svc::Voucher).await?);
    set_payment(&payment_db, &cancelled, "CHARGED").await?;
    sqlx::query("UPDATE vouchers SET status = 'RESERVED', order_id = $1 WHERE code = $2")
        .bind(Uuid::parse_str(&cancelled)?)
        .bind(&v2)
        .execute(&voucher_db)
        .await?;
    exec(
        &voucher_db,
        "UPDATE vouchers SET status = 'RESERVED' WHERE order_id = $1",
        &redeemed,
    )
    .await?;
    sqlx::query(
        "INSERT INTO reservations (order_id, sku, quantity, status) VALUES ($1, $2, 1, 'HELD')",
    )
    .bind(Uuid::parse_str(&cancelled)?)
    .bind(&mug)
    .execute(&stock_db)
    .await?;
    sqlx::query(
        "UPDATE stock SET available = available - 1, reserved = reserved + 1 WHERE sku = $1",
    )
    .bind(&mug)
    .execute(&stock_db)
    .await?;
    sys.kill(Svc::Order)?;
    exec(
        &order_db,
        "UPDATE orders SET status = 'PENDING', deadline = now() - interval '1 hour' WHERE order_id = $1",
        &overdue,
    )
    .await?;
    // A PENDING order has earned no points yet.
    exec(
        &sys.db(Svc::Points).await?,
        "WITH h AS (DELETE FROM holds WHERE order_id = $1 RETURNING customer_id, earned)
         UPDATE accounts a SET available = a.available - h.earned
         FROM h WHERE a.customer_id = h.customer_id",
        &overdue,
    )
    .await?;

    // Then each is reported with its kind and the owner's repair, and the exit code is 1
    let expected = BTreeSet::from([
        diff("status_mismatch", "payment", &cancelled, "refund"),
        diff("status_mismatch", "stock", &cancelled, "release_stock"),
        diff("status_mismatch", "voucher", &cancelled, "release_voucher"),
        diff("status_mismatch", "voucher", &redeemed, "redeem_voucher"),
        diff("stuck", "order", &overdue, "cancel_overdue"),
    ]);
    let (code, doc) = reconcile.json(&[]).await?;
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(found(&doc["differences"]), expected, "{doc:#}");
    let table = reconcile.run(&[]).await?;
    assert_eq!(table.code, 1);
    println!("--- jetsaga reconcile ---\n{}", table.stdout);

    // A repair without an operator's token is refused before anything is touched
    let unsigned = Reconciler(Jetsaga::new(&sys)?.with_env("JETSAGA_ADMIN_TOKEN", ""))
        .run(&["--repair"])
        .await?;
    assert_eq!(unsigned.code, 2, "{unsigned:?}");
    assert!(
        unsigned.stderr.contains("needs your operator token"),
        "{unsigned:?}"
    );
    let (_, still) = reconcile.json(&[]).await?;
    assert_eq!(found(&still["differences"]), expected, "{still:#}");

    // When it repairs, then every difference is repaired and the re-check is clean: the overdue
    // order's compensations are in flight, set off by its cancellation
    let repair = reconcile.run(&["--repair"]).await?;
    println!("--- jetsaga reconcile --repair ---\n{}", repair.stdout);
    assert_eq!(repair.code, 0, "{repair:?}");
    assert!(repair.stdout.contains("repairs by ops-test:"), "{repair:?}");
    assert!(
        repair
            .stdout
            .contains("repaired 5; 0 need a person; 2 follow-on effects in flight"),
        "{repair:?}"
    );

    // Then each owner wrote its event to its outbox, with the change, in one transaction
    assert!(outbox_types(&payment_db, &cancelled)
        .await?
        .contains(&"jetsaga.payments.refunded.v1".to_owned()));
    let stock_events = outbox_types(&stock_db, &cancelled).await?;
    assert!(
        stock_events.contains(&"jetsaga.stock.released.v1".to_owned()),
        "{stock_events:?}"
    );
    assert!(outbox_types(&voucher_db, &redeemed)
        .await?
        .contains(&"jetsaga.vouchers.redeemed.v1".to_owned()));
    let order_events = outbox_types(&order_db, &overdue).await?;
    assert_eq!(
        order_events.last().map(String::as_str),
        Some("jetsaga.orders.cancelled.v1"),
        "{order_events:?}"
    );
    // (which wait for the order service's relay: until then they show as differences)
    let (code, doc) = reconcile.json(&[]).await?;
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(
        found(&doc["differences"]),
        BTreeSet::from([
            diff("status_mismatch", "payment", &overdue, "refund"),
            diff("status_mismatch", "stock", &overdue, "release_stock"),
        ]),
        "{doc:#}"
    );

    // And once the order service is back, its relay publishes the cancellation, payment and stock
    // compensate it, and a later reconcile is clean
    sys.restart(Svc::Order).await?;
    wait_until("reconcile to be clean", SETTLE, || async {
        reconcile.run(&[]).await.is_ok_and(|r| r.code == 0)
    })
    .await?;
    let order = api.order(&overdue).await?.ok()?;
    assert_eq!(
        (order["status"].as_str(), order["cancel_reason"].as_str()),
        (Some("CANCELLED"), Some("timeout"))
    );
    assert_eq!(api.balance(&alice).await?, 100_000 - 900);
    assert_eq!(api.stock(&mug).await?, (9, 1));
    assert_eq!(api.voucher_status(&v1).await?, "REDEEMED");
    assert_eq!(api.voucher_status(&v2).await?, "AVAILABLE");

    // And repairing a clean system changes nothing
    let (code, doc) = reconcile.json(&["--repair"]).await?;
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["repaired"], Value::Array(vec![]), "{doc:#}");
    Ok(())
}

#[tokio::test]
async fn differences_only_a_person_can_fix_are_listed_and_keep_the_exit_code_at_one(
) -> anyhow::Result<()> {
    // Given four confirmed orders, two with vouchers
    let sys = System::start(SystemOptions::default()).await?;
    if sys.is_external() {
        return Ok(());
    }
    let api = sys.api.clone();
    let mut ledger = Ledger::default();
    let mug = new_sku("MUG");
    ledger.sku(&api, &mug, 1_000, 10).await?;
    let alice = ledger.customer(&api, 100_000).await?;
    let bob = ledger.customer(&api, 1_000).await?;
    let code = new_sku("FIVE");
    ledger.voucher(&api, &code, &alice, 500, None).await?;
    let overcharged = ledger.order(&api, &alice, &[(&mug, 2)], None).await?;
    let unreserved = ledger.order(&api, &alice, &[(&mug, 1)], None).await?;
    let refunded = ledger.order(&api, &alice, &[(&mug, 1)], None).await?;
    let redeemable = ledger
        .order(&api, &alice, &[(&mug, 1)], Some(&code))
        .await?;
    assert_invariants(&api, &ledger, SETTLE).await?;
    let reconcile = Reconciler::new(&sys)?;
    let (payment_db, stock_db) = (sys.db(Svc::Payment).await?, sys.db(Svc::Stock).await?);
    let voucher_db = sys.db(Svc::Voucher).await?;

    // When a charge is raised by a cent, a reservation is deleted, a confirmed order is refunded,
    // bob pays for an order nobody placed, and a confirmed order's voucher is only reserved
    exec(
        &payment_db,
        "UPDATE payments SET amount_cents = amount_cents + 1 WHERE order_id = $1",
        &overcharged,
    )
    .await?;
    exec(
        &stock_db,
        "DELETE FROM reservations WHERE order_id = $1",
        &unreserved,
    )
    .await?;
    set_payment(&payment_db, &refunded, "REFUNDED").await?;
    let ghost = new_id();
    sqlx::query(
        "INSERT INTO payments (order_id, payment_id, customer_id, amount_cents, status)
         VALUES ($1, $2, $3, 500, 'CHARGED')",
    )
    .bind(Uuid::parse_str(&ghost)?)
    .bind(Uuid::new_v4())
    .bind(Uuid::parse_str(&bob)?)
    .execute(&payment_db)
    .await?;
    sqlx::query("UPDATE accounts SET balance_cents = balance_cents - 500 WHERE customer_id = $1")
        .bind(Uuid::parse_str(&bob)?)
        .execute(&payment_db)
        .await?;
    exec(
        &voucher_db,
        "UPDATE vouchers SET status = 'RESERVED' WHERE order_id = $1",
        &redeemable,
    )
    .await?;

    // Then every one is reported; the ones no event can fix need a person
    let person = BTreeSet::from([
        diff("amount_mismatch", "payment", &overcharged, "person"),
        diff("conservation", "payment", &alice, "person"),
        diff("missing", "stock", &unreserved, "person"),
        diff("conservation", "stock", &mug, "person"),
        diff("status_mismatch", "payment", &refunded, "person"),
        diff("missing", "payment", &ghost, "person"),
    ]);
    let mut all = person.clone();
    all.insert(diff(
        "status_mismatch",
        "voucher",
        &redeemable,
        "redeem_voucher",
    ));
    let (exit, doc) = reconcile.json(&[]).await?;
    assert_eq!(exit, 1, "{doc:#}");
    assert_eq!(found(&doc["differences"]), all, "{doc:#}");

    // When it repairs, the voucher is redeemed and the rest stays, listed for a person
    let run = reconcile.run(&["--repair"]).await?;
    println!("--- jetsaga reconcile --repair ---\n{}", run.stdout);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("repaired 1; 6 need a person"),
        "{run:?}"
    );
    let (exit, doc) = reconcile.json(&["--repair"]).await?;
    assert_eq!(exit, 1, "{doc:#}");
    assert_eq!(found(&doc["remaining"]), person, "{doc:#}");
    assert_eq!(doc["summary"]["needs_person"], 6, "{doc:#}");
    assert_eq!(doc["repaired"], Value::Array(vec![]), "{doc:#}");
    assert_eq!(api.voucher_status(&code).await?, "REDEEMED");
    Ok(())
}

#[tokio::test]
async fn settlement_file_differences_are_missing_ours_missing_theirs_and_amount_mismatch(
) -> anyhow::Result<()> {
    // Given three charged orders
    let sys = System::start(SystemOptions::default()).await?;
    if sys.is_external() {
        return Ok(());
    }
    let api = sys.api.clone();
    let mut ledger = Ledger::default();
    let mug = new_sku("MUG");
    ledger.sku(&api, &mug, 1_250, 10).await?;
    let alice = ledger.customer(&api, 100_000).await?;
    let mut orders = Vec::new();
    for quantity in 1..=3 {
        orders.push(
            ledger
                .order(&api, &alice, &[(&mug, quantity)], None)
                .await?,
        );
    }
    assert_invariants(&api, &ledger, SETTLE).await?;
    let payment_db = sys.db(Svc::Payment).await?;
    let mut payments = Vec::new();
    for order in &orders {
        let row: (Uuid, i64, time::OffsetDateTime) = sqlx::query_as(
            "SELECT payment_id, amount_cents, created_at FROM payments WHERE order_id = $1",
        )
        .bind(Uuid::parse_str(order)?)
        .fetch_one(&payment_db)
        .await?;
        payments.push(row);
    }
    let date = payments[0].2.date().to_string();
    let reconcile = Reconciler::new(&sys)?;

    // When the provider's file has the first as ours, the second with another amount, one we do
    // not know, and not the third
    let dir = std::env::temp_dir().join(format!("jetsaga-settlement-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("settlement.csv");
    let unknown = Uuid::new_v4();
    std::fs::write(
        &file,
        format!(
            "payment_id,amount_cents,time\n{},{},{date}T10:00:00Z\n{},{},{date}T10:01:00Z\n{unknown},4200,{date}T10:02:00Z\n",
            payments[0].0,
            payments[0].1,
            payments[1].0,
            payments[1].1 - 50,
        ),
    )?;
    let path = file.display().to_string();
    let (exit, doc) = reconcile
        .json(&["--date", &date, "--settlement", &path])
        .await?;

    // Then each kind is reported, for a person
    assert_eq!(exit, 1, "{doc:#}");
    assert_eq!(
        found(&doc["differences"]),
        BTreeSet::from([
            diff(
                "amount_mismatch",
                "payment",
                &payments[1].0.to_string(),
                "person"
            ),
            diff("missing_ours", "payment", &unknown.to_string(), "person"),
            diff(
                "missing_theirs",
                "payment",
                &payments[2].0.to_string(),
                "person"
            ),
        ]),
        "{doc:#}"
    );
    assert_eq!(doc["settlement_rows"], 3);
    let table = reconcile
        .run(&["--date", &date, "--settlement", &path])
        .await?;
    println!("--- jetsaga reconcile --settlement ---\n{}", table.stdout);

    // And a malformed file is refused with its line number before anything is compared
    std::fs::write(
        &file,
        format!(
            "payment_id,amount_cents,time\n{},{},{date}T10:00:00Z\n{},12.50,{date}T10:01:00Z\n",
            payments[0].0, payments[0].1, payments[1].0
        ),
    )?;
    let bad = reconcile
        .run(&["--date", &date, "--settlement", &path])
        .await?;
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(
        bad.stderr
            .contains("line 3: amount_cents \"12.50\" is not a whole number of cents"),
        "{bad:?}"
    );
    // And a settlement file needs its business date
    let no_date = reconcile.run(&["--settlement", &path]).await?;
    assert_eq!(no_date.code, 2, "{no_date:?}");
    assert!(no_date.stderr.contains("--date"), "{no_date:?}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test]
async fn points_held_by_ended_orders_are_released_or_earned_by_repair() -> anyhow::Result<()> {
    // Given a confirmed order that spent 300 points and a cancelled one that held 200
    let sys = System::start(SystemOptions::default()).await?;
    if sys.is_external() {
        println!("not run against an external deployment: it corrupts the databases");
        return Ok(());
    }
    let api = sys.api.clone();
    let mut ledger = Ledger::default();
    let mug = new_sku("MUG");
    ledger.sku(&api, &mug, 1_000, 5).await?;
    let tv = new_sku("TV");
    ledger.sku(&api, &tv, 90_000, 5).await?;
    let alice = ledger.customer(&api, 5_000).await?;
    ledger.award_points(&api, &alice, 1_000).await?;
    let confirmed = ledger
        .order_with_points(&api, &alice, &[(&mug, 2)], None, Some(300))
        .await?;
    let cancelled = ledger
        .order_with_points(&api, &alice, &[(&tv, 1)], None, Some(200))
        .await?;
    let outcome = assert_invariants(&api, &ledger, SETTLE).await?;
    assert_eq!(outcome.reason(&cancelled), "payment_failed");
    assert_eq!(api.points(&alice).await?, (717, 0));
    let reconcile = Reconciler::new(&sys)?;
    assert_eq!(reconcile.run(&[]).await?.code, 0);

    // When both holds are put back to HELD, as a restore from an old backup would
    let points_db = sys.db(Svc::Points).await?;
    exec(
        &points_db,
        "UPDATE holds SET status = 'HELD', earned = NULL WHERE order_id = $1",
        &confirmed,
    )
    .await?;
    exec(
        &points_db,
        "UPDATE holds SET status = 'HELD' WHERE order_id = $1",
        &cancelled,
    )
    .await?;
    exec(
        &points_db,
        "UPDATE accounts SET available = 500, held = 500 WHERE customer_id = $1",
        &alice,
    )
    .await?;

    // Then each is reported with the points service's repair
    let (code, doc) = reconcile.json(&[]).await?;
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(
        found(&doc["differences"]),
        BTreeSet::from([
            diff("status_mismatch", "points", &confirmed, "earn_points"),
            diff("status_mismatch", "points", &cancelled, "release_points"),
        ]),
        "{doc:#}"
    );
    // And the repair spends and earns once, releases once, and the books balance again
    let repair = reconcile.run(&["--repair"]).await?;
    assert_eq!(repair.code, 0, "{repair:?}");
    assert_eq!(api.points(&alice).await?, (717, 0));
    let events = outbox_types(&points_db, &confirmed).await?;
    assert_eq!(
        events
            .iter()
            .filter(|t| *t == "jetsaga.points.earned.v1")
            .count(),
        2,
        "the handler's and the repair's: {events:?}"
    );
    assert!(outbox_types(&points_db, &cancelled)
        .await?
        .contains(&"jetsaga.points.released.v1".to_owned()));
    assert_eq!(reconcile.run(&[]).await?.code, 0);
    Ok(())
}
