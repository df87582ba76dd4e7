//! `jetsaga reconcile` (being written).

use crate::cli::Outcome;
use crate::targets::Targets;

#[derive(Debug, clap::Args)]
pub struct ReconcileArgs {}

pub async fn run(_args: ReconcileArgs, _targets: &Targets, _json: bool) -> Outcome {
    anyhow::bail!("jetsaga reconcile is not built yet")
}
