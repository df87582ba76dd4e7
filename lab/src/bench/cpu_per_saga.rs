//! What a saga costs the CPU: each process's CPU time over the measured phases, divided by the
//! sagas they ended, in milliseconds. On a machine the system keeps busy, sagas/s is the cores
//! divided by this figure, so it says where a system's rate goes, whatever its processes are;
//! the peers' drivers report the same shares (`cpu_share_of_one_core`), so the rows read side by
//! side. The load drivers (`jetsaga bench`, `peer-drive`) are left out: they are not the system.

use super::cost::Values;
use super::report::Phase;
use std::collections::BTreeMap;

/// The processes that place the load, not the system's work.
pub const LOAD_DRIVERS: [&str; 2] = [super::sample::OWN_PROCESS, "peer-drive"];

/// The row of every process counted, added up.
pub const TOTAL: &str = "cpu ms, every process of the system";

/// Whether the processes sampled are all of the system's. Against a deployment the bench sees
/// only what it can name on this machine (PostgreSQL's processes), not the services, and a total
/// of those would read as the whole system's cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampled {
    /// Every process of the system: the rows and their total.
    Whole,
    /// Some of them: the rows, and no total.
    Part,
}

/// A process's row.
fn row(process: &str) -> String {
    format!("cpu ms {process}")
}

/// CPU per saga of a run that held each process at `shares` of one core (1.0 is one core busy
/// the whole time) while it ended `sagas_per_sec`, without the load drivers. Empty without a rate.
pub fn from_shares(shares: &BTreeMap<String, f64>, sagas_per_sec: f64) -> Values {
    if sagas_per_sec <= 0.0 {
        return Values::new();
    }
    let ms = shares
        .iter()
        .map(|(p, share)| (p.as_str(), share * 1000.0 / sagas_per_sec));
    per_saga(ms, &LOAD_DRIVERS, Sampled::Whole)
}

/// CPU per saga over `phases`, each with its CPU in percent of one core: the CPU time they used
/// divided by the sagas they ended, without the processes in `leave_out`, and their total when
/// they are the whole system. Empty when they ended none.
pub fn from_phases<'a>(
    phases: impl IntoIterator<Item = &'a Phase> + Clone,
    leave_out: &[&str],
    sampled: Sampled,
) -> Values {
    let ended: usize = phases.clone().into_iter().map(|p| p.completed).sum();
    if ended == 0 {
        return Values::new();
    }
    let mut cpu_ms: BTreeMap<&str, f64> = BTreeMap::new();
    for phase in phases {
        for (process, percent) in &phase.cpu {
            *cpu_ms.entry(process.as_str()).or_default() += percent * 10.0 * phase.seconds;
        }
    }
    let ms = cpu_ms.into_iter().map(|(p, ms)| (p, ms / ended as f64));
    per_saga(ms, leave_out, sampled)
}

/// Each process's row but `leave_out`'s, and their total if `sampled` is the whole system,
/// rounded to two decimals like the other costs.
fn per_saga<'a>(
    ms: impl Iterator<Item = (&'a str, f64)>,
    leave_out: &[&str],
    sampled: Sampled,
) -> Values {
    let round = |v: f64| (v * 100.0).round() / 100.0;
    let mut out = Values::new();
    let mut total = 0.0;
    for (process, each) in ms.filter(|(p, _)| !leave_out.contains(p)) {
        total += each;
        out.insert(row(process), round(each));
    }
    if !out.is_empty() && sampled == Sampled::Whole {
        out.insert(TOTAL.to_owned(), round(total));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::Latency;

    fn phase(completed: usize, seconds: f64, cpu: &[(&str, f64)]) -> Phase {
        Phase {
            name: "max 1".into(),
            load: "closed, 32 clients".into(),
            placed: completed,
            completed,
            refused: 0,
            lost: 0,
            seconds,
            sagas_per_sec: completed as f64 / seconds,
            latency: Latency::default(),
            outcomes: BTreeMap::new(),
            unexpected_outcomes: 0,
            cpu: cpu.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn a_process_busy_on_one_core_at_200_sagas_a_second_costs_5_ms_a_saga() {
        let shares = BTreeMap::from([
            ("postgres (all)".to_owned(), 1.0),
            ("peer-dbos".to_owned(), 0.5),
            ("peer-drive".to_owned(), 0.04),
        ]);
        let cpu = from_shares(&shares, 200.0);
        assert_eq!(cpu["cpu ms postgres (all)"], 5.0);
        assert_eq!(cpu["cpu ms peer-dbos"], 2.5);
        assert_eq!(
            cpu[TOTAL], 7.5,
            "the load driver is not the system: {cpu:?}"
        );
        assert!(!cpu.contains_key("cpu ms peer-drive"));
        assert!(from_shares(&shares, 0.0).is_empty());
    }

    #[test]
    fn phases_add_their_cpu_time_before_it_is_divided_by_their_sagas() {
        // 100 sagas in 1 s at 100% of a core, then 100 in 3 s at 50%: 2.5 core-seconds for 200.
        let phases = [
            phase(100, 1.0, &[("nats-server", 100.0), ("jetsaga bench", 5.0)]),
            phase(100, 3.0, &[("nats-server", 50.0), ("jetsaga bench", 5.0)]),
        ];
        let cpu = from_phases(&phases, &LOAD_DRIVERS, Sampled::Whole);
        assert_eq!(cpu["cpu ms nats-server"], 12.5);
        assert_eq!(cpu[TOTAL], 12.5);
        assert_eq!(from_phases(&phases, &[], Sampled::Whole)[TOTAL], 12.5 + 1.0);
        assert!(from_phases(&[phase(0, 1.0, &[("x", 1.0)])], &[], Sampled::Whole).is_empty());
    }

    #[test]
    fn a_deployment_whose_services_the_bench_cannot_see_gets_no_total() {
        let phases = [phase(100, 1.0, &[("postgres (all)", 100.0)])];
        let cpu = from_phases(&phases, &LOAD_DRIVERS, Sampled::Part);
        assert_eq!(cpu["cpu ms postgres (all)"], 10.0);
        assert!(!cpu.contains_key(TOTAL), "{cpu:?}");
    }
}
