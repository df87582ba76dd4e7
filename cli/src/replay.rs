//! `jetsaga replay` (being written).

use crate::cli::Outcome;
use crate::targets::Targets;

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {}

pub async fn run(_args: ReplayArgs, _targets: &Targets, _json: bool) -> Outcome {
    anyhow::bail!("jetsaga replay is not built yet")
}
