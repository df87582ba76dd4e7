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

/// The deployment's operators as the CLI tests give them (`ADMIN_TOKENS`).
pub const OPERATORS: [(&str, &str); 3] = [
    ("ops-test", "ops-test-token-for-the-cli-tests"),
    ("alice", "alice-token-for-the-cli-tests"),
    ("bob", "bob-token-for-the-cli-tests"),
];

/// The token of operator `name` in [`OPERATORS`].
pub fn token_of(name: &str) -> &'static str {
    OPERATORS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .expect("an operator of the CLI tests")
}

/// `jetsaga` with the connection flags of one system and the operators of [`OPERATORS`]; write
/// commands are signed by `ops-test` unless [`Jetsaga::signed_by`] or [`Jetsaga::with_env`]
/// says otherwise.
#[derive(Debug)]
pub struct Jetsaga {
    targets: Vec<String>,
    env: Vec<(String, String)>,
}

/// `--order-db URL --payment-db URL ...`: the five databases of a test system, as flags.
fn database_flags(sys: &System) -> anyhow::Result<Vec<String>> {
    let mut flags = Vec::new();
    for (flag, svc) in [
        ("--order-db", Svc::Order),
        ("--payment-db", Svc::Payment),
        ("--stock-db", Svc::Stock),
        ("--voucher-db", Svc::Voucher),
        ("--points-db", Svc::Points),
    ] {
        flags.push(flag.to_owned());
        flags.push(sys.database_url(svc)?);
    }
    Ok(flags)
}

impl Jetsaga {
    pub fn new(sys: &System) -> anyhow::Result<Self> {
        let mut targets = vec!["--nats-url".to_owned(), sys.nats_url().to_owned()];
        targets.extend(database_flags(sys)?);
        let operators: Vec<String> = OPERATORS.iter().map(|(n, t)| format!("{n}={t}")).collect();
        Ok(Jetsaga {
            targets,
            env: vec![
                ("ADMIN_TOKENS".to_owned(), operators.join(",")),
                (
                    "JETSAGA_ADMIN_TOKEN".to_owned(),
                    token_of("ops-test").to_owned(),
                ),
            ],
        })
    }

    /// Write commands signed with the token of operator `name` (one of [`OPERATORS`]).
    pub fn signed_by(self, name: &str) -> Self {
        self.with_env("JETSAGA_ADMIN_TOKEN", token_of(name))
    }

    /// One more environment variable for the runs (the last value of a name wins).
    pub fn with_env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Runs `jetsaga <args>` and logs what it printed (shown when a test fails).
    pub async fn run(&self, args: &[&str]) -> anyhow::Result<Run> {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_jetsaga"))
            .args(args)
            .args(&self.targets)
            .env("USER", "ops-test")
            .env_remove("INSECURE_ADMIN")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
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

/// The durable an upgrade leaves behind: before points, payment read VoucherReserved as
/// `payment-on-vouchers`. Nobody pulls it now; its pending only grows.
pub const ABANDONED_DURABLE: &str = "payment-on-vouchers";

/// Creates [`ABANDONED_DURABLE`] on VOUCHERS, as the release before points did.
pub async fn leave_the_durable_an_upgrade_abandons(sys: &System) -> anyhow::Result<()> {
    let js = jetsaga_scenarios::inject::jetstream(sys.nats_url()).await?;
    js.get_stream("VOUCHERS")
        .await?
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some(ABANDONED_DURABLE.into()),
            filter_subject: "vouchers.>".into(),
            ..Default::default()
        })
        .await?;
    Ok(())
}

/// The services that read OrderCancelled and so dead-letter a poisoned one.
pub const POISONED_SERVICES: [&str; 4] = ["voucher", "points", "payment", "stock"];

/// Publishes one undecodable OrderCancelled on a fresh system and waits until the four services
/// that read it (voucher, points, payment, stock) have each dead-lettered it: `voucher:1`,
/// `points:1`, `payment:1`, `stock:1`. On a timeout the error says what the last listing held (or
/// why it failed), so a slow run is told apart from a service that never dead-lettered.
pub async fn poison_four_consumers(sys: &System) -> anyhow::Result<()> {
    let js = jetsaga_scenarios::inject::jetstream(sys.nats_url()).await?;
    jetsaga_scenarios::inject::publish_junk(
        &js,
        &format!("orders.cancelled.{}", uuid::Uuid::new_v4()),
        b"{not json".to_vec(),
    )
    .await?;
    let jetsaga = Jetsaga::new(sys)?;
    let last = std::sync::Mutex::new(String::from("no listing finished"));
    jetsaga_testkit::wait_until(
        "the poison to be dead-lettered by four services",
        std::time::Duration::from_secs(120),
        || async {
            let listed = match jetsaga.json(&["dlq", "list"]).await {
                Ok((0, v)) => v,
                Ok((code, v)) => {
                    *last.lock().unwrap() = format!("dlq list exited {code}: {v}");
                    return false;
                }
                Err(e) => {
                    *last.lock().unwrap() = format!("dlq list failed: {e:#}");
                    return false;
                }
            };
            let services: Vec<&str> = listed
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|dl| dl["service"].as_str())
                .collect();
            *last.lock().unwrap() = format!("dead letters from {services:?}");
            POISONED_SERVICES.iter().all(|s| services.contains(s)) && services.len() == 4
        },
    )
    .await
    .with_context(|| format!("last seen: {}", last.lock().unwrap()))
}

/// A viewer of the console tests (`VIEWER_TOKENS`): may look, may not act.
pub const VIEWERS: [(&str, &str); 1] = [("victor", "victor-token-for-the-console-tests")];

/// `name=token,...` of a list of operators or viewers.
pub fn tokens_setting(list: &[(&str, &str)]) -> String {
    list.iter()
        .map(|(n, t)| format!("{n}={t}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A running `jetsaga console` (the built binary) against a test [`System`], on a free port of
/// 127.0.0.1. It is killed when dropped.
#[derive(Debug)]
pub struct ConsoleProcess {
    child: tokio::process::Child,
    base: String,
    log: std::path::PathBuf,
}

/// Why one attempt to start the console gave no console.
#[derive(Debug)]
pub enum Started {
    /// It exited because its port was in use (its log).
    LostPort(String),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Started {
    fn from(e: anyhow::Error) -> Self {
        Started::Failed(e)
    }
}

impl From<std::io::Error> for Started {
    fn from(e: std::io::Error) -> Self {
        Started::Failed(e.into())
    }
}

impl ConsoleProcess {
    /// The console with the CLI tests' operators ([`OPERATORS`], e.g. `alice`) and viewers
    /// ([`VIEWERS`], `victor`). The sagas of a test are over before the console looks (or a fault
    /// is planted), so its reconciler judges them at once (`CONSOLE_SETTLE_SECS=0`, as
    /// tests/reconcile.rs passes `--settle-secs 0`).
    pub async fn start(sys: &System) -> anyhow::Result<ConsoleProcess> {
        Self::start_with(
            sys,
            &[
                ("ADMIN_TOKENS", &tokens_setting(&OPERATORS)),
                ("VIEWER_TOKENS", &tokens_setting(&VIEWERS)),
                ("CONSOLE_SETTLE_SECS", "0"),
            ],
        )
        .await
    }

    /// The console with exactly these environment variables set (e.g. `ADMIN_TOKENS`,
    /// `VIEWER_TOKENS`, `INSECURE_ADMIN`; none of them is inherited from the test's environment).
    /// Waits until it answers; fails with its log when it exits or does not answer in 60 s.
    /// A port picked free can be taken by another test's process before the console binds it;
    /// the console then exits, and starts again on another port.
    pub async fn start_with(sys: &System, env: &[(&str, &str)]) -> anyhow::Result<ConsoleProcess> {
        let mut attempt = 1;
        loop {
            let port = jetsaga_testkit::free_port()?;
            match Self::start_on(sys, env, port).await {
                Err(Started::LostPort(log)) if attempt < 3 => {
                    eprintln!("jetsaga console: port {port} was taken; trying another\n{log}");
                    attempt += 1;
                }
                Err(Started::LostPort(log)) => {
                    anyhow::bail!("jetsaga console found no free port:\n{log}")
                }
                Err(Started::Failed(e)) => return Err(e),
                Ok(console) => return Ok(console),
            }
        }
    }

    /// One attempt on `port`.
    pub async fn start_on(
        sys: &System,
        env: &[(&str, &str)],
        port: u16,
    ) -> Result<ConsoleProcess, Started> {
        let base = format!("http://127.0.0.1:{port}");
        let mut args = vec![
            "--nats-url".to_owned(),
            sys.nats_url().to_owned(),
            "console".to_owned(),
            "--listen".to_owned(),
            format!("127.0.0.1:{port}"),
        ];
        args.extend(database_flags(sys)?);
        for svc in [
            Svc::Order,
            Svc::Payment,
            Svc::Stock,
            Svc::Voucher,
            Svc::Points,
        ] {
            for url in sys.bases(svc) {
                args.push("--service-url".to_owned());
                args.push(format!("{}={url}", svc.name()));
            }
        }
        let log = std::env::temp_dir().join(format!("jetsaga-console-{port}.log"));
        let file = std::fs::File::create(&log)
            .with_context(|| format!("creating the console log {}", log.display()))?;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_jetsaga"))
            .args(&args)
            .env_remove("ADMIN_TOKENS")
            .env_remove("VIEWER_TOKENS")
            .env_remove("INSECURE_ADMIN")
            .env_remove("CONSOLE_LISTEN")
            .env_remove("CONSOLE_SERVICE_URLS")
            .envs(env.iter().copied())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .context("starting jetsaga console")?;
        let client = reqwest::Client::new();
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(if jetsaga_scenarios::listening::says_port_in_use(&text) {
                    Started::LostPort(text)
                } else {
                    Started::Failed(anyhow::anyhow!(
                        "jetsaga console exited with {status}:\n{text}"
                    ))
                });
            }
            // Only an answer of this console's own process counts: another process may hold
            // the port.
            let ours = child
                .id()
                .is_some_and(|pid| jetsaga_scenarios::listening::listens_on(pid, port));
            let answered = ours
                && client
                    .get(format!("{base}/api/session"))
                    .timeout(std::time::Duration::from_secs(2))
                    .send()
                    .await
                    .is_ok();
            if answered {
                return Ok(ConsoleProcess { child, base, log });
            }
            if started.elapsed() > std::time::Duration::from_secs(60) {
                return Err(Started::Failed(anyhow::anyhow!(
                    "jetsaga console did not answer at {base} in 60 s:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// What the console printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ConsoleProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_file(&self.log);
    }
}
