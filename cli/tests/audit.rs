//! `jetsaga audit` against the real system: every admin change, with the operator whose token made
//! it, and every operator decision on a dead letter, read back from the streams.

mod common;

use anyhow::Context as _;
use common::{poison_four_consumers, Jetsaga};
use jetsaga_scenarios::ledger::new_sku;
use jetsaga_scenarios::system::OPERATOR;
use jetsaga_scenarios::{Ledger, System, SystemOptions};
use serde_json::Value;

async fn json(sys: &System, args: &[&str]) -> anyhow::Result<Value> {
    let (code, value) = Jetsaga::new(sys)?.json(args).await?;
    anyhow::ensure!(code == 0, "jetsaga {} exited {code}", args.join(" "));
    Ok(value)
}

fn entries(audit: &Value) -> anyhow::Result<Vec<(String, String, String)>> {
    Ok(audit["entries"]
        .as_array()
        .context("entries")?
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_owned(),
                e["operator"].as_str().unwrap_or_default().to_owned(),
                e["about"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect())
}

#[tokio::test]
async fn audit_lists_each_admin_change_and_dead_letter_decision_with_its_operator(
) -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    let mut ledger = Ledger::default();

    // Given admin changes on the services, made with the scenarios' operator token
    let sku = new_sku("AUDIT");
    ledger.sku(&sys.api, &sku, 700, 5).await?;
    let alice = ledger.customer(&sys.api, 2_500).await?;
    ledger
        .voucher(&sys.api, &format!("AUD-{sku}"), &alice, 100, None)
        .await?;
    // and a poison message, dead-lettered by four services: alice requeues one, bob discards one
    poison_four_consumers(&sys).await?;
    for (operator, action, dead_letter) in [
        ("alice", "requeue", "payment:1"),
        ("bob", "discard", "stock:1"),
    ] {
        let (code, _) = Jetsaga::new(&sys)?
            .signed_by(operator)
            .json(&["dlq", action, dead_letter])
            .await?;
        assert_eq!(code, 0, "{operator} {action} {dead_letter}");
    }

    // When the audit of the last hour is read
    let all = entries(&json(&sys, &["audit", "--since", "1h"]).await?)?;

    // Then each change names its operator and what it was about, and each decision its operator
    for (kind, about) in [
        ("orders.product_priced", sku.as_str()),
        ("stock.adjusted", sku.as_str()),
        ("payments.credited", alice.as_str()),
    ] {
        assert!(
            all.contains(&(kind.to_owned(), OPERATOR.to_owned(), about.to_owned())),
            "{kind} about {about} by {OPERATOR} missing: {all:?}"
        );
    }
    assert!(
        all.iter()
            .any(|(k, o, _)| k == "vouchers.issued" && o == OPERATOR),
        "{all:?}"
    );
    let decisions: Vec<_> = all
        .iter()
        .filter(|(k, _, _)| k.starts_with("dlq."))
        .map(|(k, o, _)| (k.as_str(), o.as_str()))
        .collect();
    assert_eq!(
        decisions,
        [("dlq.requeued", "alice"), ("dlq.discarded", "bob")]
    );

    // Filters: one operator, one kind
    let alices = entries(&json(&sys, &["audit", "--operator", "alice"]).await?)?;
    assert_eq!(alices.len(), 1, "{alices:?}");
    assert_eq!(alices[0].0, "dlq.requeued");
    let credits = entries(&json(&sys, &["audit", "--kind", "payments.credited"]).await?)?;
    assert!(
        credits.iter().all(|(k, _, _)| k == "payments.credited") && !credits.is_empty(),
        "{credits:?}"
    );

    // A range before any of it is empty; the table names the operator
    let before = entries(&json(&sys, &["audit", "--since", "3h", "--until", "2h"]).await?)?;
    assert!(before.is_empty(), "{before:?}");
    let table = Jetsaga::new(&sys)?.run(&["audit"]).await?;
    assert_eq!(table.code, 0);
    assert!(
        table
            .stdout
            .contains(&format!("credited 25.00 by {OPERATOR}")),
        "{}",
        table.stdout
    );
    Ok(())
}

#[tokio::test]
async fn audit_refuses_an_unknown_kind_or_an_empty_range_and_names_what_is_accepted(
) -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    let jetsaga = Jetsaga::new(&sys)?;
    let unknown = jetsaga.run(&["audit", "--kind", "payments.stolen"]).await?;
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("unknown kind \"payments.stolen\"")
            && unknown.stderr.contains("payments.credited"),
        "{}",
        unknown.stderr
    );
    let backwards = jetsaga
        .run(&["audit", "--since", "1h", "--until", "2h"])
        .await?;
    assert_eq!(backwards.code, 2);
    assert!(
        backwards.stderr.contains("the range is empty"),
        "{}",
        backwards.stderr
    );
    let junk = jetsaga.run(&["audit", "--since", "yesterday"]).await?;
    assert_eq!(junk.code, 2);
    assert!(junk.stderr.contains("24h"), "{}", junk.stderr);
    Ok(())
}
