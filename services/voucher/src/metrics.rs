//! The voucher service's own metrics, registered in the instance's registry on first use.

use saga_kit::metrics::labels::OutcomeLabel;
use saga_kit::metrics::prometheus_client::metrics::counter::Counter;
use saga_kit::metrics::prometheus_client::metrics::family::Family;
use saga_kit::metrics::prometheus_client::registry::Registry;
use saga_kit::metrics::MetricsExtension;
use saga_kit::Metrics;

/// The business outcome counter: `jetsaga_vouchers_total{outcome}`, `outcome` reserved, rejected, released or redeemed.
pub const VOUCHERS_TOTAL: &str = "jetsaga_vouchers_total";

/// The voucher service's metrics.
#[derive(Debug)]
pub struct VoucherMetrics {
    outcomes: Family<OutcomeLabel, Counter>,
}

impl MetricsExtension for VoucherMetrics {
    fn register(registry: &mut Registry) -> Self {
        let outcomes = Family::default();
        registry.register(
            "jetsaga_vouchers",
            "Voucher decisions, by outcome",
            outcomes.clone(),
        );
        VoucherMetrics { outcomes }
    }
}

/// Counts one business outcome.
pub fn count(metrics: &Metrics, outcome: &'static str) {
    metrics
        .extension::<VoucherMetrics>()
        .outcomes
        .get_or_create(&OutcomeLabel { outcome })
        .inc();
}
