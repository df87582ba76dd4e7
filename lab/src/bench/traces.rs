//! `jetsaga bench --traces`: what exporting traces costs. Two systems side by side, one without an
//! exporter and one exporting every span over OTLP/HTTP to a receiver in this process, driven the
//! same way in alternating rounds; `ratio = sagas/s with / sagas/s without`.

use super::drive::{HttpPlacer, Shape, Until};
use super::watch::Watcher;
use super::{measure, median, BenchArgs};
use anyhow::Context as _;
use jetsaga_cli::cli::Outcome;
use jetsaga_scenarios::otlp::OtlpReceiver;
use jetsaga_scenarios::{System, SystemOptions};
use serde::Serialize;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The figures of one `--traces` run.
#[derive(Debug, Serialize)]
pub struct TracesReport {
    pub rounds: usize,
    pub orders_per_round: usize,
    pub concurrency: usize,
    /// Median sagas/s of the system without an exporter.
    pub sagas_per_sec_without: f64,
    /// Median sagas/s of the system exporting every span.
    pub sagas_per_sec_with: f64,
    /// Median over the rounds of with / without.
    pub ratio: f64,
    /// Spans the receiver got from the exporting system.
    pub spans_received: usize,
    pub orders_lost: usize,
    pub passed: bool,
}

impl TracesReport {
    pub fn render(&self) -> String {
        format!(
            "jetsaga bench --traces: {} rounds of {} orders, {} clients\n\
             \x20 without an exporter   {:>8.1} sagas/s\n\
             \x20 exporting traces      {:>8.1} sagas/s   ({} spans received)\n\
             \x20 ratio with/without    {:>8.2}\n\
             \x20 orders lost           {:>8}\n",
            self.rounds,
            self.orders_per_round,
            self.concurrency,
            self.sagas_per_sec_without,
            self.sagas_per_sec_with,
            self.spans_received,
            self.ratio,
            self.orders_lost,
        )
    }
}

/// One of the two systems, ready to be driven.
struct Side {
    sys: System,
    placer: Arc<HttpPlacer>,
    watcher: Watcher,
    stop_watch: CancellationToken,
    pids: Vec<(String, u32)>,
}

impl Side {
    async fn start(args: &BenchArgs, otlp: Option<&OtlpReceiver>) -> anyhow::Result<Side> {
        let mut service_env = vec![
            // Two systems share PostgreSQL's connections.
            (
                "DB_MAX_CONNECTIONS".into(),
                args.pool_per_database.max(2).to_string(),
            ),
            ("MAX_FAILURES".into(), "5".into()),
        ];
        if let Some(receiver) = otlp {
            service_env.push((
                "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                receiver.endpoint().to_owned(),
            ));
        }
        let sys = System::start(SystemOptions {
            durable: args.durable,
            async_commit: !args.durable,
            ack_wait: Duration::from_secs(30),
            service_env,
            ..SystemOptions::default()
        })
        .await
        .context("starting a system")?;
        let placer = super::seeded_placer(&sys, args).await?;
        let js = crate::targets_of(&sys).nats().await?;
        let stop_watch = CancellationToken::new();
        let watcher = Watcher::start(&js, stop_watch.clone()).await?;
        let pids = sys.pids();
        Ok(Side {
            sys,
            placer,
            watcher,
            stop_watch,
            pids,
        })
    }

    /// One closed-loop phase: its sagas/s and the orders it lost.
    async fn drive(&self, name: &str, until: Until, args: &BenchArgs, seed: u64) -> (f64, usize) {
        let measured = measure(
            name,
            self.placer.clone(),
            &self.watcher,
            Shape::Closed {
                concurrency: args.concurrency,
            },
            until,
            &args.mix(),
            seed,
            &self.pids,
            None,
        )
        .await;
        (measured.phase.sagas_per_sec, measured.result.lost.len())
    }
}

/// Runs both systems in alternating rounds and reports the ratio.
pub async fn run(args: BenchArgs, json: bool) -> Outcome {
    let receiver = OtlpReceiver::start().await?;
    eprintln!("jetsaga bench --traces: starting the system without an exporter");
    let without = Side::start(&args, None).await?;
    eprintln!(
        "jetsaga bench --traces: starting the system exporting to {}",
        receiver.endpoint()
    );
    let with = Side::start(&args, Some(&receiver)).await?;
    let mut lost = 0;
    lost += without
        .drive("warm-up", Until::Count(300), &args, args.seed)
        .await
        .1;
    lost += with
        .drive("warm-up (traces)", Until::Count(300), &args, args.seed)
        .await
        .1;
    let rounds = args.rounds.max(1);
    let per_round = (args.orders / rounds).max(1);
    let (mut off, mut on, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let seed = args.seed + 10 * round as u64;
        let (rate_off, lost_off) = without
            .drive(
                &format!("without {round}"),
                Until::Count(per_round),
                &args,
                seed,
            )
            .await;
        let (rate_on, lost_on) = with
            .drive(
                &format!("traces {round}"),
                Until::Count(per_round),
                &args,
                seed,
            )
            .await;
        lost += lost_off + lost_on;
        off.push(rate_off);
        on.push(rate_on);
        if rate_off > 0.0 {
            ratios.push(rate_on / rate_off);
        }
    }
    // Let the last batch of spans arrive before counting them.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let spans_received = receiver.count();
    without.stop_watch.cancel();
    with.stop_watch.cancel();
    drop((without.sys, with.sys));
    let report = TracesReport {
        rounds,
        orders_per_round: per_round,
        concurrency: args.concurrency,
        sagas_per_sec_without: (median(&off) * 10.0).round() / 10.0,
        sagas_per_sec_with: (median(&on) * 10.0).round() / 10.0,
        ratio: (median(&ratios) * 100.0).round() / 100.0,
        spans_received,
        orders_lost: lost,
        passed: lost == 0 && spans_received > 0,
    };
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
