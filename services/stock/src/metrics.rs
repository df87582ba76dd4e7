//! The stock service's own metrics: its business outcome counter `jetsaga_stock_total{outcome}`,
//! `outcome` reserved, failed or released, registered in the instance's registry on first use.

use saga_kit::metrics::{OutcomeCounter, Outcomes};
use saga_kit::Metrics;

/// `jetsaga_stock_total{outcome}`.
#[derive(Debug)]
pub struct Stock;

impl Outcomes for Stock {
    const NAME: &'static str = "jetsaga_stock";
    const HELP: &'static str = "Stock decisions, by outcome";
}

/// Counts one business outcome.
pub fn count(metrics: &Metrics, outcome: &'static str) {
    OutcomeCounter::<Stock>::count(metrics, outcome);
}
