//! `jetsaga bench --peers DIR`: the same saga and workload on the systems a user would pick
//! instead (`../shared/peers`: DBOS Transact and Restate), run right after jetsaga's own rounds in
//! the same invocation, so that "faster than X" is always measured in one window on one machine.
//!
//! The peers' folder is copied to a scratch directory first (the original may be read-only, and
//! it builds there), then its `run.sh` runs each peer with jetsaga's load: the same number of
//! sagas, clients and seed. DBOS runs in the durability that matches the bench's mode: PostgreSQL's
//! default synchronous commit against `--durable`, `--async-commit` against the default mode.
//! Restate has one mode, its log fsynced before it acknowledges. Each peer's driver prints a JSON
//! summary as its last line, with the same checks as jetsaga's (nothing lost, money and stock
//! conserved, no double charge); a peer whose checks failed is shown and does not count.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// One peer's figures, as its driver summarises them (the fields this table needs).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PeerRun {
    /// `dbos` or `restate`.
    pub peer: String,
    /// How it was run: `synchronous_commit=on`, `--async-commit`, `log fsync before ack`.
    #[serde(default)]
    pub durability: String,
    pub sagas_per_sec: f64,
    pub p99_ms: f64,
    #[serde(default)]
    pub lost: usize,
    #[serde(default)]
    pub violations: usize,
    #[serde(default)]
    pub per_saga: BTreeMap<String, f64>,
    /// Each process's CPU over the measured phase, as a share of one core.
    #[serde(default)]
    pub cpu_share_of_one_core: BTreeMap<String, f64>,
    /// Why the peer did not run, when it did not: it has no figures.
    #[serde(skip)]
    pub not_run: Option<String>,
}

impl PeerRun {
    /// It ran, lost nothing and violated no invariant: its figures count.
    pub fn passed(&self) -> bool {
        self.not_run.is_none() && self.lost == 0 && self.violations == 0
    }

    fn not_run(peer: &str, why: String) -> Self {
        PeerRun {
            peer: peer.to_owned(),
            durability: String::new(),
            sagas_per_sec: 0.0,
            p99_ms: 0.0,
            lost: 0,
            violations: 0,
            per_saga: BTreeMap::new(),
            cpu_share_of_one_core: BTreeMap::new(),
            not_run: Some(why),
        }
    }
}

/// What to run the peers with: jetsaga's load and mode.
#[derive(Debug, Clone)]
pub struct PeerLoad {
    pub sagas: usize,
    pub concurrency: usize,
    pub seed: u64,
    pub durable: bool,
}

/// Copies `source` to `scratch` (once: a copy that is there is reused, with what it built), then
/// runs DBOS and Restate one after the other. A peer that fails to run is in the result, with why,
/// and does not stop the other.
pub async fn run(source: &Path, scratch: &Path, load: &PeerLoad) -> anyhow::Result<Vec<PeerRun>> {
    anyhow::ensure!(
        source.join("run.sh").is_file(),
        "{} has no run.sh: --peers takes the peers' folder (../shared/peers)",
        source.display()
    );
    let dir = copy_once(source, scratch)?;
    let driver = [
        "--sagas".to_owned(),
        load.sagas.to_string(),
        "--warmup".to_owned(),
        "300".to_owned(),
        "--concurrency".to_owned(),
        load.concurrency.to_string(),
        "--seed".to_owned(),
        load.seed.to_string(),
    ];
    let (dbos_args, dbos_mode) = if load.durable {
        ("", "PostgreSQL synchronous_commit=on")
    } else {
        ("--async-commit", "PostgreSQL synchronous_commit=off")
    };
    let mut runs = Vec::new();
    for (peer, env, durability) in [
        ("dbos", vec![("PEER_DBOS_ARGS", dbos_args)], dbos_mode),
        ("restate", vec![], "log fsync before ack (its only mode)"),
    ] {
        eprintln!(
            "jetsaga bench: running the {peer} peer ({durability}) from {}",
            dir.display()
        );
        let mut r = match run_peer(&dir, peer, &env, &driver).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("jetsaga bench: the {peer} peer did not run: {e:#}");
                PeerRun::not_run(peer, format!("{e:#}"))
            }
        };
        r.durability = durability.to_owned();
        runs.push(r);
    }
    Ok(runs)
}

/// The copy's absolute path: `run.sh` runs inside it, where a relative path would no longer lead.
fn copy_once(source: &Path, scratch: &Path) -> anyhow::Result<PathBuf> {
    let dir = scratch.join("peers");
    if !dir.join("run.sh").is_file() {
        copy(source, scratch, &dir)?;
    }
    dir.canonicalize()
        .with_context(|| format!("finding {}", dir.display()))
}

fn copy(source: &Path, scratch: &Path, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(source)
        .arg(dir)
        .status()
        .context("running cp")?;
    anyhow::ensure!(
        status.success(),
        "copying {} to {} failed",
        source.display(),
        dir.display()
    );
    Ok(())
}

async fn run_peer(
    dir: &Path,
    peer: &str,
    env: &[(&str, &str)],
    driver: &[String],
) -> anyhow::Result<PeerRun> {
    let mut command = tokio::process::Command::new(dir.join("run.sh"));
    command
        .arg(peer)
        .args(driver)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command
        .output()
        .await
        .with_context(|| format!("starting {}/run.sh {peer}", dir.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = last_json_line(&stdout).with_context(|| {
        format!(
            "run.sh {peer} exited with {} and printed no JSON summary",
            out.status
        )
    })?;
    serde_json::from_str(summary).with_context(|| format!("reading {peer}'s summary {summary}"))
}

/// The last line that is a JSON object: the driver's summary.
fn last_json_line(text: &str) -> Option<&str> {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('{') && l.ends_with('}'))
}

/// One row of the side-by-side table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub system: String,
    pub durability: String,
    pub sagas_per_sec: f64,
    pub p99_ms: f64,
    pub passed: bool,
    /// Why the system did not run, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_run: Option<String>,
    pub per_saga: BTreeMap<String, f64>,
}

impl Row {
    /// The CHECKS column: `passed`, `FAILED`, or why the system did not run.
    fn checks(&self) -> String {
        match (&self.not_run, self.passed) {
            (Some(why), _) => format!("did not run: {why}"),
            (None, true) => "passed".to_owned(),
            (None, false) => "FAILED".to_owned(),
        }
    }
}

/// jetsaga's rows and the peers', then each peer against jetsaga: the ratio of sagas/s and the
/// work per saga that both report under the same name.
pub fn render(rows: &[Row]) -> String {
    let mut t = jetsaga_cli::output::Table::new([
        "SYSTEM",
        "DURABILITY",
        "SAGAS/S",
        "P99 MS",
        "JETSAGA ÷ IT",
        "CHECKS",
    ]);
    let jetsaga = rows.first().map(|r| r.sagas_per_sec).unwrap_or(0.0);
    for r in rows {
        let ratio = if r.sagas_per_sec > 0.0 {
            format!("{:.2}", jetsaga / r.sagas_per_sec)
        } else {
            "-".to_owned()
        };
        t.row([
            r.system.clone(),
            r.durability.clone(),
            format!("{:.1}", r.sagas_per_sec),
            format!("{:.1}", r.p99_ms),
            ratio,
            r.checks(),
        ]);
    }
    let mut text = String::from("\nSide by side, this run (same saga, load and seed)\n");
    text.push_str(&t.render());
    if rows.iter().any(|r| !r.per_saga.is_empty()) {
        let columns: Vec<(&str, &super::cost::Values)> = rows
            .iter()
            .map(|r| (r.system.as_str(), &r.per_saga))
            .collect();
        let costs = super::cost::table(&columns);
        text.push_str("\nWork per saga (names as each system reports them; - where it has none)\n");
        text.push_str(&costs.render());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_the_drivers_last_json_line() {
        let out = "== dbos ==\nsagas/s 224.8\n{\"peer\":\"dbos\",\"sagas_per_sec\":224.8,\"p99_ms\":235.3,\"lost\":0,\"violations\":0,\"per_saga\":{\"pg commits sys\":14.32},\"cpu_share_of_one_core\":{\"peer-dbos\":0.54}}\n";
        let run: PeerRun = serde_json::from_str(last_json_line(out).unwrap()).unwrap();
        assert_eq!(run.peer, "dbos");
        assert_eq!(run.per_saga["pg commits sys"], 14.32);
        assert_eq!(run.cpu_share_of_one_core["peer-dbos"], 0.54);
        assert!(run.passed());
        assert_eq!(last_json_line("no summary\n"), None);
    }

    #[test]
    fn each_system_is_compared_with_jetsaga_the_first_row() {
        let row = |system: &str, rate: f64| Row {
            system: system.into(),
            durability: "x".into(),
            sagas_per_sec: rate,
            p99_ms: 1.0,
            passed: true,
            not_run: None,
            per_saga: BTreeMap::from([("pg wal records (cluster)".to_owned(), rate)]),
        };
        let text = render(&[row("jetsaga", 300.0), row("dbos", 200.0)]);
        assert!(text.contains("1.50"), "{text}");
        assert!(text.contains("pg wal records (cluster)"), "{text}");
    }

    /// `--out` is relative by default (`.jetsaga/bench`), and `run.sh` runs inside the copy.
    #[tokio::test]
    async fn the_peers_run_from_a_relative_out_dir_and_one_that_fails_is_shown_as_not_run() {
        let source = std::env::temp_dir().join(format!("jetsaga-peers-{}", std::process::id()));
        std::fs::create_dir_all(&source).unwrap();
        let script = source.join("run.sh");
        std::fs::write(
            &script,
            "#!/bin/sh\nif [ \"$1\" = restate ]; then echo 'no server' >&2; exit 1; fi\n\
             echo \"== $1 $PEER_DBOS_ARGS ==\"\n\
             echo '{\"peer\":\"dbos\",\"sagas_per_sec\":250.5,\"p99_ms\":90.0,\"lost\":0,\"violations\":0}'\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let scratch = PathBuf::from(format!("../target/tmp/peers-test-{}", std::process::id()));
        let load = PeerLoad {
            sagas: 10,
            concurrency: 2,
            seed: 1,
            durable: false,
        };
        let runs = run(&source, &scratch, &load).await.unwrap();
        let _ = std::fs::remove_dir_all(&scratch);
        let _ = std::fs::remove_dir_all(&source);
        assert_eq!(runs.len(), 2, "{runs:?}");
        assert!(runs[0].passed(), "{runs:?}");
        assert_eq!(runs[0].sagas_per_sec, 250.5);
        assert_eq!(runs[0].durability, "PostgreSQL synchronous_commit=off");
        assert!(!runs[1].passed());
        assert!(
            runs[1]
                .not_run
                .as_deref()
                .unwrap_or("")
                .contains("no JSON summary"),
            "{runs:?}"
        );
    }
}
