//! # jetsaga-lab
//!
//! The lab tools: they start whole systems (their own nats-servers, databases and service
//! processes) to run them, measure them or break them. `jetsaga dev`, `jetsaga bench` and
//! `jetsaga chaos` are handed here by the operator binary, which links none of this.
//!
//! ## Layout
//! - [`dev`]: `jetsaga dev`, the whole system in one process.
//! - [`bench`]: `jetsaga bench`, sagas per second and latency against the null saga's ceiling.
//! - [`chaos`]: `jetsaga chaos`, faults under load, and nothing lost, nothing doubled.
//! - [`docs`]: `jetsaga-lab docs`, the contract documents generated from the code.
//!
//! Architecture Invariant: the lab depends on the operator tools (`jetsaga-cli`) and the test
//! harness (`jetsaga-testkit`, `jetsaga-scenarios`); nothing depends on the lab.

pub mod bench;
pub mod chaos;
pub mod dev;
pub mod docs;

use clap::{Parser, Subcommand};
use jetsaga_cli::cli::{block_on, Interrupt};
use jetsaga_cli::targets::Targets;
use jetsaga_scenarios::{Svc, System};
use std::process::ExitCode;

/// The jetsaga lab: run the whole system, benchmark it, or break it under load.
#[derive(Debug, Parser)]
#[command(name = "jetsaga", version, about, propagate_version = true)]
pub struct LabCli {
    #[command(flatten)]
    pub targets: Targets,
    /// Print one JSON document instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: LabCommand,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Run the whole system locally: NATS, the databases, the services and demo data.
    Dev(dev::DevArgs),
    /// Sagas per second and saga latency, against this machine's ceiling measured in the same run.
    Bench(bench::BenchArgs),
    /// Faults injected under load; then nothing lost, nothing doubled, every invariant holds.
    Chaos(chaos::ChaosArgs),
    /// Write the contract documents generated from the code (docs/events); --check compares.
    Docs(docs::DocsArgs),
}

/// Runs the command; exit codes as `jetsaga`'s.
pub fn main(cli: LabCli) -> ExitCode {
    let LabCli {
        targets,
        json,
        command,
    } = cli;
    match command {
        // `dev` stops its services in order on Ctrl-C itself.
        LabCommand::Dev(args) => block_on(
            async move { dev::run(args, &targets).await },
            Interrupt::HandledByTheCommand,
        ),
        LabCommand::Bench(args) => block_on(
            async move { bench::run(args, &targets, json).await },
            Interrupt::StopsTheCommand,
        ),
        LabCommand::Docs(args) => {
            block_on(async move { docs::run(args) }, Interrupt::StopsTheCommand)
        }
        LabCommand::Chaos(args) => block_on(
            async move { chaos::run(args, &targets, json).await },
            Interrupt::StopsTheCommand,
        ),
    }
}

/// Where a system started by this process (bench, chaos) is, for the operator tools.
pub fn targets_of(sys: &System) -> Targets {
    Targets {
        nats_url: Some(sys.nats_url().to_owned()),
        order_db: sys.database_url(Svc::Order).ok(),
        voucher_db: sys.database_url(Svc::Voucher).ok(),
        points_db: sys.database_url(Svc::Points).ok(),
        payment_db: sys.database_url(Svc::Payment).ok(),
        stock_db: sys.database_url(Svc::Stock).ok(),
    }
}
