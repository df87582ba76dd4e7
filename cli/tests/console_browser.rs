//! `jetsaga console` in a real Chromium: an operator (or a viewer) signs in and uses the pages on
//! a running system, as issue 14 asks. Each test drives the browser through WebDriver
//! ([`browser::Browser`]) and saves what the window shows to `docs/console/<test name>.png`, which
//! the README shows.
//!
//! Given/when/then, like the other CLI tests: the given is a whole system with sagas run to their
//! end (and a fault planted on purpose); the when is what the person does in the browser; the then
//! is read from the page, and from the system where the page's word is not enough.

mod browser;
mod common;

use anyhow::Context as _;
use browser::Browser;
use common::{
    leave_the_durable_an_upgrade_abandons, poison_four_consumers, token_of, ConsoleProcess,
    Jetsaga, ABANDONED_DURABLE, VIEWERS,
};
use jetsaga_scenarios::checker::assert_invariants;
use jetsaga_scenarios::ledger::new_sku;
use jetsaga_scenarios::{Ledger, Svc, System, SystemOptions};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

const SETTLE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn an_operator_finds_a_cancelled_saga_by_its_reason_and_opens_its_diagram(
) -> anyhow::Result<()> {
    // Given a confirmed order, one cancelled because the payment failed and one because the
    // stock ran out
    let sys = System::start(SystemOptions::default()).await?;
    let api = sys.api.clone();
    let mut ledger = Ledger::default();
    let mug = new_sku("MUG");
    ledger.sku(&api, &mug, 1_250, 10).await?;
    let alice = ledger.customer(&api, 100_000).await?;
    let bob = ledger.customer(&api, 1_000).await?;
    let confirmed = ledger.order(&api, &alice, &[(&mug, 2)], None).await?;
    let unpaid = ledger.order(&api, &bob, &[(&mug, 2)], None).await?;
    let sold_out = ledger.order(&api, &alice, &[(&mug, 20)], None).await?;
    let outcome = assert_invariants(&api, &ledger, SETTLE).await?;
    assert_eq!(outcome.reason(&unpaid), "payment_failed");
    assert_eq!(outcome.reason(&sold_out), "stock_failed");
    let console = ConsoleProcess::start(&sys).await?;
    let browser = Browser::start().await?;

    // When an operator signs in, then every saga is listed, with the outcomes chart
    browser
        .sign_in(console.base_url(), token_of("alice"), "alice")
        .await?;
    browser
        .wait_for("[data-testid=who-role][data-role=operator]")
        .await?;
    browser.wait_count("[data-testid=saga-row]", 3).await?;
    browser.wait_for("[data-testid=outcomes-chart]").await?;
    browser
        .wait_text("[data-testid=outcomes-cancelled]", "2")
        .await?;
    browser.screenshot("sagas-list").await?;

    // When another order is placed while the page is open, then it appears without a reload
    // (the page follows /api/live)
    let later = ledger.order(&api, &alice, &[(&mug, 1)], None).await?;
    browser
        .wait_for(&format!("[data-testid=saga-row][data-order-id='{later}']"))
        .await?;
    browser.wait_count("[data-testid=saga-row]", 4).await?;

    // When they filter by the cancel reason payment_failed
    browser
        .select("[data-testid=filter-reason]", "payment_failed")
        .await?;
    browser.click("[data-testid=filter-apply]").await?;

    // Then only that saga is listed
    browser.wait_count("[data-testid=saga-row]", 1).await?;
    let listed = browser
        .attrs("[data-testid=saga-row]", "data-order-id")
        .await?;
    assert_eq!(listed, std::slice::from_ref(&unpaid));
    assert!(!listed.contains(&confirmed) && !listed.contains(&sold_out));

    // When they open it, then its diagram has a lane per service and an arrow per step, from
    // the order's creation to its cancellation, and the reconciler finds it clean
    browser
        .click(&format!(
            "[data-order-id='{unpaid}'] [data-testid=saga-link]"
        ))
        .await?;
    browser.wait_text("[data-testid=saga-id]", &unpaid).await?;
    browser
        .wait_text("[data-testid=saga-status]", "payment_failed")
        .await?;
    browser.wait_for("[data-testid=sequence-diagram]").await?;
    let lanes = browser.attrs("[data-testid=lane]", "data-service").await?;
    for service in ["order", "voucher", "points", "payment", "stock"] {
        assert!(
            lanes.iter().any(|l| l == service),
            "no lane for {service}: {lanes:?}"
        );
    }
    browser
        .wait_for("[data-testid=step][data-event='orders.cancelled']")
        .await?;
    let events = browser.attrs("[data-testid=step]", "data-event").await?;
    assert_eq!(events.first().map(String::as_str), Some("orders.created"));
    assert!(events.iter().any(|e| e == "payments.failed"), "{events:?}");
    browser
        .wait_for("[data-testid=verdict][data-state=judged][data-clean=true]")
        .await?;

    // When they click the failed payment, then its headers and payload are shown
    browser
        .click("[data-testid=step][data-event='payments.failed']")
        .await?;
    browser
        .wait_text("[data-testid=step-title]", "payments.failed")
        .await?;
    browser
        .wait_text("[data-testid=step-headers]", "ce-type")
        .await?;
    browser
        .wait_text("[data-testid=step-payload]", &unpaid)
        .await?;
    browser
        .screenshot("an_operator_finds_a_cancelled_saga_by_its_reason_and_opens_its_diagram")
        .await?;
    browser.close().await
}

/// Puts the points database in a state where spending a hold fails (an operator's trigger, as a
/// bad deploy or a forgotten audit freeze would): the OrderConfirmed handler of points fails while
/// the database answers, and its message ends in the dead letters.
async fn freeze_points_spending(sys: &System) -> anyhow::Result<()> {
    let points = sys.db(Svc::Points).await?;
    sqlx::query(
        "CREATE FUNCTION refuse_spending() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'points are frozen for an audit'; END $$",
    )
    .execute(&points)
    .await?;
    sqlx::query(
        "CREATE TRIGGER frozen BEFORE INSERT OR UPDATE ON holds FOR EACH ROW
         WHEN (NEW.status = 'SPENT') EXECUTE FUNCTION refuse_spending()",
    )
    .execute(&points)
    .await?;
    Ok(())
}

async fn thaw_points_spending(sys: &System) -> anyhow::Result<()> {
    let points = sys.db(Svc::Points).await?;
    sqlx::query("DROP TRIGGER frozen ON holds")
        .execute(&points)
        .await?;
    Ok(())
}

#[tokio::test]
async fn requeuing_a_dead_letter_group_takes_it_off_the_list() -> anyhow::Result<()> {
    // Given a poison message that four services dead-lettered, and then a confirmed order whose
    // points could not be earned (the points database refused, so its OrderConfirmed is a dead
    // letter too); the poison goes first, as its helper waits for exactly four dead letters
    let sys = System::start(SystemOptions::default()).await?;
    poison_four_consumers(&sys).await?;
    let api = sys.api.clone();
    let mut ledger = Ledger::default();
    let mug = new_sku("MUG");
    ledger.sku(&api, &mug, 1_250, 10).await?;
    let alice = ledger.customer(&api, 100_000).await?;
    freeze_points_spending(&sys).await?;
    ledger.order(&api, &alice, &[(&mug, 2)], None).await?;
    let console = ConsoleProcess::start(&sys).await?;
    let browser = Browser::start().await?;
    let frozen = "[data-testid=dl-group][data-service=points][data-key*='/max_deliveries/']";

    // When an operator opens the dead letters, then the refused confirmation is a group of its
    // own, with its raw message, beside the four poison groups
    browser
        .sign_in(console.base_url(), token_of("alice"), "alice")
        .await?;
    browser.nav("dead-letters").await?;
    browser.wait_for(frozen).await?;
    browser.wait_count("[data-testid=dl-group]", 5).await?;
    browser
        .wait_text(&format!("{frozen} [data-testid=dl-reason]"), "frozen")
        .await?;
    let raw = browser
        .script(
            "return document.querySelector(arguments[0]).textContent",
            vec![json!(format!("{frozen} [data-testid=dl-raw]"))],
        )
        .await?;
    assert!(
        raw.as_str().is_some_and(|r| r.contains("order_id")),
        "{raw}"
    );
    browser.click(&format!("{frozen} details summary")).await?;
    browser
        .wait_for(&format!("{frozen} details[open] [data-testid=dl-raw]"))
        .await?;
    browser.screenshot("dead-letters").await?;

    // When the database is fixed and the operator requeues the whole group with a reason
    thaw_points_spending(&sys).await?;
    browser
        .click(&format!("{frozen} [data-testid=dl-group-requeue]"))
        .await?;
    browser.wait_for("dialog[open]").await?;
    browser
        .wait_text("[data-testid=dialog-body]", "published again")
        .await?;
    assert!(
        !browser.is_enabled("[data-testid=dialog-confirm]").await?,
        "a requeue needs a reason"
    );
    browser
        .fill(
            "[data-testid=dialog-reason]",
            "the audit freeze is lifted; earn the points",
        )
        .await?;
    browser.click("[data-testid=dialog-confirm]").await?;
    browser
        .wait_text("[data-testid=dl-done]", "Requeued: 1")
        .await?;
    browser.click("[data-testid=dialog-close]").await?;

    // Then the group leaves the list and stays away (the requeued message was handled: the
    // points were earned and the books balance), and the four poison groups are still there
    browser.wait_gone(frozen).await?;
    assert_invariants(&api, &ledger, SETTLE).await?;
    browser.reload().await?;
    browser.wait_count("[data-testid=dl-group]", 4).await?;
    assert_eq!(browser.count(frozen).await?, 0);
    browser
        .screenshot("requeuing_a_dead_letter_group_takes_it_off_the_list")
        .await?;

    // And the audit names the operator who requeued it, and why
    browser.nav("audit").await?;
    browser
        .wait_text(
            "[data-testid=audit-row][data-operator=alice]",
            "the audit freeze is lifted",
        )
        .await?;
    browser.screenshot("audit").await?;
    browser.close().await
}

#[tokio::test]
async fn a_planted_difference_is_repaired_after_the_confirmation() -> anyhow::Result<()> {
    // Given a confirmed order that redeemed a voucher, whose voucher row was then put back to
    // RESERVED (restored from the wrong backup), and the payment provider's settlement file,
    // which has that order's payment and one payment we never took
    let sys = System::start(SystemOptions::default()).await?;
    let api = sys.api.clone();
    let mut ledger = Ledger::default();
    let mug = new_sku("MUG");
    ledger.sku(&api, &mug, 1_000, 10).await?;
    let alice = ledger.customer(&api, 100_000).await?;
    let code = new_sku("TENOFF");
    ledger.voucher(&api, &code, &alice, 100, None).await?;
    let order = ledger
        .order(&api, &alice, &[(&mug, 1)], Some(&code))
        .await?;
    assert_invariants(&api, &ledger, SETTLE).await?;
    let planted = sqlx::query("UPDATE vouchers SET status = 'RESERVED' WHERE order_id = $1")
        .bind(Uuid::parse_str(&order)?)
        .execute(&sys.db(Svc::Voucher).await?)
        .await?
        .rows_affected();
    assert_eq!(planted, 1);
    let (payment_id, amount, taken): (Uuid, i64, time::OffsetDateTime) = sqlx::query_as(
        "SELECT payment_id, amount_cents, created_at FROM payments WHERE order_id = $1",
    )
    .bind(Uuid::parse_str(&order)?)
    .fetch_one(&sys.db(Svc::Payment).await?)
    .await?;
    let date = taken.date().to_string();
    let unknown = Uuid::new_v4();
    let dir = std::env::temp_dir().join(format!("jetsaga-settlement-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let settlement = dir.join("settlement.csv");
    std::fs::write(
        &settlement,
        format!(
            "payment_id,amount_cents,time\n{payment_id},{amount},{date}T10:00:00Z\n{unknown},4200,{date}T10:01:00Z\n"
        ),
    )?;
    let console = ConsoleProcess::start(&sys).await?;
    let browser = Browser::start().await?;

    // When an operator runs the reconcile for the payment's day with the settlement file
    browser
        .sign_in(console.base_url(), token_of("alice"), "alice")
        .await?;
    browser.nav("reconcile").await?;
    browser
        .upload("[data-testid=rec-file]", &settlement)
        .await?;
    browser
        .wait_text("[data-testid=rec-file-note]", "Loaded settlement.csv")
        .await?;
    browser
        .script(
            "const d = document.querySelector(arguments[0]); d.value = arguments[1];",
            vec![json!("[data-testid=rec-date]"), json!(date)],
        )
        .await?;
    // Then the planted difference is listed as repairable, and the payment we never took as one
    // for a person (a check that finds the order still settling is run again, as a person
    // would)
    let row = format!("[data-testid=rec-diff][data-order-id='{order}']");
    browser
        .until("the planted difference to be reported", || async {
            if browser.count(&row).await? > 0 {
                return Ok(Some(()));
            }
            if browser.count("[data-testid=rec-running]").await? == 0 {
                browser.click("[data-testid=rec-check]").await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Ok(None)
        })
        .await?;
    browser
        .wait_for(&format!("{row}[data-repairable=true]"))
        .await?;
    let theirs = format!(
        "[data-testid=rec-diff][data-kind=missing_ours][data-id$='/{unknown}'][data-repairable=false]"
    );
    browser.wait_for(&theirs).await?;

    // When they ask for the repair, then a confirmation says what will happen, and nothing has
    // happened yet
    browser.click("[data-testid=rec-repair]").await?;
    browser.wait_for("dialog[open]").await?;
    browser.wait_text("[data-testid=rec-plan]", &order).await?;
    browser
        .wait_text("[data-testid=dialog-body]", "1 difference needs a person")
        .await?;
    browser
        .screenshot("a_planted_difference_is_repaired_after_the_confirmation")
        .await?;
    assert_eq!(api.voucher_status(&code).await?, "RESERVED");

    // When they confirm, then it is repaired by them, and the re-check (run on closing) lists
    // only the payment for a person
    browser.click("[data-testid=dialog-confirm]").await?;
    browser
        .wait_text("[data-testid=rec-repaired]", "Repaired 1 by alice")
        .await?;
    browser.screenshot("reconcile-repaired").await?;
    browser.click("[data-testid=dialog-close]").await?;
    browser.wait_gone(&row).await?;
    browser.wait_count("[data-testid=rec-diff]", 1).await?;
    browser.wait_for(&theirs).await?;
    assert_eq!(api.voucher_status(&code).await?, "REDEEMED");
    std::fs::remove_dir_all(&dir)?;
    browser.close().await
}

#[tokio::test]
async fn a_viewer_is_refused_a_write_action() -> anyhow::Result<()> {
    // Given four dead letters, and an operator's page left open on them
    let sys = System::start(SystemOptions::default()).await?;
    poison_four_consumers(&sys).await?;
    let console = ConsoleProcess::start(&sys).await?;
    let browser = Browser::start().await?;
    browser
        .sign_in(console.base_url(), token_of("bob"), "bob")
        .await?;
    browser.nav("dead-letters").await?;
    browser.wait_count("[data-testid=dl-group]", 4).await?;
    assert!(browser.is_enabled("[data-testid=dl-requeue]").await?);

    // When a viewer signs in in that browser (another tab) and the old page still offers requeue
    let (_, viewer_token) = VIEWERS[0];
    let status = browser
        .script(
            "return fetch('/api/session', {method: 'POST',
                 headers: {'Content-Type': 'application/json'},
                 body: JSON.stringify({token: arguments[0]})}).then(r => r.status);",
            vec![json!(viewer_token)],
        )
        .await?;
    assert_eq!(status, json!(200), "the viewer's sign-in");
    browser.click("[data-testid=dl-requeue]").await?;
    browser.wait_for("dialog[open]").await?;
    browser
        .fill("[data-testid=dialog-reason]", "let me try")
        .await?;
    browser.click("[data-testid=dialog-confirm]").await?;

    // Then the server's refusal is shown, the header now says viewer, and nothing was requeued
    let refusal = browser
        .wait_text("[data-testid=dialog-error]", "Refused (403)")
        .await?;
    browser
        .wait_text("[data-testid=banner-text]", "Refused (403)")
        .await?;
    browser
        .wait_for("[data-testid=who-role][data-role=viewer]")
        .await?;
    browser
        .screenshot("a_viewer_is_refused_a_write_action")
        .await?;
    browser.click("[data-testid=dialog-close]").await?;
    let listed = Jetsaga::new(&sys)?.json(&["dlq", "list"]).await?.1;
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(4),
        "still four open dead letters after {refusal:?}: {listed}"
    );

    // And a page the viewer opens offers no write action
    browser.reload().await?;
    browser.wait_for("[data-testid=viewer-note]").await?;
    browser.wait_count("[data-testid=dl-group]", 4).await?;
    assert!(!browser.is_enabled("[data-testid=dl-requeue]").await?);
    assert!(!browser.is_enabled("[data-testid=dl-group-discard]").await?);
    browser.close().await
}

#[tokio::test]
async fn the_health_page_shows_each_service_with_its_database_nats_and_consumers(
) -> anyhow::Result<()> {
    // Given a running system with a finished saga
    let sys = System::start(SystemOptions::default()).await?;
    let api = sys.api.clone();
    let mut ledger = Ledger::default();
    let mug = new_sku("MUG");
    ledger.sku(&api, &mug, 1_250, 10).await?;
    let alice = ledger.customer(&api, 100_000).await?;
    ledger.order(&api, &alice, &[(&mug, 1)], None).await?;
    assert_invariants(&api, &ledger, SETTLE).await?;
    // and the durable an upgrade leaves behind, which no instance pulls
    leave_the_durable_an_upgrade_abandons(&sys).await?;
    let console = ConsoleProcess::start(&sys).await?;
    let browser = Browser::start().await?;

    // When a viewer opens the health page
    browser
        .sign_in(console.base_url(), VIEWERS[0].1, VIEWERS[0].0)
        .await?;
    browser.nav("health").await?;

    // Then each of the five services is there, its database and NATS up, with its consumers
    for service in ["order", "voucher", "points", "payment", "stock"] {
        let card = format!("[data-testid=health-service][data-service={service}]");
        browser
            .wait_for(&format!("{card} [data-testid=health-db][data-up=true]"))
            .await
            .with_context(|| format!("the database of {service}"))?;
        browser
            .wait_for(&format!("{card} [data-testid=health-nats][data-up=true]"))
            .await
            .with_context(|| format!("NATS for {service}"))?;
        browser
            .wait_for(&format!("{card} [data-testid=health-consumers]"))
            .await?;
        // and what its database holds on disk (a new database is a few MB)
        browser
            .wait_text(&format!("{card} [data-testid=health-db-size]"), "MB")
            .await
            .with_context(|| format!("the database size of {service}"))?;
    }
    browser
        .wait_count("[data-testid=health-service]", 5)
        .await?;
    // and the abandoned durable is marked as pulled by nobody
    browser
        .wait_text(
            &format!(
                "[data-testid=health-service][data-service=payment] \
                 tr[data-consumer={ABANDONED_DURABLE}] [data-testid=health-consumer-read]"
            ),
            "nobody pulls",
        )
        .await?;
    browser
        .screenshot("the_health_page_shows_each_service_with_its_database_nats_and_consumers")
        .await?;
    browser.close().await
}
