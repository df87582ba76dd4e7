//! Chaos under load, short: `jetsaga chaos`, seeded, on its own system. Nothing lost, nothing
//! doubled, every invariant holds, the dead letters are exactly those the poison must leave, no
//! order is cancelled by its deadline unless a fault stalled it that long, and every service
//! rebuilt from the streams alone is the live service. (The long run is documented in the README
//! with its figures.)

use anyhow::Context as _;
use jetsaga_scenarios::system::workspace_binary;
use serde_json::Value;

/// Runs `jetsaga chaos <args> --json`, checks the figures that must be 0, returns the report.
async fn chaos(args: &[&str]) -> anyhow::Result<Value> {
    let out = tokio::process::Command::new(workspace_binary("jetsaga")?)
        .arg("chaos")
        .args(args)
        .arg("--json")
        .output()
        .await
        .context("running jetsaga chaos")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(stdout.lines().last().context("no output")?)?;
    assert_eq!(report["orders_lost"], 0, "{report}");
    assert_eq!(report["double_effects"], 0, "{report}");
    assert_eq!(report["invariant_violations"], 0, "{report}");
    assert_eq!(report["dead_letters_beyond_poison"], 0, "{report}");
    assert_eq!(report["poison_not_dead_lettered"], 0, "{report}");
    assert_eq!(report["timeouts_without_cause"], 0, "{report}");
    assert_eq!(
        report["dead_letters"], report["dead_letters_expected"],
        "{report}"
    );
    let rebuilt = report["rebuild_differences"]
        .as_object()
        .context("no rebuild_differences")?;
    assert_eq!(
        rebuilt.len(),
        5,
        "every service rebuilt from the streams: {report}"
    );
    assert!(
        rebuilt.values().all(|n| n == 0),
        "a rebuild from the streams differs from the live database: {report}"
    );
    assert_eq!(report["passed"], true, "{report}");
    assert_eq!(out.status.code(), Some(0));
    Ok(report)
}

#[tokio::test]
async fn a_short_seeded_chaos_run_with_every_fault_loses_nothing_and_doubles_nothing(
) -> anyhow::Result<()> {
    let kinds = [
        "kill_service",
        "pause_service",
        "kill_nats",
        "cut_nats_drop",
        "cut_nats_reject",
        "kill_pg_connections",
        "duplicate_events",
        "poison",
    ];
    let report = chaos(&[
        "--seed",
        "11",
        "--duration-secs",
        "45",
        "--faults",
        "12",
        "--rate",
        "10",
        "--kinds",
        &kinds.join(","),
    ])
    .await?;
    let faults = report["faults"].as_object().context("faults")?;
    for kind in kinds {
        assert!(
            faults.contains_key(kind),
            "{kind} was not injected: {report}"
        );
    }
    assert!(report["orders_completed"].as_u64().is_some_and(|n| n > 100));
    Ok(())
}

#[tokio::test]
async fn outages_restarts_big_poison_lost_consumers_held_rows_and_a_full_dlq_lose_nothing(
) -> anyhow::Result<()> {
    // The ordinary operations of issue 10, each once, with their holds scaled down to a quarter
    // (a database outage of 17 s, a row held 14 s) to keep the run short.
    let kinds = [
        "pg_outage",
        "rolling_restart",
        "big_poison",
        "delete_consumer",
        "lock_holder",
        "dlq_full",
    ];
    let report = chaos(&[
        "--seed",
        "10",
        "--duration-secs",
        "40",
        "--faults",
        "6",
        "--rate",
        "10",
        "--hold-scale",
        "0.25",
        "--kinds",
        &kinds.join(","),
    ])
    .await?;
    for kind in kinds {
        assert_eq!(
            report["faults"][kind], 1,
            "{kind} was not injected: {report}"
        );
    }
    // The big poison and the poison that needs the full DLQ.
    assert_eq!(report["poison_injected"], 2, "{report}");
    assert!(report["orders_completed"].as_u64().is_some_and(|n| n > 100));
    Ok(())
}

#[tokio::test]
async fn nats_nodes_killed_in_a_three_node_cluster_with_r3_streams_lose_nothing(
) -> anyhow::Result<()> {
    let report = chaos(&[
        "--cluster",
        "--seed",
        "5",
        "--duration-secs",
        "30",
        "--faults",
        "6",
        "--rate",
        "10",
        "--kinds",
        "kill_nats,kill_service,duplicate_events",
    ])
    .await?;
    assert_eq!(report["nats"], "3-node cluster, R3 streams");
    assert!(report["faults"]["kill_nats"]
        .as_u64()
        .is_some_and(|n| n >= 1));
    Ok(())
}
