//! `jetsaga bench`: sagas per second and saga latency, as a ratio of this machine's ceiling
//! measured in the same run.
//!
//! 1. **Setup:** its own system (nats-server, five fresh databases, the five service binaries,
//!    `--instances` of each), or the deployment the `JETSAGA_*_URL` variables name; customers,
//!    many SKUs and a few hot ones, and vouchers, seeded through the public APIs.
//! 2. **Load:** orders over `POST /orders`, a warm-up, then closed-loop at `--concurrency` for
//!    `--orders` (the maximum rate), then open-loop at half that rate for `--half-secs` (the latency
//!    target). Or `--rate R`: open-loop at R only. The outcome mix is `--mix`.
//! 3. **Measured:** completed sagas per second; latency from the POST to the terminal event's time
//!    in the ORDERS stream (p50/p95/p99/max); outbox backlog and consumer lag over time; CPU of
//!    each process; per saga, PostgreSQL commits, statements and WAL, NATS publishes and acks.
//! 4. **The ceiling:** the null saga ([`null`]) driven the same way; `ratio = sagas_per_sec /
//!    null_saga_per_sec`.
//! 5. **Checks:** once quiet, the reconciler; orders lost and invariant violations must be 0, or
//!    the run fails (exit 1) whatever its speed.
//! 6. **Output:** a table, an SVG plot of latency over time, and a JSON summary as the last line.
//!
//! ## Layout
//! - [`mix`]: the outcome mix. [`catalogue`]: the seeded data and order bodies.
//! - [`drive`]: the load generator. [`watch`]: terminal events from the ORDERS stream.
//! - [`peers`]: `--peers DIR`, DBOS and Restate right after, in one table.
//! - [`traces`]: `--traces`, the cost of exporting traces: sagas/s with and without an exporter.
//! - [`sample`]: backlog, lag and CPU. [`cost`]: PostgreSQL and NATS work per saga. [`null`]: the null saga. [`report`], [`plot`]: the output.

pub mod catalogue;
pub mod cost;
pub mod cpu_per_saga;
pub mod drive;
pub mod mix;
pub mod null;
pub mod peers;
pub mod plot;
pub mod report;
pub mod sample;
pub mod traces;
pub mod watch;

use anyhow::Context as _;
use catalogue::{Catalogue, Sizes};
use clap::Args;
use drive::{drive, HttpPlacer, LoadResult, Placer, Shape, Until};
use jetsaga_cli::cli::Outcome;
use jetsaga_cli::progress;
use jetsaga_cli::reconcile::check;
use jetsaga_cli::targets::Targets;
use jetsaga_scenarios::{Svc, System, SystemOptions};
use mix::Mix;
use report::{BenchReport, Latency, Phase};
use sample::{cpu_snapshot, cpu_usage, Sample};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use watch::Watcher;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Clients of the closed loop: each places an order and waits for its end.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Orders of the closed-loop phase (and of the null saga's).
    #[arg(long, default_value_t = 3000)]
    pub orders: usize,
    /// Open loop at this many orders per second instead of the closed-loop phases.
    #[arg(long)]
    pub rate: Option<f64>,
    /// How long the open-loop phase runs (at half the maximum rate, or at --rate).
    #[arg(long, default_value_t = 15)]
    pub half_secs: u64,
    /// The outcome mix: weights of confirmed, voucher_rejected, points_rejected, payment_failed,
    /// stock_failed. Default
    /// `confirmed=80,voucher_rejected=5,points_rejected=5,payment_failed=5,stock_failed=5`; with
    /// `--peers`, the peers' own mix (`confirmed=80,voucher_rejected=7,payment_failed=7,stock_failed=6`:
    /// they have no points step), so both sides place the same orders.
    #[arg(long)]
    pub mix: Option<Mix>,
    /// JetStream with `sync_interval: always` and PostgreSQL synchronous commit.
    #[arg(long)]
    pub durable: bool,
    /// Processes per service.
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
    /// SKUs to seed (plus a few hot ones that many orders share).
    #[arg(long, default_value_t = 300)]
    pub skus: usize,
    /// Customers to seed.
    #[arg(long, default_value_t = 200)]
    pub customers: usize,
    /// The seed of the load's random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Skip the null saga (no ratio).
    #[arg(long)]
    pub no_null: bool,
    /// The closed-loop orders are run in this many rounds, each real round followed by a null
    /// round, so that both see the same machine (it is shared and its speed drifts); the ratio is
    /// the median of the rounds' ratios.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// PostgreSQL connections per database, for the services (split over their instances) and
    /// for the null saga alike; both systems together need 8 times this, within PostgreSQL's
    /// `max_connections`.
    #[arg(long, default_value_t = 8)]
    pub pool_per_database: u32,
    /// Where the plot is written (and the peers' copy, with `--peers`).
    #[arg(long, default_value = ".jetsaga/bench")]
    pub out: PathBuf,
    /// Then run the same saga and load on the peers in DIR (`../shared/peers`: DBOS and Restate),
    /// DBOS in the durability of this mode, and print all in one table. DIR is copied under
    /// `--out` first and built there once.
    #[arg(long, value_name = "DIR")]
    pub peers: Option<PathBuf>,
    /// Instead: the cost of exporting traces. Two systems, one exporting every span over OTLP to a
    /// receiver in this process, driven in alternating `--rounds` of `--orders`/rounds each; the
    /// ratio of their sagas/s.
    #[arg(long, conflicts_with_all = ["peers", "rate"])]
    pub traces: bool,
}

impl BenchArgs {
    /// The mix given, or the one the comparison calls for.
    pub fn mix(&self) -> Mix {
        match (&self.mix, &self.peers) {
            (Some(mix), _) => mix.clone(),
            (None, Some(_)) => Mix::peers(),
            (None, None) => Mix::default(),
        }
    }
}

impl std::fmt::Display for Mix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(o, w)| format!("{}={w}", o.as_str()))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// The median of some figures (0 when there are none).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// What the phases of the real system gathered, for the report and the plot.
struct Gathered {
    run_start: time::OffsetDateTime,
    phases: Vec<Phase>,
    samples: Vec<Sample>,
    points: Vec<plot::Point>,
    lost: usize,
}

impl Gathered {
    fn keep(&mut self, m: Measured) {
        let offset = (m.result.started - self.run_start).as_seconds_f64();
        self.points
            .extend(m.result.completed.iter().map(|c| plot::Point {
                t: (c.ended - self.run_start).as_seconds_f64(),
                ms: c.latency_ms(),
            }));
        self.samples.extend(m.samples.into_iter().map(|mut x| {
            x.t += offset;
            x
        }));
        self.lost += m.result.lost.len();
        self.phases.push(m.phase);
    }
}

/// A phase's result, with what it took.
struct Measured {
    phase: Phase,
    result: LoadResult,
    samples: Vec<Sample>,
}

#[allow(clippy::too_many_arguments)]
async fn measure<P: Placer>(
    name: &str,
    placer: Arc<P>,
    watcher: &Watcher,
    shape: Shape,
    until: Until,
    mix: &Mix,
    seed: u64,
    pids: &[(String, u32)],
    sampling: Option<(Vec<sqlx::PgPool>, async_nats::jetstream::Context)>,
) -> Measured {
    let total = match until {
        Until::Count(n) => Some(n as u64),
        Until::Elapsed(_) => None,
    };
    let bar = progress::bar(total, name);
    let stop = CancellationToken::new();
    let sampler = sampling
        .map(|(pools, js)| tokio::spawn(sample::sample(pools, js, watcher.clone(), stop.clone())));
    let before = cpu_snapshot(pids);
    let result = drive(
        placer,
        watcher,
        shape,
        until,
        mix,
        seed,
        Duration::from_secs(60),
        &bar,
    )
    .await;
    let after = cpu_snapshot(pids);
    stop.cancel();
    let samples = match sampler {
        Some(task) => task.await.unwrap_or_default(),
        None => Vec::new(),
    };
    bar.finish_and_clear();
    let (outcomes, unexpected_outcomes) = report::outcomes(&result.completed);
    let seconds = result.seconds();
    let phase = Phase {
        name: name.to_owned(),
        load: match shape {
            Shape::Closed { concurrency } => format!("closed, {concurrency} clients"),
            Shape::Open { per_sec } => format!("open, {per_sec:.0}/s"),
        },
        placed: result.placed,
        completed: result.completed.len(),
        refused: result.refused,
        lost: result.lost.len(),
        seconds: (seconds * 10.0).round() / 10.0,
        sagas_per_sec: (result.per_sec() * 10.0).round() / 10.0,
        latency: Latency::of(&result.completed),
        outcomes,
        unexpected_outcomes,
        cpu: cpu_usage(&before, &after),
    };
    if let Some(e) = &result.first_error {
        tracing::warn!(phase = name, refused = result.refused, first_error = %e, "requests refused");
    }
    Measured {
        phase,
        result,
        samples,
    }
}

pub async fn run(args: BenchArgs, _targets: &Targets, json: bool) -> Outcome {
    if args.traces {
        return Box::pin(traces::run(args, json)).await;
    }
    let mode = if args.durable { "durable" } else { "default" };
    let mix = args.mix();
    let options = SystemOptions {
        instances: args.instances.max(1),
        durable: args.durable,
        // Default mode: commits return before the WAL is flushed; durable mode waits for it.
        async_commit: !args.durable,
        ack_wait: Duration::from_secs(30),
        service_env: vec![
            // The real services and the null saga run side by side and share PostgreSQL's
            // connections: the same number per database each, split over a service's instances.
            (
                "DB_MAX_CONNECTIONS".into(),
                (args.pool_per_database / args.instances.max(1) as u32)
                    .max(2)
                    .to_string(),
            ),
            ("MAX_FAILURES".into(), "5".into()),
        ],
        ..SystemOptions::default()
    };
    eprintln!("jetsaga bench: starting the system ({mode} mode)");
    let sys = System::start(options)
        .await
        .context("starting the system")?;
    let sampled = if sys.is_external() {
        cpu_per_saga::Sampled::Part
    } else {
        cpu_per_saga::Sampled::Whole
    };
    let targets = crate::targets_of(&sys);
    let js = targets.nats().await?;
    let mut pools = Vec::new();
    for producer in jetsaga_contracts::Producer::ALL {
        pools.push(targets.pool(producer).await?);
    }
    // The services' connections say so themselves; the server's default is checked for --durable.
    let server_default: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&pools[0])
        .await
        .context("reading PostgreSQL's synchronous_commit")?;
    if args.durable && server_default == "off" {
        anyhow::bail!(
            "--durable needs PostgreSQL with synchronous_commit on; the server has it off"
        );
    }
    let synchronous_commit = if args.durable { "on" } else { "off" }.to_owned();

    eprintln!("jetsaga bench: seeding");
    let placer = seeded_placer(&sys, &args).await?;
    let stop_watch = CancellationToken::new();
    let watcher = Watcher::start(&js, stop_watch.clone()).await?;
    let pids = sys.pids();
    let sampling = || Some((pools.clone(), js.clone()));
    let meter = cost::Meter::new(&jetsaga_contracts::Producer::ALL, &pools, js.clone()).await?;
    let (mut real_cost, mut null_cost) = (cost::Cost::default(), cost::Cost::default());

    let mut run = Gathered {
        run_start: time::OffsetDateTime::now_utc(),
        phases: Vec::new(),
        samples: Vec::new(),
        points: Vec::new(),
        lost: 0,
    };

    let null = if args.no_null {
        None
    } else {
        eprintln!("jetsaga bench: starting the null saga (the ceiling), beside the system");
        let null = null::NullSystem::start(args.durable, 16, args.pool_per_database).await?;
        let stop = CancellationToken::new();
        let watcher = Watcher::start(&null.js, stop.clone()).await?;
        let pids = vec![(
            "nats-server (null)".to_owned(),
            null.nats.pid().unwrap_or_default(),
        )];
        let placer = Arc::new(null.placer());
        let meter = cost::Meter::new(
            &jetsaga_contracts::Producer::ALL,
            &null.pools,
            null.js.clone(),
        )
        .await?;
        Some((null, watcher, stop, pids, placer, meter))
    };

    let closed = Shape::Closed {
        concurrency: args.concurrency,
    };
    let warmup = measure(
        "warm-up",
        placer.clone(),
        &watcher,
        closed,
        Until::Count(300),
        &mix,
        args.seed,
        &pids,
        None,
    )
    .await;
    run.lost += warmup.result.lost.len();
    if let Some((_, null_watcher, _, null_pids, null_placer, _)) = &null {
        let warm = measure(
            "null warm-up",
            null_placer.clone(),
            null_watcher,
            closed,
            Until::Count(300),
            &mix,
            args.seed,
            null_pids,
            None,
        )
        .await;
        run.lost += warm.result.lost.len();
    }

    // Real and null rounds in turn; each figure is the median of its rounds.
    let rounds = args.rounds.max(1);
    let per_round = (args.orders / rounds).max(1);
    let (mut real_rates, mut null_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut real_p99s, mut null_p99s) = (Vec::new(), Vec::new());
    if args.rate.is_none() {
        for round in 1..=rounds {
            let seed = args.seed + 10 * round as u64;
            let before = meter.read().await;
            let max = measure(
                &format!("max {round}"),
                placer.clone(),
                &watcher,
                closed,
                Until::Count(per_round),
                &mix,
                seed,
                &pids,
                sampling(),
            )
            .await;
            real_cost.add(&before, &meter.read().await, max.phase.completed);
            real_p99s.push(max.phase.latency.p99);
            let real = max.phase.sagas_per_sec;
            real_rates.push(real);
            run.keep(max);
            if let Some((null_system, null_watcher, _, null_pids, null_placer, null_meter)) = &null
            {
                let before = null_meter.read().await;
                let measured = measure(
                    &format!("null {round}"),
                    null_placer.clone(),
                    null_watcher,
                    closed,
                    Until::Count(per_round),
                    &mix,
                    seed,
                    null_pids,
                    Some((null_system.pools.clone(), null_system.js.clone())),
                )
                .await;
                null_cost.add(&before, &null_meter.read().await, measured.phase.completed);
                null_p99s.push(measured.phase.latency.p99);
                let ceiling = measured.phase.sagas_per_sec;
                null_rates.push(ceiling);
                if ceiling > 0.0 {
                    ratios.push(real / ceiling);
                }
                run.lost += measured.result.lost.len();
                run.phases.push(measured.phase);
            }
        }
    }
    if let Some((null_system, _, stop, _, _, _)) = null {
        stop.cancel();
        null_system.stop().await;
    }
    let max_rate = median(&real_rates);
    let half_rate = match args.rate {
        Some(rate) => rate,
        None => max_rate / 2.0,
    };
    let half = measure(
        if args.rate.is_some() { "rate" } else { "half" },
        placer.clone(),
        &watcher,
        Shape::Open {
            per_sec: half_rate.max(1.0),
        },
        Until::Elapsed(Duration::from_secs(args.half_secs)),
        &mix,
        args.seed + 2,
        &pids,
        sampling(),
    )
    .await;
    let p99_half = half.phase.latency.p99;
    run.keep(half);
    stop_watch.cancel();

    // Once quiet, the reconciler judges every order and every account and SKU.
    eprintln!("jetsaga bench: waiting for the system to be quiet, then reconciling");
    jetsaga_scenarios::checker::wait_quiet(&sys.api, Duration::from_secs(120)).await?;
    let sources = check::Sources::connect(&targets).await?;
    let findings = check::run(&sources, &check::Options::quiet(), None).await?;
    run.lost += check::pending_orders(&sources).await?.len();
    let violations: Vec<String> = findings
        .differences
        .iter()
        .take(10)
        .map(|d| format!("{d:?}"))
        .collect();
    let violation_count = findings.differences.len();
    for pool in &pools {
        pool.close().await;
    }
    drop(sys);

    let null_rate = median(&null_rates);

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let plot_path = args.out.join(format!("bench-{mode}.svg"));
    let title = format!(
        "jetsaga bench, {mode} mode: saga latency (POST to terminal event) over time; max then half rate"
    );
    std::fs::write(&plot_path, plot::svg(&title, &run.points, &run.samples))
        .with_context(|| format!("writing {}", plot_path.display()))?;

    let peer_runs = match &args.peers {
        Some(dir) => {
            peers::run(
                dir,
                &args.out,
                &peers::PeerLoad {
                    sagas: args.orders,
                    concurrency: args.concurrency,
                    seed: args.seed,
                    durable: args.durable,
                },
            )
            .await?
        }
        None => Vec::new(),
    };
    let sagas_per_sec = if args.rate.is_some() {
        run.phases.first().map(|p| p.sagas_per_sec).unwrap_or(0.0)
    } else {
        max_rate
    };
    let per_saga = with_cpu(
        real_cost.per_saga(),
        &run.phases,
        "max ",
        &cpu_per_saga::LOAD_DRIVERS,
        sampled,
    );
    // The null saga's participants run inside the bench's own process: there it is the system.
    let null_per_saga = with_cpu(
        null_cost.per_saga(),
        &run.phases,
        "null ",
        &[],
        cpu_per_saga::Sampled::Whole,
    );
    let mut report = BenchReport {
        mode,
        postgres_synchronous_commit: synchronous_commit,
        instances: args.instances.max(1),
        phases: run.phases,
        sagas_per_sec,
        null_sagas_per_sec: null_rate,
        ratio: (median(&ratios) * 100.0).round() / 100.0,
        per_saga,
        null_per_saga,
        statements_counted: meter.counts_statements(),
        half_rate_per_sec: (half_rate * 10.0).round() / 10.0,
        p99_at_half_rate_ms: p99_half,
        orders_lost: run.lost,
        invariant_violations: violation_count,
        violations,
        passed: run.lost == 0 && violation_count == 0,
        plot: Some(plot_path.display().to_string()),
        side_by_side: Vec::new(),
    };
    if !peer_runs.is_empty() {
        report.side_by_side = side_by_side(&report, &peer_runs, &real_p99s, null_p99s.as_slice());
    }
    if !json {
        print!("{}", report.render());
    }
    println!("{}", serde_json::to_string(&report)?);
    // Asked for a comparison, and a peer has no figures that count: the comparison is not made.
    let peers_passed = peer_runs.iter().all(peers::PeerRun::passed);
    if !peers_passed {
        eprintln!(
            "jetsaga bench: the comparison is incomplete: a peer did not run or failed its checks \
             (its CHECKS column says which)"
        );
    }
    Ok(if report.passed && peers_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// jetsaga (and its null saga) first, then each peer, for [`peers::render`].
fn side_by_side(
    report: &BenchReport,
    peer_runs: &[peers::PeerRun],
    real_p99s: &[f64],
    null_p99s: &[f64],
) -> Vec<peers::Row> {
    let durability = if report.mode == "durable" {
        "NATS fsync always, PostgreSQL synchronous_commit=on"
    } else {
        "NATS lazy fsync, PostgreSQL synchronous_commit=off"
    };
    let mut rows = vec![peers::Row {
        system: "jetsaga".into(),
        durability: durability.into(),
        sagas_per_sec: report.sagas_per_sec,
        p99_ms: median(real_p99s),
        passed: report.passed,
        not_run: None,
        per_saga: report.per_saga.0.clone(),
    }];
    if report.null_sagas_per_sec > 0.0 {
        rows.push(peers::Row {
            system: "jetsaga null saga".into(),
            durability: durability.into(),
            sagas_per_sec: report.null_sagas_per_sec,
            p99_ms: median(null_p99s),
            passed: report.passed,
            not_run: None,
            per_saga: report.null_per_saga.0.clone(),
        });
    }
    rows.extend(peer_runs.iter().map(|r| {
        peers::Row {
            system: r.peer.clone(),
            durability: r.durability.clone(),
            sagas_per_sec: r.sagas_per_sec,
            p99_ms: r.p99_ms,
            passed: r.passed(),
            not_run: r.not_run.clone(),
            per_saga: r
                .per_saga
                .clone()
                .into_iter()
                .chain(cpu_per_saga::from_shares(
                    &r.cpu_share_of_one_core,
                    r.sagas_per_sec,
                ))
                .collect(),
        }
    }));
    rows
}

/// `cost` and the CPU per saga of the phases named `prefix…` (the closed-loop rounds of one kind)
/// but `leave_out`'s: what the storage did for a saga beside what each process spent on it.
fn with_cpu(
    cost: cost::PerSaga,
    phases: &[Phase],
    prefix: &str,
    leave_out: &[&str],
    sampled: cpu_per_saga::Sampled,
) -> cost::PerSaga {
    let rounds = phases.iter().filter(|p| p.name.starts_with(prefix));
    cost::PerSaga(
        cost.0
            .into_iter()
            .chain(cpu_per_saga::from_phases(rounds, leave_out, sampled))
            .collect(),
    )
}

/// The catalogue of `args` seeded through `sys`'s public APIs, and a placer of orders against it
/// over the order service's instances.
pub(crate) async fn seeded_placer(
    sys: &System,
    args: &BenchArgs,
) -> anyhow::Result<Arc<HttpPlacer>> {
    let catalogue = Arc::new(
        Catalogue::seed(
            &sys.api,
            Sizes {
                skus: args.skus,
                hot_skus: 5,
                customers: args.customers,
                vouchers: args.orders / 10 + 100,
            },
        )
        .await
        .context("seeding through the public APIs")?,
    );
    Ok(Arc::new(HttpPlacer {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(args.concurrency.max(16))
            .build()?,
        bases: sys.bases(Svc::Order),
        catalogue,
        next: AtomicUsize::new(0),
    }))
}
