//! `jetsaga chaos`: steady load while a seeded, random schedule of faults is injected, with
//! fault-free periods in between; then, once the faults stop, the system settles and the
//! invariants are checked through the reconciler, the streams and the public APIs.
//!
//! Faults ([`schedule::Kind`]): SIGKILL of a service instance (two instances of each by default)
//! and restart; SIGSTOP past the ack wait then SIGCONT; SIGKILL of nats-server and restart; the
//! network to NATS cut (dropped or refused); PostgreSQL connections terminated from the server
//! side mid-transaction; events published again, out of order; poison messages.
//!
//! The report: the seed, faults by kind, orders placed and completed, orders lost, double effects,
//! invariant violations (all three must be 0), time to settle after the last fault, and the dead
//! letters, which must be exactly the poison messages injected. The JSON summary is the last line;
//! the exit code is 1 when a figure that must be 0 is not.
//!
//! ## Layout
//! - [`schedule`]: the seeded plan. [`inject`]: carrying a fault out and undoing it.
//! - [`effects`]: double effects, counted from the streams.

pub mod effects;
pub mod inject;
pub mod schedule;

use crate::bench::catalogue::{Catalogue, Sizes};
use crate::bench::drive::{drive, HttpPlacer, Shape, Until};
use crate::bench::mix::Mix;
use crate::bench::watch::Watcher;
use crate::cli::Outcome;
use crate::output::Table;
use crate::progress;
use crate::reconcile::check;
use crate::targets::Targets;
use anyhow::Context as _;
use clap::Args;
use jetsaga_scenarios::checker::wait_quiet;
use jetsaga_scenarios::{Svc, System, SystemOptions};
use schedule::Kind;
use serde::Serialize;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// The seed of the fault schedule and of the load (default: from the clock; printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// How long the load and the faults run.
    #[arg(long, default_value_t = 60)]
    pub duration_secs: u64,
    /// Orders per second (open loop).
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Faults over the run.
    #[arg(long, default_value_t = 12)]
    pub faults: usize,
    /// The kinds of fault (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub kinds: Vec<Kind>,
    /// Processes per service.
    #[arg(long, default_value_t = 2)]
    pub instances: usize,
    /// How long NATS waits for an ack before redelivering (a pause outlasts it).
    #[arg(long, default_value_t = 3)]
    pub ack_wait_secs: u64,
    /// How long the system may take to settle after the last fault.
    #[arg(long, default_value_t = 120)]
    pub settle_secs: u64,
    /// JetStream with `sync_interval: always`.
    #[arg(long)]
    pub durable: bool,
    /// NATS as a 3-node cluster with R3 streams; `kill_nats` kills one node. (The link cuts are
    /// left out: they cut one server's port.)
    #[arg(long)]
    pub cluster: bool,
}

/// The report of one run.
#[derive(Debug, Serialize)]
pub struct ChaosReport {
    pub seed: u64,
    pub duration_secs: u64,
    pub instances: usize,
    pub nats: &'static str,
    pub faults: BTreeMap<String, usize>,
    pub orders_placed: usize,
    pub orders_completed: usize,
    /// Requests refused while a fault lasted (not orders: never accepted).
    pub requests_refused: usize,
    pub orders_lost: usize,
    pub double_effects: usize,
    pub invariant_violations: usize,
    pub settle_secs: f64,
    pub dead_letters: usize,
    pub poison_injected: usize,
    /// The first problems found, in words.
    pub problems: Vec<String>,
    pub passed: bool,
}

impl ChaosReport {
    pub fn render(&self) -> String {
        let mut t = Table::new(["FAULT", "INJECTED"]);
        for (kind, n) in &self.faults {
            t.row([kind.clone(), n.to_string()]);
        }
        let mut text = format!(
            "jetsaga chaos, seed {}, {} s, {} instance(s) per service, NATS {}\n",
            self.seed, self.duration_secs, self.instances, self.nats
        );
        text.push_str(&t.render());
        let mut f = Table::new(["FIGURE", "VALUE", "MUST BE"]);
        let rows: [(&str, String, &str); 9] = [
            ("orders placed", self.orders_placed.to_string(), ""),
            ("orders completed", self.orders_completed.to_string(), ""),
            (
                "requests refused during faults",
                self.requests_refused.to_string(),
                "",
            ),
            ("orders lost", self.orders_lost.to_string(), "0"),
            ("double effects", self.double_effects.to_string(), "0"),
            (
                "invariant violations",
                self.invariant_violations.to_string(),
                "0",
            ),
            (
                "time to settle after the last fault",
                format!("{:.1} s", self.settle_secs),
                "",
            ),
            ("dead letters", self.dead_letters.to_string(), "= poison"),
            (
                "poison messages injected",
                self.poison_injected.to_string(),
                "",
            ),
        ];
        for (name, value, must) in rows {
            f.row([name.to_owned(), value, must.to_owned()]);
        }
        text.push('\n');
        text.push_str(&f.render());
        for p in &self.problems {
            text.push_str(&format!("  problem: {p}\n"));
        }
        text.push_str(if self.passed {
            "PASSED: nothing lost, nothing doubled, every invariant holds\n"
        } else {
            "FAILED: see the figures that must be 0\n"
        });
        text
    }
}

pub async fn run(args: ChaosArgs, _targets: &Targets, json: bool) -> Outcome {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1)
    });
    let mut kinds = if args.kinds.is_empty() {
        Kind::ALL.to_vec()
    } else {
        args.kinds.clone()
    };
    if args.cluster {
        kinds.retain(|k| !matches!(k, Kind::CutNatsDrop | Kind::CutNatsReject));
    }
    let ack_wait = Duration::from_secs(args.ack_wait_secs.max(1));
    let span = Duration::from_secs(args.duration_secs.max(5));
    let plan = schedule::plan(
        seed,
        args.faults,
        span,
        &kinds,
        args.instances.max(1),
        ack_wait,
    );
    eprintln!(
        "jetsaga chaos: seed {seed}, {} faults over {} s",
        plan.len(),
        span.as_secs()
    );
    let mut sys = System::start(SystemOptions {
        instances: args.instances.max(1),
        ack_wait,
        netcut: !args.cluster,
        cluster: args.cluster,
        durable: args.durable,
        // Four connections per instance: the system stays within a third of PostgreSQL's 100
        // connections, beside other tests.
        service_env: vec![("DB_MAX_CONNECTIONS".into(), "4".into())],
        ..SystemOptions::default()
    })
    .await
    .context("starting the system")?;
    anyhow::ensure!(
        !sys.is_external(),
        "chaos kills and pauses processes: it runs its own system, not an external deployment"
    );
    let targets = Targets::of_system(&sys);
    let js = targets.nats().await?;
    let catalogue = Arc::new(
        Catalogue::seed(
            &sys.api,
            Sizes {
                skus: 50,
                hot_skus: 3,
                customers: 50,
                vouchers: (args.rate * span.as_secs_f64() / 8.0) as usize + 20,
            },
        )
        .await?,
    );
    let placer = Arc::new(HttpPlacer {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        bases: sys.bases(Svc::Order),
        catalogue,
        next: AtomicUsize::new(0),
    });
    let stop_watch = CancellationToken::new();
    let watcher = Watcher::start(&js, stop_watch.clone()).await?;
    let mut injector = inject::Injector::new(&sys, seed).await?;

    // The load runs on its own while the faults are injected in their time.
    let bar = progress::bar(None, "orders");
    let load = {
        let (placer, watcher, bar) = (placer.clone(), watcher.clone(), bar.clone());
        let mix = Mix::default();
        let settle = Duration::from_secs(args.settle_secs);
        tokio::spawn(async move {
            drive(
                placer,
                &watcher,
                Shape::Open { per_sec: args.rate },
                Until::Elapsed(span),
                &mix,
                seed,
                settle,
                &bar,
            )
            .await
        })
    };
    let start = Instant::now();
    let mut problems = Vec::new();
    for fault in &plan {
        let at = Duration::from_secs_f64(fault.at);
        if let Some(wait) = at.checked_sub(start.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        if let Err(e) = injector.inject(&mut sys, fault).await {
            problems.push(format!(
                "fault {} could not be carried out: {e:#}",
                fault.kind.as_str()
            ));
        }
    }
    let last_fault = Instant::now();
    let loaded = load.await.context("the load task")?;
    bar.finish_and_clear();

    // Settle: every accepted order ends (the load waits for that), every consumer and outbox is
    // empty.
    eprintln!("jetsaga chaos: faults over; waiting for the system to settle");
    let settled = wait_quiet(&sys.api, Duration::from_secs(args.settle_secs)).await;
    // From when the last fault was undone, or the load stopped, whichever came later.
    let settle_secs = last_fault.max(start + span).elapsed().as_secs_f64();
    if let Err(e) = settled {
        problems.push(format!("the system did not settle: {e:#}"));
    }
    let completed = loaded.completed;
    let mut lost = loaded.lost;
    stop_watch.cancel();

    let sources = check::Sources::connect(&targets).await?;
    let pending = check::pending_orders(&sources).await?;
    for id in pending {
        if !lost.contains(&id) {
            lost.push(id);
        }
    }
    for id in lost.iter().take(5) {
        problems.push(format!("order {id} never ended"));
    }

    let findings = check::run(&sources, &check::Options::quiet(), None).await?;
    problems.extend(
        findings
            .differences
            .iter()
            .take(5)
            .map(|d| format!("{d:?}")),
    );
    let doubles = effects::read(&js).await?.doubles();
    problems.extend(doubles.iter().take(5).cloned());
    let mut dead_letters = 0usize;
    for producer in jetsaga_contracts::Producer::ALL {
        let pool = targets.read_only_pool(producer).await?;
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM kit_dead_letters")
            .fetch_one(&pool)
            .await?;
        dead_letters += usize::try_from(n).unwrap_or(0);
    }
    if dead_letters != injector.poison {
        problems.push(format!(
            "{dead_letters} dead letters for {} poison messages",
            injector.poison
        ));
    }
    let report = ChaosReport {
        seed,
        duration_secs: span.as_secs(),
        instances: args.instances.max(1),
        nats: if args.cluster {
            "3-node cluster, R3 streams"
        } else {
            "single server"
        },
        faults: injector
            .done
            .iter()
            .map(|(k, n)| (k.as_str().to_owned(), *n))
            .collect(),
        orders_placed: loaded.placed,
        orders_completed: completed.len(),
        requests_refused: loaded.refused,
        orders_lost: lost.len(),
        double_effects: doubles.len(),
        invariant_violations: findings.differences.len(),
        settle_secs: (settle_secs * 10.0).round() / 10.0,
        dead_letters,
        poison_injected: injector.poison,
        passed: false,
        problems,
    };
    let passed = report.orders_lost == 0
        && report.double_effects == 0
        && report.invariant_violations == 0
        && report.dead_letters == report.poison_injected
        && report.problems.is_empty();
    let report = ChaosReport { passed, ..report };
    if !json {
        print!("{}", report.render());
    }
    println!("{}", serde_json::to_string(&report)?);
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
