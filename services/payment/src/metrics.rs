//! The payment service's own metrics: its business outcome counter `jetsaga_payments_total{outcome}`,
//! `outcome` succeeded, failed or refunded, registered in the instance's registry on first use.

use saga_kit::metrics::{OutcomeCounter, Outcomes};
use saga_kit::Metrics;

/// `jetsaga_payments_total{outcome}`.
#[derive(Debug)]
pub struct Payments;

impl Outcomes for Payments {
    const NAME: &'static str = "jetsaga_payments";
    const HELP: &'static str = "Payment decisions, by outcome";
}

/// Counts one business outcome.
pub fn count(metrics: &Metrics, outcome: &'static str) {
    OutcomeCounter::<Payments>::count(metrics, outcome);
}
