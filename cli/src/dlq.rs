//! `jetsaga dlq` (being written).

use crate::cli::Outcome;
use crate::targets::Targets;

#[derive(Debug, clap::Args)]
pub struct DlqArgs {}

pub async fn run(_args: DlqArgs, _targets: &Targets, _json: bool) -> Outcome {
    anyhow::bail!("jetsaga dlq is not built yet")
}
