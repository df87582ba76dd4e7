//! The Prometheus text format (0.0.4) of an OpenMetrics exposition, for readers that do not ask for
//! OpenMetrics: `curl`, `promtool check metrics`, line-based tools. The samples are the same; a
//! counter's `# HELP`/`# TYPE` name its `_total` series (OpenMetrics names the family without it),
//! and `# UNIT` and `# EOF`, which that format does not have, are left out.

use std::collections::HashSet;

/// `openmetrics` (as [`super::Metrics::render`] writes it) in the Prometheus text format.
pub(crate) fn prometheus_text(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 64 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let descriptor = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| Some((p, line.strip_prefix(p)?)));
        match descriptor {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push_str(prefix);
                out.push_str(name);
                if counters.contains(name) {
                    out.push_str("_total");
                }
                out.push(' ');
                out.push_str(tail);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_described_by_their_total_series_and_eof_is_dropped() {
        let om = "# HELP a_events Events.\n# TYPE a_events counter\na_events_total{c=\"x\"} 3\n\
                  # HELP a_open Open.\n# TYPE a_open gauge\na_open 1\n# EOF\n";
        assert_eq!(
            prometheus_text(om),
            "# HELP a_events_total Events.\n# TYPE a_events_total counter\n\
             a_events_total{c=\"x\"} 3\n# HELP a_open Open.\n# TYPE a_open gauge\na_open 1\n"
        );
    }
}
