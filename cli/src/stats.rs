//! `jetsaga stats` (being written).

use crate::cli::Outcome;
use crate::targets::Targets;

#[derive(Debug, clap::Args)]
pub struct StatsArgs {}

pub async fn run(_args: StatsArgs, _targets: &Targets, _json: bool) -> Outcome {
    anyhow::bail!("jetsaga stats is not built yet")
}
