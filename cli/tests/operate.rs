//! `jetsaga trace`, `stats` and `dlq` against the real system.

mod common;

use anyhow::Context as _;
use common::{
    leave_the_durable_an_upgrade_abandons, poison_four_consumers, Jetsaga, ABANDONED_DURABLE,
};
use jetsaga_scenarios::checker::{assert_invariants, wait_quiet};
use jetsaga_scenarios::inject;
use jetsaga_scenarios::ledger::new_sku;
use jetsaga_scenarios::{Ledger, System, SystemOptions};
use jetsaga_testkit::wait_until;
use serde_json::Value;
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(60);

async fn jetsaga(sys: &System, args: &[&str]) -> anyhow::Result<(i32, String)> {
    let run = Jetsaga::new(sys)?.run(args).await?;
    Ok((run.code, run.stdout))
}

async fn json(sys: &System, args: &[&str]) -> anyhow::Result<Value> {
    let (code, value) = Jetsaga::new(sys)?.json(args).await?;
    anyhow::ensure!(code == 0, "jetsaga {} exited {code}", args.join(" "));
    Ok(value)
}

#[tokio::test]
async fn trace_shows_each_step_with_its_service_cause_and_outcome() -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    let mut ledger = Ledger::default();
    let sku = new_sku("MUG");
    ledger.sku(&sys.api, &sku, 1_250, 10).await?;
    let alice = ledger.customer(&sys.api, 1_000).await?;
    let order = ledger.order(&sys.api, &alice, &[(&sku, 2)], None).await?;
    assert_invariants(&sys.api, &ledger, SETTLE).await?;

    let trace = json(&sys, &["trace", &order]).await?;
    let steps = trace["steps"].as_array().context("steps")?;
    let events: Vec<&str> = steps.iter().filter_map(|s| s["event"].as_str()).collect();
    assert_eq!(
        events,
        [
            "orders.created",
            "vouchers.reserved",
            "points.reserved",
            "payments.failed",
            "orders.cancelled"
        ]
    );
    assert_eq!(steps[0]["caused_by"], Value::Null);
    assert_eq!(steps[3]["caused_by"], 3);
    assert_eq!(steps[3]["service"], "payment");
    assert_eq!(trace["summary"]["status"], "CANCELLED");
    assert_eq!(trace["summary"]["cancel_reason"], "payment_failed");

    let (code, table) = jetsaga(&sys, &["trace", &order]).await?;
    assert_eq!(code, 0);
    assert!(table.contains("payments.failed"), "{table}");
    assert!(table.contains("CANCELLED (payment_failed)"), "{table}");
    let (code, mermaid) = jetsaga(&sys, &["trace", &order, "--format", "mermaid"]).await?;
    assert_eq!(code, 0);
    assert!(mermaid.starts_with("sequenceDiagram"), "{mermaid}");
    assert!(
        mermaid.contains("points->>payment: payments.failed"),
        "{mermaid}"
    );

    let (code, _) = jetsaga(&sys, &["trace", &uuid::Uuid::new_v4().to_string()]).await?;
    assert_eq!(code, 2, "an unknown order is an error");
    let (code, _) = jetsaga(&sys, &["trace", "not-a-uuid"]).await?;
    assert_eq!(code, 2, "bad input is refused");
    Ok(())
}

#[tokio::test]
async fn stats_reports_lag_backlog_dead_letters_and_saga_outcomes() -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    let mut ledger = Ledger::default();
    let sku = new_sku("MUG");
    ledger.sku(&sys.api, &sku, 1_000, 10).await?;
    let rich = ledger.customer(&sys.api, 10_000).await?;
    let poor = ledger.customer(&sys.api, 10).await?;
    ledger.order(&sys.api, &rich, &[(&sku, 1)], None).await?;
    ledger.order(&sys.api, &rich, &[(&sku, 2)], None).await?;
    ledger.order(&sys.api, &poor, &[(&sku, 1)], None).await?;
    assert_invariants(&sys.api, &ledger, SETTLE).await?;

    let stats = json(&sys, &["stats"]).await?;
    assert_eq!(stats["sagas"]["confirmed"], 2);
    assert_eq!(stats["sagas"]["cancelled"], 1);
    assert_eq!(stats["sagas"]["pending"], 0);
    let consumers = stats["consumers"].as_array().context("consumers")?;
    assert_eq!(consumers.len(), 11, "every durable consumer: {consumers:?}");
    assert!(consumers
        .iter()
        .all(|c| c["pending"] == 0 && c["ack_pending"] == 0));
    let services = stats["services"].as_array().context("services")?;
    assert!(services
        .iter()
        .all(|s| s["outbox_backlog"] == 0 && s["dead_letters_open"] == 0));
    // What each database holds on disk, and how much of it the trim keeps in bounds.
    for s in services {
        let (database, kit) = (&s["database_bytes"], &s["outbox_inbox_bytes"]);
        assert!(
            kit.as_i64().is_some_and(|k| k > 0) && database.as_i64() > kit.as_i64(),
            "{s}"
        );
    }
    let (code, text) = jetsaga(&sys, &["stats"]).await?;
    assert_eq!(code, 0);
    assert!(text.contains("DATABASE  OUTBOX+INBOX"), "{text}");
    assert!(
        text.contains("sagas: 2 confirmed, 1 cancelled (payment_failed 1), 0 pending"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn stats_looks_again_before_it_says_nobody_pulls_a_durable() -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    if sys.is_external() {
        println!("not run against an external deployment: it would leave a durable behind there");
        return Ok(());
    }
    // Given a durable with no pull waiting at the first look
    leave_the_durable_an_upgrade_abandons(&sys).await?;
    let js = inject::jetstream(sys.nats_url()).await?;
    let durable = js
        .get_stream("VOUCHERS")
        .await?
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(ABANDONED_DURABLE)
        .await
        .map_err(|e| anyhow::anyhow!("getting {ABANDONED_DURABLE}: {e}"))?;
    // and a reader whose next pull request arrives a second later, as an instance's does when a
    // look falls between two of its requests
    let reader = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        durable
            .batch()
            .max_messages(1)
            .expires(Duration::from_secs(30))
            .messages()
            .await
    });

    // Then stats looks again and does not call it read by nobody.
    // (The reader's request waits at the server only while its subscription lives: the batch is
    // kept until the looks are done.)
    let (lags, _) = jetsaga_cli::stats::consumer_lags(&js).await?;
    let _request = reader.await??;
    let looked = lags
        .iter()
        .find(|c| c.consumer == ABANDONED_DURABLE)
        .context("the durable is listed")?;
    assert!(!looked.nobody_pulls, "{looked:?}");
    assert_eq!(looked.pulls_waiting, 1, "{looked:?}");
    Ok(())
}

#[tokio::test]
async fn stats_tells_a_durable_nobody_pulls_from_one_that_keeps_up() -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    if sys.is_external() {
        println!("not run against an external deployment: it would leave a durable behind there");
        return Ok(());
    }
    // Given the durable an upgrade leaves behind
    leave_the_durable_an_upgrade_abandons(&sys).await?;
    // and a saga that puts a voucher event on its stream
    let mut ledger = Ledger::default();
    let sku = new_sku("MUG");
    ledger.sku(&sys.api, &sku, 1_000, 10).await?;
    let rich = ledger.customer(&sys.api, 10_000).await?;
    ledger.order(&sys.api, &rich, &[(&sku, 1)], None).await?;
    assert_invariants(&sys.api, &ledger, SETTLE).await?;

    // Then stats says nobody pulls it, and says it of no durable a running service reads. (A
    // running instance's pull is renewed every 2 s; a look in the instant between two is looked
    // at again.)
    let last = std::sync::Mutex::new(Value::Null);
    wait_until(
        "stats to flag the abandoned durable alone",
        SETTLE,
        || async {
            let Ok(stats) = json(&sys, &["stats"]).await else {
                return false;
            };
            let flagged: Vec<String> = stats["consumers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["nobody_pulls"] == true)
                .map(|c| c["consumer"].as_str().unwrap_or_default().to_owned())
                .collect();
            *last.lock().unwrap() = stats;
            flagged == [ABANDONED_DURABLE]
        },
    )
    .await
    .with_context(|| format!("last stats: {}", last.lock().unwrap()))?;
    let stats = last.into_inner().unwrap();
    let abandoned = stats["consumers"]
        .as_array()
        .context("consumers")?
        .iter()
        .find(|c| c["consumer"] == ABANDONED_DURABLE)
        .context("the abandoned durable is listed")?;
    assert_eq!(abandoned["pulls_waiting"], 0);
    assert_eq!(abandoned["last_delivery_secs_ago"], Value::Null);
    assert!(abandoned["pending"].as_u64() >= Some(1), "{abandoned}");
    let (code, text) = jetsaga(&sys, &["stats"]).await?;
    assert_eq!(code, 0);
    assert!(
        text.contains("! nobody pulls payment-on-vouchers on VOUCHERS"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn requeued_poison_comes_back_as_one_new_dead_letter_and_each_action_is_audited(
) -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    // A poison message on the ORDERS stream reaches the four services that read orders.cancelled:
    // each dead-letters it once.
    poison_four_consumers(&sys).await?;
    let all = json(&sys, &["dlq", "list"]).await?;
    let refs: Vec<&str> = all
        .as_array()
        .context("list")?
        .iter()
        .filter_map(|d| d["ref"].as_str())
        .collect();
    assert_eq!(refs, ["voucher:1", "points:1", "payment:1", "stock:1"]);
    let listed = &json(&sys, &["dlq", "list", "--service", "payment"]).await?[0];
    assert_eq!(listed["kind"], "undecodable");
    let reference = listed["ref"].as_str().context("ref")?.to_owned();

    let (code, table) = jetsaga(&sys, &["dlq", "list"]).await?;
    assert_eq!(code, 0);
    assert!(table.contains("payment:1  open    undecodable"), "{table}");
    let (code, text) = jetsaga(&sys, &["dlq", "show", &reference]).await?;
    assert_eq!(code, 0);
    assert!(text.contains("payload\n    {not json"), "{text}");
    let shown = json(&sys, &["dlq", "show", &reference]).await?;
    assert_eq!(shown["payload"], "{not json");
    assert_eq!(shown["audit"].as_array().map(Vec::len), Some(0));

    // Requeue: published again under a new Msg-Id, audited with who did it
    let (code, requeued) = Jetsaga::new(&sys)?
        .signed_by("alice")
        .json(&["dlq", "requeue", &reference])
        .await?;
    assert_eq!(code, 0);
    assert_eq!(requeued[0]["ok"], true);
    let new_msg_id = requeued[0]["new_msg_id"].as_str().context("new msg id")?;
    assert!(new_msg_id.starts_with("requeue-"));
    let (code, text) = jetsaga(&sys, &["dlq", "show", &reference]).await?;
    assert_eq!(code, 0);
    assert!(text.contains("requeued by alice as requeue-"), "{text}");
    let shown = json(&sys, &["dlq", "show", &reference]).await?;
    assert_eq!(shown["status"], "requeued");
    assert_eq!(shown["audit"][0]["actor"], "alice");
    assert_eq!(shown["audit"][0]["new_msg_id"], new_msg_id);

    // It fails again: one new dead letter, and no loop
    wait_until("the requeued poison to come back", SETTLE, || async {
        json(&sys, &["dlq", "list", "--service", "payment"])
            .await
            .map(|v| v.as_array().is_some_and(|a| a.len() == 1))
            .unwrap_or(false)
    })
    .await?;
    wait_quiet(&sys.api, SETTLE).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let every = json(
        &sys,
        &["dlq", "list", "--service", "payment", "--status", "all"],
    )
    .await?;
    assert_eq!(every.as_array().map(Vec::len), Some(2), "{every}");
    let back = json(&sys, &["dlq", "list", "--service", "payment"]).await?;
    let back_ref = back[0]["ref"].as_str().context("ref")?.to_owned();
    assert_ne!(back_ref, reference);

    // Discard: marked, audited, and not published
    let discarded = json(&sys, &["dlq", "discard", &back_ref]).await?;
    assert_eq!(discarded[0]["ok"], true);
    let shown = json(&sys, &["dlq", "show", &back_ref]).await?;
    assert_eq!(shown["status"], "discarded");
    assert_eq!(shown["audit"][0]["actor"], "ops-test");
    let open = json(&sys, &["dlq", "list", "--service", "payment"]).await?;
    assert_eq!(open.as_array().map(Vec::len), Some(0));

    // A second requeue of the same dead letter is refused with the reason, exit 1
    let (code, out) = jetsaga(&sys, &["dlq", "requeue", &reference]).await?;
    assert_eq!(code, 1);
    assert!(out.contains("is requeued, not open"), "{out}");
    let (code, _) = jetsaga(&sys, &["dlq", "show", "bank:1"]).await?;
    assert_eq!(code, 2, "bad reference is refused");
    Ok(())
}

#[tokio::test]
async fn a_dead_letter_action_without_an_operators_token_is_refused_and_changes_nothing(
) -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    poison_four_consumers(&sys).await?;

    // No token, a token that is no operator's, --by instead of a token, no operators at all
    let refusals = [
        (
            Jetsaga::new(&sys)?.with_env("JETSAGA_ADMIN_TOKEN", ""),
            vec!["dlq", "requeue", "payment:1"],
            "needs your operator token",
        ),
        (
            Jetsaga::new(&sys)?.with_env("JETSAGA_ADMIN_TOKEN", "not-an-operators-token-at-all"),
            vec!["dlq", "discard", "payment:1"],
            "not one of the deployment's ADMIN_TOKENS",
        ),
        (
            Jetsaga::new(&sys)?,
            vec!["dlq", "requeue", "payment:1", "--by", "mallory"],
            "--by names the operator only with --insecure-admin",
        ),
        (
            Jetsaga::new(&sys)?.with_env("ADMIN_TOKENS", ""),
            vec!["dlq", "requeue", "payment:1"],
            "pass --insecure-admin",
        ),
    ];
    for (jetsaga, args, reason) in refusals {
        let run = jetsaga.run(&args).await?;
        assert_eq!(run.code, 2, "{args:?} was not refused");
        assert!(run.stderr.contains(reason), "{args:?}: {}", run.stderr);
    }

    // Then the dead letter is untouched: open, with no audit row
    let shown = json(&sys, &["dlq", "show", "payment:1"]).await?;
    assert_eq!(shown["status"], "open");
    assert_eq!(shown["audit"].as_array().map(Vec::len), Some(0));

    // On a machine without operators, --insecure-admin records --by unchecked
    let run = Jetsaga::new(&sys)?
        .with_env("ADMIN_TOKENS", "")
        .run(&[
            "dlq",
            "discard",
            "payment:1",
            "--insecure-admin",
            "--by",
            "carol",
        ])
        .await?;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let shown = json(&sys, &["dlq", "show", "payment:1"]).await?;
    assert_eq!(shown["audit"][0]["actor"], "carol");
    Ok(())
}

#[tokio::test]
async fn big_binary_poison_is_dead_lettered_and_an_unpublishable_event_is_parked_not_blocking(
) -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    let js = inject::jetstream(sys.nats_url()).await?;
    // 300 KB of binary junk on a subject the voucher service reads, three times.
    for _ in 0..3 {
        let junk: Vec<u8> = (0..300 * 1024u32).map(|i| (i * 7919 % 256) as u8).collect();
        inject::publish_junk(
            &js,
            &format!("orders.created.{}", uuid::Uuid::new_v4()),
            junk,
        )
        .await?;
    }
    // And an event of the voucher service that no server accepts (2 MB), as a bug could write.
    let voucher_db = sys.db(jetsaga_scenarios::Svc::Voucher).await?;
    sqlx::query(
        "INSERT INTO kit_outbox (event_id, subject, order_key, ce_type, headers, payload)
         VALUES ($1, $2, $3, 'jetsaga.vouchers.reserved.v1', '{}', $4)",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(format!("vouchers.reserved.{}", uuid::Uuid::new_v4()))
    .bind("too-big")
    .bind(vec![b'x'; 2 * 1024 * 1024])
    .execute(&voucher_db)
    .await?;
    let mut ledger = Ledger::default();
    let sku = new_sku("MUG");
    ledger.sku(&sys.api, &sku, 1_250, 10).await?;
    let alice = ledger.customer(&sys.api, 10_000).await?;
    for _ in 0..5 {
        ledger.order(&sys.api, &alice, &[(&sku, 1)], None).await?;
    }
    assert_invariants(&sys.api, &ledger, SETTLE).await?;
    wait_until(
        "three dead letters, each copied to the DLQ stream",
        SETTLE,
        || async {
            json(&sys, &["dlq", "list", "--service", "voucher"])
                .await
                .map(|v| v.as_array().map(Vec::len) == Some(3))
                .unwrap_or(false)
                && js
                    .get_stream("DLQ")
                    .await
                    .map(|s| s.cached_info().state.messages == 3)
                    .unwrap_or(false)
        },
    )
    .await?;
    let (code, parked) = Jetsaga::new(&sys)?.json(&["dlq", "parked"]).await?;
    assert_eq!(code, 1, "a parked row is left for a person");
    let parked = parked.as_array().context("parked rows")?;
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0]["service"], "voucher");
    let stats = json(&sys, &["stats"]).await?;
    let voucher = stats["services"]
        .as_array()
        .context("services")?
        .iter()
        .find(|s| s["service"] == "voucher")
        .context("voucher")?;
    assert_eq!(voucher["outbox_parked"], 1);
    assert_eq!(voucher["outbox_backlog"], 0, "a row is stuck in the outbox");
    Ok(())
}
