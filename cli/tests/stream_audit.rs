//! `jetsaga reconcile --streams` against a real nats-server and one service database: what it
//! prints, and exit codes an operator can alert on, also when the lost events were republished.

use anyhow::Context as _;
use jetsaga_contracts::events::payment::AccountCredited;
use jetsaga_contracts::{Actor, CustomerId, EventId, Money, PaymentEvent};
use jetsaga_testkit::{NatsServer, TestDb};
use saga_kit::provision::{self, StreamSettings};
use saga_kit::{Metrics, Relay, RelayConfig, RelayOutcome};
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

/// A payment database whose outbox published `n` credits to a real PAYMENTS stream.
struct Setup {
    nats: NatsServer,
    db: TestDb,
    js: async_nats::jetstream::Context,
    /// (event id, stream sequence) in outbox order.
    published: Vec<(Uuid, i64)>,
}

impl Setup {
    async fn start(n: usize) -> anyhow::Result<Setup> {
        jetsaga_testkit::init_tracing();
        let nats = NatsServer::start().await?;
        let db = TestDb::create("cli_stream_audit").await?;
        saga_kit::migrate::migrate(db.pool(), None).await?;
        let js = async_nats::jetstream::new(provision::connect(&nats.url(), "test").await?);
        provision::ensure_streams(
            &js,
            &jetsaga_contracts::Producer::ALL,
            &StreamSettings::default(),
        )
        .await?;
        for _ in 0..n {
            let mut tx = db.pool().begin().await?;
            let credit = PaymentEvent::AccountCredited(AccountCredited {
                credit_id: Uuid::new_v4(),
                customer_id: CustomerId::new_random(),
                amount: Money::from_cents(500)?,
                actor: Actor::anonymous(),
            });
            saga_kit::outbox::emit_root(&mut tx, EventId::new_random(), &credit).await?;
            tx.commit().await?;
        }
        let relay = Relay::new(
            db.pool().clone(),
            js.clone(),
            RelayConfig::default(),
            Arc::new(Metrics::new()),
        );
        while relay.relay_batch().await? != RelayOutcome::Empty {}
        let published = sqlx::query_as(
            "SELECT event_id, stream_seq FROM kit_outbox WHERE published_at IS NOT NULL ORDER BY id",
        )
        .fetch_all(db.pool())
        .await?;
        Ok(Setup {
            nats,
            db,
            js,
            published,
        })
    }

    /// The stream loses these events after acknowledging them, and the server restarts.
    async fn lose(&mut self, which: &[usize]) -> anyhow::Result<Vec<Uuid>> {
        let stream = self.js.get_stream("PAYMENTS").await?;
        for &i in which {
            stream
                .delete_message(u64::try_from(self.published[i].1)?)
                .await?;
        }
        self.nats.restart().await?;
        Ok(which.iter().map(|&i| self.published[i].0).collect())
    }

    /// `jetsaga reconcile --streams --service payment <args>` on this server and database.
    async fn audit(&self, args: &[&str]) -> anyhow::Result<(i32, String)> {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_jetsaga"))
            .args(["reconcile", "--streams", "--service", "payment"])
            .args(args)
            .args([
                "--nats-url",
                &self.nats.url(),
                "--payment-db",
                &self.db.url(),
            ])
            .output()
            .await
            .context("running jetsaga")?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        eprintln!(
            "jetsaga reconcile --streams {}: exit {:?}\n{stdout}{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.code().unwrap_or(-1), stdout))
    }

    async fn audit_json(&self, args: &[&str]) -> anyhow::Result<(i32, Value)> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (code, stdout) = self.audit(&all).await?;
        Ok((code, serde_json::from_str(&stdout).context("no JSON")?))
    }
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn an_operator_can_alert_on_events_the_streams_lost_even_once_they_are_republished(
) -> anyhow::Result<()> {
    // Given five credits the PAYMENTS stream acknowledged, two of which it then lost
    let mut setup = Setup::start(5).await?;
    let lost: Vec<String> = setup
        .lose(&[1, 3])
        .await?
        .iter()
        .map(Uuid::to_string)
        .collect();

    // When the audit runs dry, it exits 1 and names them, and publishes nothing
    let (code, dry) = setup.audit_json(&["--dry-run"]).await?;
    assert_eq!(code, 1);
    assert_eq!(dry["outcome"], "missing");
    assert_eq!(
        (&dry["checked"], &dry["missing"], &dry["unresolved"]),
        (&Value::from(5), &Value::from(2), &Value::from(2))
    );
    let payments = &dry["streams"][0];
    assert_eq!(
        (&payments["service"], &payments["stream"]),
        (&Value::from("payment"), &Value::from("PAYMENTS"))
    );
    assert_eq!(ids(&payments["missing_ids"]), lost);
    assert_eq!(dry["streams"][1]["stream"], "DLQ");
    assert_eq!(dry["streams"][1]["subjects"], "dlq.payment.>");

    // When it runs for real, it republishes them, says so, and exits 3: nothing is left to do,
    // but NATS lost writes it had acknowledged
    let (code, table) = setup.audit(&[]).await?;
    assert_eq!(code, 3);
    for id in &lost {
        assert!(table.contains(&format!("{id}  republished")), "{table}");
    }
    assert!(table.contains("2 events were missing"), "{table}");

    // Then the next run finds every event in its stream and exits 0
    let (code, clean) = setup.audit_json(&["--window", "1h"]).await?;
    assert_eq!(code, 0);
    assert_eq!(clean["outcome"], "clean");
    assert_eq!(clean["window"], "1h");
    assert_eq!(
        (&clean["found"], &clean["missing"]),
        (&Value::from(5), &Value::from(0))
    );
    Ok(())
}
