//! `jetsaga chaos`: steady load while a seeded, random schedule of faults is injected, with
//! fault-free periods in between; then, once the faults stop, the system settles and the
//! invariants are checked through the reconciler, the streams and the public APIs.
//!
//! Faults ([`schedule::Kind`]): SIGKILL of a service instance (two instances of each by default)
//! and restart; SIGSTOP past the ack wait then SIGCONT; SIGKILL of nats-server and restart; the
//! network to NATS cut (dropped or refused); PostgreSQL connections terminated from the server
//! side mid-transaction; events published again, out of order; poison messages. And the ordinary
//! operations of issue 10: a service's database refusing every connection for 10–90 s; a rolling
//! restart (SIGTERM, one instance after another); 100–900 KB of binary junk; a durable consumer
//! deleted; a hot stock row locked for 30–60 s; the DLQ stream full. `--hold-scale` shortens
//! every hold for quick runs.
//!
//! The report: the seed, faults by kind, orders placed and completed, orders lost, double effects,
//! invariant violations, dead letters that are no injected poison, and orders cancelled by their
//! deadline that no fault explains ([`timeouts`]): all must be 0. Beside them the time to settle
//! after the last fault, the dead letters against the poison, and the outbox rows parked. The
//! JSON summary is the last line; the exit code is 1 when a figure that must be 0 is not.
//!
//! ## Layout
//! - [`schedule`]: the seeded plan. [`inject`]: carrying a fault out and undoing it, with
//!   [`guard`] for the undo that must happen even when the run ends early.
//! - [`readers`]: which consumers read a subject, from the services' own wiring.
//! - [`effects`]: double effects, counted from the streams.
//! - [`figures`]: dead letters, deadline cancellations and parked rows, read from the databases;
//!   [`timeouts`]: which deadline cancellations a fault explains.

pub mod effects;
pub mod figures;
pub mod guard;
pub mod inject;
pub mod readers;
pub mod rebuild;
pub mod schedule;
pub mod timeouts;

use crate::bench::catalogue::{Catalogue, Sizes};
use crate::bench::drive::{drive, HttpPlacer, Shape, Until};
use crate::bench::mix::Mix;
use crate::bench::watch::Watcher;
use anyhow::Context as _;
use clap::Args;
use jetsaga_cli::cli::Outcome;
use jetsaga_cli::output::Table;
use jetsaga_cli::progress;
use jetsaga_cli::reconcile::check;
use jetsaga_cli::targets::Targets;
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
    /// How long the load and the faults run. When the faults' holds need longer, the load runs on
    /// until the last planned fault is over (said on stderr).
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
    /// Multiplies every fault's hold range (a pause's beyond the ack wait): 1 holds a database
    /// outage 10–90 s and a row lock 30–60 s, as the fault model says; less makes a quick run
    /// (a test's) that still injects and undoes each kind.
    #[arg(long, default_value_t = 1.0)]
    pub hold_scale: f64,
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
    /// Print the plan of faults (when, what, which service and instance, how long) and exit,
    /// without starting anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// The report of one run.
#[derive(Debug, Serialize)]
pub struct ChaosReport {
    pub seed: u64,
    /// How long the load ran.
    pub duration_secs: u64,
    pub instances: usize,
    pub hold_scale: f64,
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
    /// Dead letters in all services' tables.
    pub dead_letters: usize,
    /// Poison messages published, of every size.
    pub poison_injected: usize,
    /// The dead letters the poison must leave: one per consumer that reads its subject.
    pub dead_letters_expected: usize,
    /// Dead letters that are no injected poison (must be 0).
    pub dead_letters_beyond_poison: usize,
    /// Poison that a consumer reading it neither dead-lettered nor applied: lost (must be 0).
    pub poison_not_dead_lettered: usize,
    /// Orders cancelled by their deadline.
    pub timeouts: usize,
    /// Orders cancelled by their deadline that no fault explains ([`timeouts`]; must be 0).
    pub timeouts_without_cause: usize,
    /// Outbox rows parked, per service.
    pub parked_outbox_rows: BTreeMap<String, usize>,
    /// Per service, what a rebuild from the streams alone finds different from the live database
    /// (rows, diverged or failed inputs; must be 0).
    pub rebuild_differences: BTreeMap<String, usize>,
    /// Every fault as it was carried out: what it hit, when, for how long.
    pub fault_log: Vec<inject::Held>,
    /// The first problems found, in words.
    pub problems: Vec<String>,
    pub passed: bool,
}

impl ChaosReport {
    /// Whether every figure that must be 0 is, and nothing else went wrong.
    fn all_clear(&self) -> bool {
        self.orders_lost == 0
            && self.double_effects == 0
            && self.invariant_violations == 0
            && self.dead_letters_beyond_poison == 0
            && self.poison_not_dead_lettered == 0
            && self.timeouts_without_cause == 0
            && self.rebuild_differences.values().all(|n| *n == 0)
            && self.problems.is_empty()
    }

    pub fn render(&self) -> String {
        let mut t = Table::new(["FAULT", "INJECTED"]);
        for (kind, n) in &self.faults {
            t.row([kind.clone(), n.to_string()]);
        }
        let mut text = format!(
            "jetsaga chaos, seed {}, {} s, {} instance(s) per service, NATS {}{}\n",
            self.seed,
            self.duration_secs,
            self.instances,
            self.nats,
            if self.hold_scale == 1.0 {
                String::new()
            } else {
                format!(", holds scaled by {}", self.hold_scale)
            }
        );
        text.push_str(&t.render());
        let parked: usize = self.parked_outbox_rows.values().sum();
        let parked_by = self
            .parked_outbox_rows
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut f = Table::new(["FIGURE", "VALUE", "MUST BE"]);
        let rebuilt: usize = self.rebuild_differences.values().sum();
        let rows: [(&str, String, &str); 16] = [
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
                "dead letters beyond the poison",
                self.dead_letters_beyond_poison.to_string(),
                "0",
            ),
            (
                "poison not dead-lettered",
                self.poison_not_dead_lettered.to_string(),
                "0",
            ),
            (
                "timeouts without a fault as long",
                self.timeouts_without_cause.to_string(),
                "0",
            ),
            (
                "orders cancelled by deadline",
                self.timeouts.to_string(),
                "",
            ),
            (
                "time to settle after the last fault",
                format!("{:.1} s", self.settle_secs),
                "",
            ),
            ("dead letters", self.dead_letters.to_string(), "= expected"),
            (
                "dead letters the poison must leave",
                self.dead_letters_expected.to_string(),
                "",
            ),
            (
                "poison messages injected",
                self.poison_injected.to_string(),
                "",
            ),
            (
                "outbox rows parked",
                if parked_by.is_empty() {
                    parked.to_string()
                } else {
                    format!("{parked} ({parked_by})")
                },
                "",
            ),
            ("rebuild from the streams differs", rebuilt.to_string(), "0"),
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
            "PASSED: nothing lost, nothing doubled, every invariant holds, no dead letter or \
             timeout without its fault\n"
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
    anyhow::ensure!(
        args.hold_scale.is_finite() && args.hold_scale > 0.0,
        "--hold-scale must be a positive number"
    );
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
    let instances = args.instances.max(1);
    let plan = schedule::plan(&schedule::PlanOptions {
        seed,
        count: args.faults,
        span,
        kinds: &kinds,
        instances,
        ack_wait,
        hold_scale: args.hold_scale,
    });
    if args.dry_run {
        let mut t = Table::new(["AT (S)", "FAULT", "SERVICE", "INSTANCE", "HOLD (S)"]);
        for f in &plan {
            t.row([
                format!("{:.1}", f.at),
                f.kind.as_str().to_owned(),
                if f.kind.aims_at_a_service() {
                    Svc::ALL[f.service % Svc::ALL.len()].name().to_owned()
                } else {
                    "-".to_owned()
                },
                if matches!(f.kind, Kind::KillService | Kind::PauseService) {
                    f.instance.to_string()
                } else {
                    "-".to_owned()
                },
                format!("{:.1}", f.hold),
            ]);
        }
        print!("{}", t.render());
        return Ok(ExitCode::SUCCESS);
    }
    // Faults under load: a plan whose holds outlast the load keeps the load going.
    let planned_end = Duration::from_secs_f64(schedule::end(&plan) + 2.0).as_secs() + 1;
    let span = span.max(Duration::from_secs(planned_end));
    eprintln!(
        "jetsaga chaos: seed {seed}, {} faults over {} s{}",
        plan.len(),
        span.as_secs(),
        if span.as_secs() > args.duration_secs.max(5) {
            " (the load runs on until the last planned fault is over)"
        } else {
            ""
        }
    );
    let mut sys = System::start(SystemOptions {
        instances,
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
    let targets = crate::targets_of(&sys);
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
        catalogue: catalogue.clone(),
        next: AtomicUsize::new(0),
    });
    let stop_watch = CancellationToken::new();
    let watcher = Watcher::start(&js, stop_watch.clone()).await?;
    let mut injector = inject::Injector::new(&sys, seed, catalogue.hot.clone()).await?;

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
    let load_started = time::OffsetDateTime::now_utc();
    let mut problems = Vec::new();
    // A fault that took longer than planned (a rolling restart takes as long as it takes) still
    // leaves a second free before the next.
    let mut free_from = start;
    for fault in &plan {
        let at = (start + Duration::from_secs_f64(fault.at)).max(free_from);
        tokio::time::sleep_until(at.into()).await;
        if let Err(e) = injector.inject(&mut sys, fault).await {
            problems.push(format!(
                "fault {} could not be carried out: {e:#}",
                fault.kind.as_str()
            ));
        }
        free_from = Instant::now() + Duration::from_secs(1);
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
    problems.append(&mut injector.findings);
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
    let dead = figures::dead_letters(&targets, &injector.expected).await?;
    problems.extend(dead.beyond_poison.iter().take(5).map(|d| {
        format!(
            "dead letter of {} ({} seq {}) is no injected poison",
            d.consumer, d.stream, d.stream_seq
        )
    }));
    problems.extend(dead.poison_missing.iter().take(5).map(|d| {
        format!(
            "poison {} seq {} left no dead letter on {}",
            d.stream, d.stream_seq, d.consumer
        )
    }));
    let timeouts = figures::timeouts(&targets, &injector.held, ack_wait).await?;
    problems.extend(timeouts.without_cause.iter().take(5).map(|o| {
        format!(
            "order {} (placed {:+.1} s into the load, SKUs {}) was cancelled by its \
                     deadline with no fault that long",
            o.order_id,
            (o.created_at - load_started).as_seconds_f64(),
            o.skus.join(", ")
        )
    }));
    let parked_outbox_rows = figures::parked_outbox_rows(&targets).await?;
    eprintln!("jetsaga chaos: rebuilding every service from the streams alone");
    let (rebuild_differences, mut rebuild_problems) =
        Box::pin(rebuild::differences(&targets)).await;
    problems.append(&mut rebuild_problems);
    let report = ChaosReport {
        seed,
        duration_secs: span.as_secs(),
        instances,
        hold_scale: args.hold_scale,
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
        dead_letters: dead.total,
        poison_injected: injector.poison,
        dead_letters_expected: injector.expected.len(),
        dead_letters_beyond_poison: dead.beyond_poison.len(),
        poison_not_dead_lettered: dead.poison_missing.len(),
        timeouts: timeouts.total,
        timeouts_without_cause: timeouts.without_cause.len(),
        parked_outbox_rows,
        rebuild_differences,
        fault_log: injector.held.clone(),
        passed: false,
        problems,
    };
    let passed = report.all_clear();
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
