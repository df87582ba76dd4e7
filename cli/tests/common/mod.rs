//! The `jetsaga` binary pointed at a test system's NATS and databases.

// Each test file uses a part of it.
#![allow(dead_code)]

use anyhow::Context as _;
use jetsaga_scenarios::{Svc, System};
use serde_json::Value;

/// One run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_str(&self.stdout).with_context(|| {
            format!(
                "jetsaga printed no JSON (exit {}):\n{}\n{}",
                self.code, self.stdout, self.stderr
            )
        })
    }
}

/// `jetsaga` with the connection flags of one system; the actor of audited actions is `ops-test`.
#[derive(Debug)]
pub struct Jetsaga {
    targets: Vec<String>,
}

impl Jetsaga {
    pub fn new(sys: &System) -> anyhow::Result<Self> {
        let mut targets = vec!["--nats-url".to_owned(), sys.nats_url().to_owned()];
        for (flag, svc) in [
            ("--order-db", Svc::Order),
            ("--payment-db", Svc::Payment),
            ("--stock-db", Svc::Stock),
            ("--voucher-db", Svc::Voucher),
            ("--points-db", Svc::Points),
        ] {
            targets.push(flag.to_owned());
            targets.push(sys.database_url(svc)?);
        }
        Ok(Jetsaga { targets })
    }

    /// Runs `jetsaga <args>` and logs what it printed (shown when a test fails).
    pub async fn run(&self, args: &[&str]) -> anyhow::Result<Run> {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_jetsaga"))
            .args(args)
            .args(&self.targets)
            .env("USER", "ops-test")
            .output()
            .await
            .context("running jetsaga")?;
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!(
            "jetsaga {}: exit {}\n{}{}",
            args.join(" "),
            run.code,
            run.stdout,
            run.stderr
        );
        Ok(run)
    }

    /// Runs it with `--json`; returns the exit code and the document.
    pub async fn json(&self, args: &[&str]) -> anyhow::Result<(i32, Value)> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let run = self.run(&all).await?;
        Ok((run.code, run.json()?))
    }
}
