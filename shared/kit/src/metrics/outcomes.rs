//! A service's business outcome counter, `<name>_total{outcome}` (`jetsaga_vouchers_total`,
//! `jetsaga_points_total`, ...), declared by the service in a few lines: its name and help are a
//! [`Outcomes`] type, and [`OutcomeCounter`] registers it in the instance's registry on first use.

use super::labels::OutcomeLabel;
use super::MetricsExtension;
use crate::Metrics;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::marker::PhantomData;

/// What a service's outcome counter is called and means.
pub trait Outcomes: Send + Sync + 'static {
    /// The name without `_total`, e.g. `jetsaga_vouchers`.
    const NAME: &'static str;
    /// The `# HELP` text, e.g. `Voucher decisions, by outcome`.
    const HELP: &'static str;
}

/// The counter of `O`, one series per outcome.
#[derive(Debug)]
pub struct OutcomeCounter<O: Outcomes> {
    outcomes: Family<OutcomeLabel, Counter>,
    of: PhantomData<O>,
}

impl<O: Outcomes> MetricsExtension for OutcomeCounter<O> {
    fn register(registry: &mut Registry) -> Self {
        let outcomes = Family::default();
        registry.register(O::NAME, O::HELP, outcomes.clone());
        OutcomeCounter {
            outcomes,
            of: PhantomData,
        }
    }
}

impl<O: Outcomes> OutcomeCounter<O> {
    /// Counts one `outcome` on `metrics`' instance.
    pub fn count(metrics: &Metrics, outcome: &'static str) {
        metrics
            .extension::<Self>()
            .outcomes
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Widgets;

    impl Outcomes for Widgets {
        const NAME: &'static str = "test_widgets";
        const HELP: &'static str = "Widgets, by outcome";
    }

    #[test]
    fn each_instance_counts_its_own_outcomes_under_the_declared_name() {
        let (a, b) = (Metrics::new(), Metrics::new());
        OutcomeCounter::<Widgets>::count(&a, "made");
        OutcomeCounter::<Widgets>::count(&a, "made");
        OutcomeCounter::<Widgets>::count(&b, "broken");
        assert_eq!(a.counter("test_widgets_total", &[("outcome", "made")]), 2);
        assert_eq!(a.counter("test_widgets_total", &[("outcome", "broken")]), 0);
        assert_eq!(b.counter_total("test_widgets_total"), 1);
        assert!(a
            .render()
            .contains("# HELP test_widgets Widgets, by outcome"));
    }
}
