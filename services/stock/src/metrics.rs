//! The stock service's own metrics, registered in the instance's registry on first use.

use saga_kit::metrics::labels::OutcomeLabel;
use saga_kit::metrics::prometheus_client::metrics::counter::Counter;
use saga_kit::metrics::prometheus_client::metrics::family::Family;
use saga_kit::metrics::prometheus_client::registry::Registry;
use saga_kit::metrics::MetricsExtension;
use saga_kit::Metrics;

/// The business outcome counter: `jetsaga_stock_total{outcome}`, `outcome` reserved, failed or released.
pub const STOCK_TOTAL: &str = "jetsaga_stock_total";

/// The stock service's metrics.
#[derive(Debug)]
pub struct StockMetrics {
    outcomes: Family<OutcomeLabel, Counter>,
}

impl MetricsExtension for StockMetrics {
    fn register(registry: &mut Registry) -> Self {
        let outcomes = Family::default();
        registry.register(
            "jetsaga_stock",
            "Stock decisions, by outcome",
            outcomes.clone(),
        );
        StockMetrics { outcomes }
    }
}

/// Counts one business outcome.
pub fn count(metrics: &Metrics, outcome: &'static str) {
    metrics
        .extension::<StockMetrics>()
        .outcomes
        .get_or_create(&OutcomeLabel { outcome })
        .inc();
}
