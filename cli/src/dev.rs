//! `jetsaga dev` (being written).

use crate::cli::Outcome;
use crate::targets::Targets;

#[derive(Debug, clap::Args)]
pub struct DevArgs {}

pub async fn run(_args: DevArgs, _targets: &Targets) -> Outcome {
    anyhow::bail!("jetsaga dev is not built yet")
}
