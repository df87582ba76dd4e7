//! The payment service's own metrics, registered in the instance's registry on first use.

use saga_kit::metrics::labels::OutcomeLabel;
use saga_kit::metrics::prometheus_client::metrics::counter::Counter;
use saga_kit::metrics::prometheus_client::metrics::family::Family;
use saga_kit::metrics::prometheus_client::registry::Registry;
use saga_kit::metrics::MetricsExtension;
use saga_kit::Metrics;

/// The business outcome counter: `jetsaga_payments_total{outcome}`, `outcome` succeeded, failed or refunded.
pub const PAYMENTS_TOTAL: &str = "jetsaga_payments_total";

/// The payment service's metrics.
#[derive(Debug)]
pub struct PaymentMetrics {
    outcomes: Family<OutcomeLabel, Counter>,
}

impl MetricsExtension for PaymentMetrics {
    fn register(registry: &mut Registry) -> Self {
        let outcomes = Family::default();
        registry.register(
            "jetsaga_payments",
            "Payment decisions, by outcome",
            outcomes.clone(),
        );
        PaymentMetrics { outcomes }
    }
}

/// Counts one business outcome.
pub fn count(metrics: &Metrics, outcome: &'static str) {
    metrics
        .extension::<PaymentMetrics>()
        .outcomes
        .get_or_create(&OutcomeLabel { outcome })
        .inc();
}
