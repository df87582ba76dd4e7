//! `jetsaga trace` (being written).

use crate::cli::Outcome;
use crate::targets::Targets;

#[derive(Debug, clap::Args)]
pub struct TraceArgs {}

pub async fn run(_args: TraceArgs, _targets: &Targets, _json: bool) -> Outcome {
    anyhow::bail!("jetsaga trace is not built yet")
}
