//! The voucher service's own metrics: its business outcome counter `jetsaga_vouchers_total{outcome}`,
//! `outcome` reserved, rejected, released or redeemed, registered in the instance's registry on first use.

use saga_kit::metrics::{OutcomeCounter, Outcomes};
use saga_kit::Metrics;

/// `jetsaga_vouchers_total{outcome}`.
#[derive(Debug)]
pub struct Vouchers;

impl Outcomes for Vouchers {
    const NAME: &'static str = "jetsaga_vouchers";
    const HELP: &'static str = "Voucher decisions, by outcome";
}

/// Counts one business outcome.
pub fn count(metrics: &Metrics, outcome: &'static str) {
    OutcomeCounter::<Vouchers>::count(metrics, outcome);
}
