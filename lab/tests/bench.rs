//! `jetsaga bench` end to end, small, run as users run it (`jetsaga` hands it to `jetsaga-lab`): it runs its own system, reports a ratio against the null
//! saga and the plot, what a saga cost each process, and checks that nothing was lost. (Its figures are never asserted here:
//! performance is measured by the command, not by tests.)

use anyhow::Context as _;

#[tokio::test]
async fn a_small_bench_run_passes_its_checks_and_reports_a_ratio_and_a_plot() -> anyhow::Result<()>
{
    let out = std::env::temp_dir().join(format!("jetsaga-bench-{}", uuid::Uuid::new_v4().simple()));
    // Through the operator binary, as users run it: `jetsaga bench` is handed to jetsaga-lab.
    let run = tokio::process::Command::new(jetsaga_scenarios::system::workspace_binary("jetsaga")?)
        .args([
            "bench",
            "--orders",
            "150",
            "--concurrency",
            "8",
            "--half-secs",
            "2",
            "--skus",
            "20",
            "--customers",
            "10",
            "--rounds",
            "1",
            "--pool-per-database",
            "4",
            "--out",
        ])
        .arg(&out)
        .output()
        .await
        .context("running jetsaga bench")?;
    let stdout = String::from_utf8_lossy(&run.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(run.status.code(), Some(0));
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().context("no output")?)?;
    assert_eq!(summary["passed"], true);
    assert_eq!(summary["orders_lost"], 0);
    assert_eq!(summary["invariant_violations"], 0);
    assert!(summary["ratio"].as_f64().is_some_and(|r| r > 0.0));
    // What a saga cost each process, beside what it cost the storage (its size is not asserted).
    for process in ["postgres (all)", "nats-server", "order-0"] {
        let row = format!("cpu ms {process}");
        assert!(summary["per_saga"][&row].is_f64(), "no {row}: {summary}");
    }
    assert!(summary["per_saga"]["cpu ms, every process of the system"].is_f64());
    assert!(
        summary["per_saga"]["cpu ms jetsaga bench"].is_null(),
        "the load driver is not the system"
    );
    let phases: Vec<&str> = summary["phases"]
        .as_array()
        .context("phases")?
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(phases, ["max 1", "null 1", "half"]);
    assert!(stdout.contains("ratio = sagas_per_sec / null_saga_per_sec"));
    let svg = std::fs::read_to_string(out.join("bench-default.svg"))?;
    assert!(svg.starts_with("<svg"));
    std::fs::remove_dir_all(&out)?;
    Ok(())
}
