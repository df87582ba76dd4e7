//! The stream audit on the whole system: an event NATS acknowledged and then lost, before its
//! consumer read it, is found from the producer's outbox by `jetsaga reconcile --streams` and
//! published again under its own ids, and the saga it belonged to completes with no double effect.

use anyhow::Context as _;
use jetsaga_scenarios::checker::assert_invariants;
use jetsaga_scenarios::ledger::new_sku;
use jetsaga_scenarios::system::workspace_binary;
use jetsaga_scenarios::{Ledger, Svc, System, SystemOptions};
use jetsaga_testkit::wait_for;
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

const SETTLE: Duration = Duration::from_secs(60);

/// Runs the `jetsaga` binary on the system; returns its exit code and what it printed.
async fn jetsaga(sys: &System, args: &[&str]) -> anyhow::Result<(i32, String)> {
    let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    all.extend(["--nats-url".to_owned(), sys.nats_url().to_owned()]);
    for (flag, svc) in [
        ("--order-db", Svc::Order),
        ("--voucher-db", Svc::Voucher),
        ("--points-db", Svc::Points),
        ("--payment-db", Svc::Payment),
        ("--stock-db", Svc::Stock),
    ] {
        all.extend([flag.to_owned(), sys.database_url(svc)?]);
    }
    let out = tokio::process::Command::new(workspace_binary("jetsaga")?)
        .args(&all)
        .output()
        .await
        .context("running jetsaga")?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "jetsaga {}: exit {:?}\n{stdout}{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.code().unwrap_or(-1), stdout))
}

#[tokio::test]
async fn a_saga_whose_event_the_stream_lost_completes_once_the_audit_republishes_it(
) -> anyhow::Result<()> {
    // Given a system whose orders have two minutes to finish, and the stock service down
    let mut sys = System::start(SystemOptions {
        order_deadline: Duration::from_secs(120),
        ..SystemOptions::default()
    })
    .await?;
    if sys.is_external() {
        println!("not run against an external deployment: it stops a service and NATS");
        return Ok(());
    }
    let api = sys.api.clone();
    let mut ledger = Ledger::default();
    let sku = new_sku("AUDIT");
    ledger.sku(&api, &sku, 1_250, 10).await?;
    let customer = ledger.customer(&api, 10_000).await?;
    sys.kill(Svc::Stock)?;

    // When an order is charged, and PAYMENTS acknowledges its PaymentSucceeded and then loses it
    // before stock has read it (deleted, and NATS restarted without it)
    let order = ledger.order(&api, &customer, &[(&sku, 2)], None).await?;
    let payment = sys.db(Svc::Payment).await?;
    let subject = format!("payments.succeeded.{order}");
    let (event_id, seq): (Uuid, i64) =
        wait_for("PaymentSucceeded to be published", SETTLE, || async {
            sqlx::query_as(
                "SELECT event_id, stream_seq FROM kit_outbox
                 WHERE subject = $1 AND published_at IS NOT NULL",
            )
            .bind(&subject)
            .fetch_optional(&payment)
            .await
            .ok()
            .flatten()
        })
        .await?;
    let js = async_nats::jetstream::new(
        saga_kit::provision::connect(sys.nats_url(), "scenario-audit").await?,
    );
    let stream = js.get_stream("PAYMENTS").await?;
    anyhow::ensure!(stream.delete_message(u64::try_from(seq)?).await?);
    sys.nats
        .as_mut()
        .context("the system runs its own nats-server")?
        .restart()
        .await?;

    // And the operator runs the stream audit of the payment service
    let (code, stdout) = jetsaga(
        &sys,
        &["--json", "reconcile", "--streams", "--service", "payment"],
    )
    .await?;
    let audit: Value = serde_json::from_str(&stdout).context("the audit printed no JSON")?;

    // Then it republished exactly that event, and says NATS lost it (exit 3)
    assert_eq!(code, 3);
    assert_eq!(audit["missing"], 1);
    assert_eq!(audit["streams"][0]["stream"], "PAYMENTS");
    assert_eq!(
        audit["streams"][0]["republished_ids"],
        serde_json::json!([event_id.to_string()])
    );

    // When stock starts again
    sys.restart(Svc::Stock).await?;

    // Then the order is confirmed with its stock reserved and its charge made once, every
    // invariant holds, the reconciler finds nothing, and a new audit of every service finds
    // nothing missing
    let outcome = assert_invariants(&api, &ledger, SETTLE).await?;
    assert_eq!(outcome.status(&order), "CONFIRMED");
    assert_eq!(api.stock(&sku).await?, (8, 2));
    assert_eq!(api.balance(&customer).await?, 10_000 - 2 * 1_250);
    let (code, _) = jetsaga(&sys, &["reconcile", "--settle-secs", "0"]).await?;
    assert_eq!(code, 0, "the reconciler found differences");
    let (code, _) = jetsaga(&sys, &["reconcile", "--streams"]).await?;
    assert_eq!(code, 0, "the stream audit found events missing");
    Ok(())
}
