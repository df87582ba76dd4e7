//! Prometheus metrics per instance, with `prometheus-client`: one [`Registry`] per [`Metrics`]
//! (no global, so tests that run several services in one process keep them apart).
//!
//! - [`kit`]: the runner's and relay's counters and histograms, and the gauges set at scrape time.
//! - [`labels`]: their typed label sets, encoded only when scraped.
//! - [`extension`]: metrics a service declares for itself ([`MetricsExtension`]).
//! - [`outcomes`]: a service's business outcome counter ([`OutcomeCounter`]).
//! - `reading`: one series read back from the exposition ([`Metrics::counter`]).
//! - `text`: the Prometheus text format for readers that do not ask for OpenMetrics.

pub mod extension;
pub mod kit;
pub mod labels;
pub mod outcomes;
mod reading;
mod text;

pub use extension::MetricsExtension;
pub use kit::KitMetrics;
pub use outcomes::{OutcomeCounter, Outcomes};
pub use prometheus_client;

use crate::health::Health;
use extension::Extensions;
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};

/// The content type of [`Metrics::render`]: OpenMetrics, which Prometheus asks for.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of [`Metrics::render_prometheus_text`]: the older Prometheus text format,
/// which `promtool check metrics` and line-based tools read.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One instance's metrics and consumer health.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    kit: KitMetrics,
    extensions: Extensions,
    health: Health,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let kit = KitMetrics::register(&mut registry);
        Metrics {
            registry: Mutex::new(registry),
            kit,
            extensions: Extensions::default(),
            health: Health::default(),
        }
    }

    /// Whether this instance's consumers can pull, for `/health`.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The kit's own metrics.
    pub fn kit(&self) -> &KitMetrics {
        &self.kit
    }

    /// A service's own metrics, registered in this instance's registry on first use.
    pub fn extension<T: MetricsExtension>(&self) -> Arc<T> {
        self.extensions.get_or_register::<T>(&self.registry)
    }

    /// Everything, in the OpenMetrics text format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .unwrap_or_else(|_| unreachable!("writing to a String cannot fail"));
        out
    }

    /// Everything, in the Prometheus text format ([`TEXT_CONTENT_TYPE`]).
    pub fn render_prometheus_text(&self) -> String {
        text::prometheus_text(&self.render())
    }

    /// The value of one counter series (`name` with its `_total`; `labels` in any order), 0 when
    /// absent: for tests and tools, read from the exposition as a scraper would.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let text = self.render();
        reading::samples(&text)
            .filter(|s| s.name == name && reading::labels_are(s, labels))
            .map(|s| s.value as u64)
            .sum()
    }

    /// The sum of a counter over all its labels.
    pub fn counter_total(&self, name: &str) -> u64 {
        let text = self.render();
        reading::samples(&text)
            .filter(|s| s.name == name)
            .map(|s| s.value as u64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::labels::{ConsumerLabel, DeadLetterLabels, OutcomeLabel};
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;

    #[derive(Debug)]
    struct Business(Family<OutcomeLabel, Counter>);

    impl MetricsExtension for Business {
        fn register(registry: &mut Registry) -> Self {
            let family = Family::default();
            registry.register("jetsaga_things", "Things", family.clone());
            Business(family)
        }
    }

    #[test]
    fn renders_openmetrics_with_the_names_of_before() {
        let m = Metrics::new();
        let stock = ConsumerLabel { consumer: "stock" };
        m.kit().events_handled.get_or_create(&stock).inc();
        m.kit().events_handled.get_or_create(&stock).inc_by(2);
        m.kit()
            .dead_letters
            .get_or_create(&DeadLetterLabels {
                consumer: "stock",
                kind: "rejected",
            })
            .inc();
        m.kit().outbox_backlog.set(7);
        let text = m.render();
        assert!(text.contains("# TYPE jetsaga_events_handled counter"));
        assert!(text.contains("jetsaga_events_handled_total{consumer=\"stock\"} 3\n"));
        // Label values are names from the code (consumers, kinds, outcomes): none needs escaping.
        assert!(text.contains("jetsaga_dead_letters_total{consumer=\"stock\",kind=\"rejected\"} 1"));
        assert!(text.contains("# TYPE jetsaga_outbox_backlog gauge\n"));
        assert!(text.contains("\njetsaga_outbox_backlog 7\n"));
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(m.counter_total("jetsaga_events_handled_total"), 3);
        assert_eq!(
            m.counter(
                "jetsaga_dead_letters_total",
                &[("kind", "rejected"), ("consumer", "stock")]
            ),
            1
        );
    }

    #[test]
    fn histograms_count_their_observations_per_label_set() {
        let m = Metrics::new();
        m.kit().observe_handler("stock-on-orders", "applied", 0.003);
        m.kit().observe_handler("stock-on-orders", "applied", 0.5);
        m.kit().relay_publish_duration.observe(0.002);
        let text = m.render();
        assert!(text.contains("# TYPE jetsaga_handler_duration_seconds histogram"));
        assert!(text.contains(
            "jetsaga_handler_duration_seconds_count{consumer=\"stock-on-orders\",outcome=\"applied\"} 2"
        ));
        assert!(text.contains("jetsaga_relay_publish_duration_seconds_count 1"));
    }

    #[test]
    fn a_service_extension_is_registered_once_per_instance() {
        let (a, b) = (Metrics::new(), Metrics::new());
        let outcome = OutcomeLabel { outcome: "won" };
        a.extension::<Business>().0.get_or_create(&outcome).inc();
        a.extension::<Business>().0.get_or_create(&outcome).inc();
        assert_eq!(a.counter("jetsaga_things_total", &[("outcome", "won")]), 2);
        assert_eq!(b.counter_total("jetsaga_things_total"), 0);
        assert_eq!(
            a.render().matches("# TYPE jetsaga_things counter").count(),
            1
        );
    }
}
