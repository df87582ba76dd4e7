//! Counters and gauges in the Prometheus text format, per instance (no global registry, so tests
//! that run several services in one process keep them apart).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use crate::health::Health;

/// A small metrics registry: counters keyed by name and labels.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(String, String), u64>>,
    gauges: Mutex<BTreeMap<(String, String), i64>>,
    health: Health,
}

fn label_text(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether this instance's consumers can pull, for `/health`.
    pub fn health(&self) -> &Health {
        &self.health
    }

    pub fn inc(&self, name: &str, labels: &[(&str, &str)]) {
        self.add(name, labels, 1);
    }

    pub fn add(&self, name: &str, labels: &[(&str, &str)], n: u64) {
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        *c.entry((name.to_owned(), label_text(labels))).or_default() += n;
    }

    pub fn set_gauge(&self, name: &str, labels: &[(&str, &str)], value: i64) {
        let mut g = self.gauges.lock().unwrap_or_else(|p| p.into_inner());
        g.insert((name.to_owned(), label_text(labels)), value);
    }

    /// The value of one counter, for tests and the stats command.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        c.get(&(name.to_owned(), label_text(labels)))
            .copied()
            .unwrap_or(0)
    }

    /// The sum of a counter over all its labels.
    pub fn counter_total(&self, name: &str) -> u64 {
        let c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        c.iter()
            .filter(|((n, _), _)| n == name)
            .map(|(_, v)| *v)
            .sum()
    }

    /// Everything, in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut last = String::new();
        let c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        for ((name, labels), value) in c.iter() {
            if *name != last {
                let _ = writeln!(out, "# TYPE {name} counter");
                last.clone_from(name);
            }
            let _ = writeln!(out, "{name}{labels} {value}");
        }
        drop(c);
        let g = self.gauges.lock().unwrap_or_else(|p| p.into_inner());
        for ((name, labels), value) in g.iter() {
            if *name != last {
                let _ = writeln!(out, "# TYPE {name} gauge");
                last.clone_from(name);
            }
            let _ = writeln!(out, "{name}{labels} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text_with_escaped_labels() {
        let m = Metrics::new();
        m.inc("jetsaga_events_handled_total", &[("consumer", "stock")]);
        m.add("jetsaga_events_handled_total", &[("consumer", "stock")], 2);
        m.inc("jetsaga_dead_letters_total", &[("kind", "a\"b")]);
        m.set_gauge("jetsaga_outbox_backlog", &[], 7);
        let text = m.render();
        assert!(text.contains("# TYPE jetsaga_events_handled_total counter"));
        assert!(text.contains("jetsaga_events_handled_total{consumer=\"stock\"} 3"));
        assert!(text.contains("jetsaga_dead_letters_total{kind=\"a\\\"b\"} 1"));
        assert!(text.contains("# TYPE jetsaga_outbox_backlog gauge\njetsaga_outbox_backlog 7"));
        assert_eq!(m.counter_total("jetsaga_events_handled_total"), 3);
    }
}
