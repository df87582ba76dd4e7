//! The points service's own metrics: its business outcome counter `jetsaga_points_total{outcome}`,
//! `outcome` reserved, rejected, released or earned, registered in the instance's registry on first use.

use saga_kit::metrics::{OutcomeCounter, Outcomes};
use saga_kit::Metrics;

/// `jetsaga_points_total{outcome}`.
#[derive(Debug)]
pub struct Points;

impl Outcomes for Points {
    const NAME: &'static str = "jetsaga_points";
    const HELP: &'static str = "Points decisions, by outcome";
}

/// Counts one business outcome.
pub fn count(metrics: &Metrics, outcome: &'static str) {
    OutcomeCounter::<Points>::count(metrics, outcome);
}
