//! The command line: `jetsaga <command>`, with the connection flags and `--json` shared by all.
//! `dev`, `bench` and `chaos` are lab tools that start whole systems: they live in the
//! `jetsaga-lab` binary, and `jetsaga` hands those commands to it ([`crate::lab`]).

use crate::targets::Targets;
use crate::{audit, console, dlq, provision, reconcile, replay, stats, trace};
use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::future::Future;
use std::process::ExitCode;

/// The jetsaga operator CLI: trace, replay, reconcile and repair the saga.
#[derive(Debug, Parser)]
#[command(name = "jetsaga", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub targets: Targets,
    /// Print one JSON document instead of a table (read commands).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole system locally: NATS, the databases, the services and demo data
    /// (`jetsaga-lab dev`).
    #[command(disable_help_flag = true)]
    Dev(LabArgs),
    /// One saga as a timeline across every stream, or as a Mermaid sequence diagram.
    Trace(trace::TraceArgs),
    /// Rebuild a service from the streams: after a restore, from scratch, or as an audit (--verify).
    Replay(replay::ReplayArgs),
    /// Check the invariants across the services' databases (and a settlement file); optionally
    /// repair; with --streams, find and republish events a stream lost.
    Reconcile(reconcile::ReconcileArgs),
    /// Work the dead letters of every service.
    Dlq(dlq::DlqArgs),
    /// Every admin change and operator action over a time range, with who did it.
    Audit(audit::AuditArgs),
    /// Consumer lag, outbox backlog, dead letters and saga outcomes.
    Stats(stats::StatsArgs),
    /// The same operations in a browser, for signed-in operators and viewers (default
    /// http://127.0.0.1:8090).
    Console(console::ConsoleArgs),
    /// Create or update the streams as the NATS admin (before services that may not).
    Provision(provision::ProvisionArgs),
    /// Sagas per second and saga latency, against this machine's ceiling measured in the same run
    /// (`jetsaga-lab bench`).
    #[command(disable_help_flag = true)]
    Bench(LabArgs),
    /// Faults injected under load; then nothing lost, nothing doubled, every invariant holds
    /// (`jetsaga-lab chaos`).
    #[command(disable_help_flag = true)]
    Chaos(LabArgs),
}

/// The arguments of a lab command, handed to `jetsaga-lab` as they are (`--help` included).
#[derive(Debug, Args)]
pub struct LabArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<OsString>,
}

/// What a command ends with: success, or differences/failures that leave work for a person.
pub type Outcome = anyhow::Result<ExitCode>;

/// Runs the command. Exit codes: 0 done and clean, 1 done with differences or failures left
/// (reconcile, replay), 2 could not run (bad input, unreachable database or NATS).
pub fn main(cli: Cli) -> ExitCode {
    if matches!(
        cli.command,
        Command::Dev(_) | Command::Bench(_) | Command::Chaos(_)
    ) {
        return crate::lab::hand_over();
    }
    block_on(run(cli), Interrupt::StopsTheCommand)
}

/// What Ctrl-C or SIGTERM does to a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// The command is dropped, and with it what it started (bench and chaos stop their service
    /// processes and drop their databases), rather than leaving orphans.
    StopsTheCommand,
    /// The command handles it itself (`dev` stops its services in order).
    HandledByTheCommand,
}

/// Runs `work` on a Tokio runtime with the CLI's logging, and turns its outcome into an exit code.
pub fn block_on(work: impl Future<Output = Outcome>, interrupt: Interrupt) -> ExitCode {
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(async {
        if interrupt == Interrupt::HandledByTheCommand {
            return work.await;
        }
        let interrupted = tokio_util::sync::CancellationToken::new();
        tokio::spawn(jetsaga_runtime::signal::cancel_on_signal(
            interrupted.clone(),
        ));
        tokio::select! {
            outcome = work => outcome,
            _ = interrupted.cancelled() => {
                eprintln!("jetsaga: interrupted; stopped what this command started");
                Ok(ExitCode::from(130))
            }
        }
    });
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Outcome {
    let Cli {
        targets,
        json,
        command,
    } = cli;
    match command {
        Command::Trace(args) => trace::run(args, &targets, json).await,
        Command::Replay(args) => replay::run(args, &targets, json).await,
        Command::Reconcile(args) => reconcile::run(args, &targets, json).await,
        Command::Dlq(args) => dlq::run(args, &targets, json).await,
        Command::Audit(args) => audit::run(args, &targets, json).await,
        Command::Stats(args) => stats::run(args, &targets, json).await,
        Command::Console(args) => console::run(args, &targets).await,
        Command::Provision(args) => provision::run(args, &targets).await,
        Command::Dev(_) | Command::Bench(_) | Command::Chaos(_) => {
            unreachable!("lab commands are handed over in main")
        }
    }
}

/// Logs go to stderr; `RUST_LOG` decides, by default warnings only (so the output of `dev` stays
/// readable; `RUST_LOG=info` shows what the services do).
fn init_logging() {
    jetsaga_runtime::telemetry::init_with("warn");
}
