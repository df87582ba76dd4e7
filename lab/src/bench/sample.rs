//! What the system does over time — outbox backlog, consumer lag, sagas ended — sampled twice a
//! second, and the CPU each process used, from `/proc`.

use super::watch::Watcher;
use async_nats::jetstream;
use futures::TryStreamExt;
use jetsaga_contracts::Producer;
use serde::Serialize;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// One sample.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the sampler started.
    pub t: f64,
    /// Events waiting in the five outboxes.
    pub outbox_backlog: i64,
    /// Messages not yet delivered or not yet acked, over every durable consumer.
    pub consumer_lag: u64,
    /// Sagas ended so far in this phase.
    pub ended: usize,
}

/// Samples until `stop`, then returns them.
pub async fn sample(
    pools: Vec<PgPool>,
    js: jetstream::Context,
    watcher: Watcher,
    stop: CancellationToken,
) -> Vec<Sample> {
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return samples,
            _ = tick.tick() => {}
        }
        let mut backlog = 0;
        for pool in &pools {
            backlog += sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM kit_outbox WHERE published_at IS NULL AND parked_at IS NULL",
            )
            .fetch_one(pool)
            .await
            .unwrap_or(0);
        }
        samples.push(Sample {
            t: start.elapsed().as_secs_f64(),
            outbox_backlog: backlog,
            consumer_lag: consumer_lag(&js).await,
            ended: watcher.completed_count(),
        });
    }
}

async fn consumer_lag(js: &jetstream::Context) -> u64 {
    let mut lag = 0u64;
    for producer in Producer::ALL {
        let Ok(stream) = js.get_stream_no_info(producer.stream()).await else {
            continue;
        };
        let mut consumers = stream.consumers();
        while let Ok(Some(info)) = consumers.try_next().await {
            if info.config.durable_name.is_some() {
                lag += info.num_pending + info.num_ack_pending as u64;
            }
        }
    }
    lag
}

/// CPU time (user + system) of processes, in clock ticks.
#[derive(Debug, Clone)]
pub struct CpuSnapshot {
    at: Instant,
    ticks: BTreeMap<String, u64>,
}

/// Linux reports CPU times in USER_HZ, 100 per second on every architecture it runs on.
const TICKS_PER_SEC: f64 = 100.0;

fn process_ticks(pid: u32) -> Option<u64> {
    stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// User plus system time from a line of `/proc/<pid>/stat`.
fn stat_ticks(stat: &str) -> Option<u64> {
    // The command name may hold spaces and parentheses; the fields after its last `)` do not.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Every PostgreSQL process on the machine (the postmaster and its backends), as one.
fn postgres_ticks() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .filter_map(process_ticks)
        .sum()
}

/// The name this process's own CPU is reported under: the load driver, which also hosts the null
/// saga's participants.
pub const OWN_PROCESS: &str = "jetsaga bench";

/// The CPU times now of the named processes, of every PostgreSQL process, and of this one.
pub fn cpu_snapshot(pids: &[(String, u32)]) -> CpuSnapshot {
    let mut ticks: BTreeMap<String, u64> = pids
        .iter()
        .filter_map(|(name, pid)| Some((name.clone(), process_ticks(*pid)?)))
        .collect();
    ticks.insert("postgres (all)".into(), postgres_ticks());
    if let Some(own) = process_ticks(std::process::id()) {
        ticks.insert(OWN_PROCESS.into(), own);
    }
    CpuSnapshot {
        at: Instant::now(),
        ticks,
    }
}

/// Percent of one core each process used between two snapshots.
pub fn cpu_usage(before: &CpuSnapshot, after: &CpuSnapshot) -> BTreeMap<String, f64> {
    let secs = after.at.duration_since(before.at).as_secs_f64().max(0.001);
    after
        .ticks
        .iter()
        .map(|(name, end)| {
            let start = before.ticks.get(name).copied().unwrap_or(*end);
            let used = end.saturating_sub(start) as f64 / TICKS_PER_SEC;
            (name.clone(), (used / secs * 1000.0).round() / 10.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Nothing here measures time or asserts a share of the CPU: on a busy machine any such
    // figure can fall anywhere. The readings are checked for what always holds, and the
    // arithmetic on snapshots built by hand.

    fn snapshot(at: Instant, ticks: &[(&str, u64)]) -> CpuSnapshot {
        CpuSnapshot {
            at,
            ticks: ticks.iter().map(|(n, t)| (n.to_string(), *t)).collect(),
        }
    }

    #[test]
    fn a_stat_line_gives_user_plus_system_ticks_whatever_the_command_name() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
        let tail = "S 1 1 1 0 -1 4194560 10 0 0 0 7 5 0 0 20 0 1 0 100 1000 50";
        assert_eq!(stat_ticks(&format!("42 (postgres) {tail}")), Some(12));
        assert_eq!(stat_ticks(&format!("42 (a b) (c)) {tail}")), Some(12));
        assert_eq!(stat_ticks("42 (cut short) S 1 1"), None);
        assert_eq!(stat_ticks("no parenthesis at all"), None);
    }

    #[test]
    fn this_process_cpu_time_reads_and_never_decreases_and_its_usage_is_a_finite_percentage() {
        let before = cpu_snapshot(&[("self by pid".into(), std::process::id())]);
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        let after = cpu_snapshot(&[("self by pid".into(), std::process::id())]);

        for name in [OWN_PROCESS, "self by pid", "postgres (all)"] {
            assert!(before.ticks.contains_key(name), "no reading for {name}");
            assert!(after.ticks.contains_key(name), "no reading for {name}");
        }
        for name in [OWN_PROCESS, "self by pid"] {
            assert!(
                after.ticks[name] >= before.ticks[name],
                "CPU time of {name} went back: {} then {}",
                before.ticks[name],
                after.ticks[name]
            );
        }
        let usage = cpu_usage(&before, &after);
        assert_eq!(usage.len(), after.ticks.len());
        for (name, percent) in &usage {
            assert!(
                percent.is_finite() && *percent >= 0.0,
                "{name}: {percent}% of a core"
            );
        }
    }

    #[test]
    fn usage_is_cpu_time_as_a_percentage_of_one_core_over_the_interval() {
        let t0 = Instant::now();
        let before = snapshot(t0, &[("half", 1_000), ("two cores", 0), ("idle", 5)]);
        let after = snapshot(
            t0 + Duration::from_secs(2),
            &[("half", 1_100), ("two cores", 400), ("idle", 5)],
        );
        let usage = cpu_usage(&before, &after);
        assert_eq!(usage["half"], 50.0);
        assert_eq!(usage["two cores"], 200.0);
        assert_eq!(usage["idle"], 0.0);
    }

    #[test]
    fn a_process_new_since_the_first_snapshot_or_whose_count_fell_uses_nothing_not_less() {
        let t0 = Instant::now();
        let before = snapshot(t0, &[("restarted", 900)]);
        let after = snapshot(
            t0 + Duration::from_secs(1),
            &[("restarted", 3), ("started since", 70)],
        );
        let usage = cpu_usage(&before, &after);
        assert_eq!(usage["restarted"], 0.0);
        assert_eq!(usage["started since"], 0.0);
    }

    #[test]
    fn snapshots_taken_at_the_same_instant_give_a_finite_usage() {
        let t0 = Instant::now();
        let usage = cpu_usage(
            &snapshot(t0, &[(OWN_PROCESS, 1)]),
            &snapshot(t0, &[(OWN_PROCESS, 2)]),
        );
        assert!(usage[OWN_PROCESS].is_finite() && usage[OWN_PROCESS] >= 0.0);
    }
}
