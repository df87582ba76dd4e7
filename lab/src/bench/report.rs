//! The benchmark's report: a table for people, and one JSON line for programs (the last line).

use super::cost::PerSaga;
use super::watch::Completed;
use jetsaga_cli::output::Table;
use serde::Serialize;
use std::collections::BTreeMap;

/// The value at percentile `p` (0..=100) of sorted values, nearest rank; 0 when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Saga latency, POST to terminal event, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    pub fn of(completed: &[Completed]) -> Latency {
        let mut ms: Vec<f64> = completed.iter().map(Completed::latency_ms).collect();
        ms.sort_by(f64::total_cmp);
        let round = |v: f64| (v * 10.0).round() / 10.0;
        Latency {
            count: ms.len(),
            p50: round(percentile(&ms, 50.0)),
            p95: round(percentile(&ms, 95.0)),
            p99: round(percentile(&ms, 99.0)),
            max: round(ms.last().copied().unwrap_or(0.0)),
        }
    }
}

/// One phase of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub name: String,
    /// `closed, 32 clients` or `open, 250/s`.
    pub load: String,
    pub placed: usize,
    pub completed: usize,
    /// Requests not accepted (not orders).
    pub refused: usize,
    /// Accepted and never ended.
    pub lost: usize,
    pub seconds: f64,
    pub sagas_per_sec: f64,
    pub latency: Latency,
    /// How the sagas ended: `CONFIRMED`, `CANCELLED:payment_failed`, ...
    pub outcomes: BTreeMap<String, usize>,
    /// Sagas that ended otherwise than the load built them to.
    pub unexpected_outcomes: usize,
    /// Percent of one core, per process.
    pub cpu: BTreeMap<String, f64>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// `default` (JetStream's default sync, PostgreSQL `synchronous_commit=off`) or `durable`
    /// (JetStream `sync_interval: always`, PostgreSQL `synchronous_commit=on`).
    pub mode: &'static str,
    pub postgres_synchronous_commit: String,
    pub instances: usize,
    pub phases: Vec<Phase>,
    pub sagas_per_sec: f64,
    pub null_sagas_per_sec: f64,
    /// sagas_per_sec / null_sagas_per_sec, both measured in this run.
    pub ratio: f64,
    /// What one saga of the maximum-rate rounds cost PostgreSQL and NATS (see [`super::cost`]).
    pub per_saga: PerSaga,
    /// The same for the null saga's rounds.
    pub null_per_saga: PerSaga,
    /// Whether `pg statements` were counted (the server preloads `pg_stat_statements`).
    pub statements_counted: bool,
    pub half_rate_per_sec: f64,
    pub p99_at_half_rate_ms: f64,
    pub orders_lost: usize,
    pub invariant_violations: usize,
    /// The first violations, as the reconciler reports them.
    pub violations: Vec<String>,
    /// Nothing lost and no violation: the figures count.
    pub passed: bool,
    pub plot: Option<String>,
    /// With `--peers`: jetsaga and each peer of the same run, jetsaga first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub side_by_side: Vec<super::peers::Row>,
}

impl BenchReport {
    pub fn render(&self) -> String {
        let mut t = Table::new([
            "PHASE", "LOAD", "PLACED", "ENDED", "LOST", "SAGAS/S", "P50 MS", "P95 MS", "P99 MS",
            "MAX MS",
        ]);
        for p in &self.phases {
            t.row([
                p.name.clone(),
                p.load.clone(),
                p.placed.to_string(),
                p.completed.to_string(),
                p.lost.to_string(),
                format!("{:.1}", p.sagas_per_sec),
                format!("{:.1}", p.latency.p50),
                format!("{:.1}", p.latency.p95),
                format!("{:.1}", p.latency.p99),
                format!("{:.1}", p.latency.max),
            ]);
        }
        let mut text = format!(
            "jetsaga bench, {} mode (PostgreSQL synchronous_commit={}), {} instance(s) per service\n",
            self.mode, self.postgres_synchronous_commit, self.instances
        );
        text.push_str(&t.render());
        text.push_str("\nCPU, % of one core\n");
        let names: std::collections::BTreeSet<&String> =
            self.phases.iter().flat_map(|p| p.cpu.keys()).collect();
        let mut cpu = Table::new(
            std::iter::once("PROCESS".to_owned())
                .chain(self.phases.iter().map(|p| p.name.to_uppercase())),
        );
        for name in names {
            cpu.row(
                std::iter::once(name.clone()).chain(self.phases.iter().map(|p| {
                    p.cpu
                        .get(name)
                        .map(|v| format!("{v:.0}"))
                        .unwrap_or_else(|| "-".into())
                })),
            );
        }
        text.push_str(&cpu.render());
        let max: Vec<&Phase> = self
            .phases
            .iter()
            .filter(|p| p.name.starts_with("max"))
            .collect();
        if !max.is_empty() {
            let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
            for p in &max {
                for (k, v) in &p.outcomes {
                    *outcomes.entry(k).or_insert(0) += v;
                }
            }
            let list: Vec<String> = outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
            text.push_str(&format!(
                "\noutcomes at max: {} ({} not as built)\n",
                list.join(", "),
                max.iter().map(|p| p.unexpected_outcomes).sum::<usize>()
            ));
        }
        text.push_str(&self.render_costs());
        text.push_str(&format!(
            "ratio = sagas_per_sec / null_saga_per_sec, median of the rounds = {:.2} (medians {:.1} and {:.1})\n",
            self.ratio, self.sagas_per_sec, self.null_sagas_per_sec
        ));
        text.push_str(&format!(
            "p99 at half the maximum rate ({:.0}/s): {:.1} ms\n",
            self.half_rate_per_sec, self.p99_at_half_rate_ms
        ));
        text.push_str(&format!(
            "orders lost: {}, invariant violations: {}\n",
            self.orders_lost, self.invariant_violations
        ));
        for v in &self.violations {
            text.push_str(&format!("  violation: {v}\n"));
        }
        if let Some(plot) = &self.plot {
            text.push_str(&format!("latency over time: {plot}\n"));
        }
        if !self.side_by_side.is_empty() {
            text.push_str(&super::peers::render(&self.side_by_side));
        }
        text.push_str(if self.passed {
            "PASSED: nothing lost, no invariant violated\n"
        } else {
            "FAILED: orders were lost or invariants violated; the figures do not count\n"
        });
        text
    }
}

impl BenchReport {
    /// Per saga, what the maximum-rate rounds cost, beside the null saga's.
    fn render_costs(&self) -> String {
        if self.per_saga.0.is_empty() {
            return String::new();
        }
        let t = super::cost::table(&[
            ("JETSAGA", &self.per_saga.0),
            ("NULL SAGA", &self.null_per_saga.0),
        ]);
        let mut text = String::from("\nWork per saga at the maximum rate\n");
        text.push_str(&t.render());
        if !self.statements_counted {
            text.push_str(
                "(no pg statements: the server does not preload pg_stat_statements; \
                 shared_preload_libraries = 'pg_stat_statements' adds them)\n",
            );
        }
        text
    }
}

/// The counts of how sagas ended, and how many ended otherwise than built.
pub fn outcomes(completed: &[Completed]) -> (BTreeMap<String, usize>, usize) {
    let mut counts = BTreeMap::new();
    let mut unexpected = 0;
    for c in completed {
        let ended = match &c.reason {
            Some(reason) => reason.clone(),
            None => "confirmed".to_owned(),
        };
        if ended != c.expected {
            unexpected += 1;
        }
        let key = match &c.reason {
            Some(reason) => format!("CANCELLED:{reason}"),
            None => c.status.to_owned(),
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    (counts, unexpected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[], 99.0), 0.0);
        assert_eq!(percentile(&[7.0], 50.0), 7.0);
    }
}
