//! `jetsaga reconcile --streams [--service S] [--window 24h] [--dry-run]`: the stream audit of
//! [`saga_kit::stream_audit`] for each service. Each service's outbox rows published within the
//! window are looked for in its stream (its dead-letter copies in DLQ), and every event a stream no
//! longer holds is published again under its own `Nats-Msg-Id` and `ce-id`.
//!
//! The audit reads the databases (read-only transactions) and writes only to NATS. Exit codes,
//! so that an operator can alert on a loss even when it was repaired:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | every event published in the window is in its stream |
//! | 3 | events were missing, and every one is republished now: NATS lost writes it had acknowledged |
//! | 1 | events are still missing: `--dry-run`, or a republish the stream dropped as a duplicate (its dedupe window still holds the Msg-Id; run again after it) |
//! | 2 | the audit could not run (a database or NATS unreachable, a stream missing, bad arguments) |

use crate::cli::Outcome;
use crate::output::{self, Table};
use crate::targets::{ServiceName, Targets};
use anyhow::Context as _;
use clap::ValueEnum as _;
use saga_kit::stream_audit::{self, AuditConfig, StreamReport, StreamScope};
use serde::Serialize;
use std::process::ExitCode;
use std::time::Duration;

/// Every missing event republished: nothing is left to do, but NATS lost acknowledged writes.
pub const EXIT_REPUBLISHED: u8 = 3;
/// Events are still missing.
pub const EXIT_MISSING: u8 = 1;

/// What `--streams` was asked to do.
#[derive(Debug, Clone)]
pub struct StreamsArgs {
    /// One service, or all five.
    pub service: Option<ServiceName>,
    pub window: Duration,
    pub dry_run: bool,
}

/// Parses a window: `90s`, `15m`, `2h`, `1d`.
pub fn parse_window(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a window like 90s, 15m, 2h or 1d");
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(format!("{s:?}: the window must be longer than nothing"));
    }
    n.checked_mul(unit_secs)
        .map(Duration::from_secs)
        .ok_or_else(bad)
}

/// A window in the largest unit that divides it: `1d`, `90s`, and 9000 s as `150m`.
fn window_text(window: Duration) -> String {
    let secs = window.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs % size == 0 {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

/// One stream's report with the service it belongs to.
#[derive(Debug, Serialize)]
struct ServiceReport {
    service: &'static str,
    #[serde(flatten)]
    report: StreamReport,
}

/// The whole run, as `--json` prints it.
#[derive(Debug, Serialize)]
struct Audit {
    window: String,
    window_secs: u64,
    dry_run: bool,
    streams: Vec<ServiceReport>,
    checked: u64,
    found: u64,
    missing: u64,
    republished: u64,
    deduped: u64,
    /// Missing and not republished.
    unresolved: u64,
    /// The time the audits took (connecting not counted), and the rows checked per second in it.
    elapsed_secs: f64,
    rows_per_sec: f64,
    /// `clean`, `republished` or `missing`, as the exit code says.
    outcome: &'static str,
    exit_code: u8,
}

impl Audit {
    /// `elapsed`: the time the audits took, snapshots included.
    fn new(args: &StreamsArgs, streams: Vec<ServiceReport>, elapsed: Duration) -> Self {
        let sum = |f: fn(&StreamReport) -> u64| streams.iter().map(|s| f(&s.report)).sum::<u64>();
        let (checked, found, missing) = (sum(|r| r.checked), sum(|r| r.found), sum(|r| r.missing));
        let (republished, deduped) = (sum(|r| r.republished), sum(|r| r.deduped));
        let unresolved = sum(StreamReport::unresolved);
        let (outcome, exit_code) = match (missing, unresolved) {
            (0, _) => ("clean", 0),
            (_, 0) => ("republished", EXIT_REPUBLISHED),
            _ => ("missing", EXIT_MISSING),
        };
        Audit {
            window: window_text(args.window),
            window_secs: args.window.as_secs(),
            dry_run: args.dry_run,
            streams,
            checked,
            found,
            missing,
            republished,
            deduped,
            unresolved,
            elapsed_secs: elapsed.as_secs_f64(),
            rows_per_sec: if elapsed.is_zero() {
                0.0
            } else {
                checked as f64 / elapsed.as_secs_f64()
            },
            outcome,
            exit_code,
        }
    }

    fn render(&self) -> String {
        let since = self
            .streams
            .first()
            .map(|s| output::timestamp(s.report.window_start))
            .unwrap_or_default();
        let mut text = format!(
            "stream audit of the rows published in the last {} (since {since}){}\n",
            self.window,
            if self.dry_run {
                ", dry run: nothing is republished"
            } else {
                ""
            }
        );
        let mut table = Table::new([
            "SERVICE",
            "STREAM",
            "SUBJECTS",
            "CHECKED",
            "FOUND",
            "MISSING",
            "REPUBLISHED",
            "DEDUPED",
            "READ",
            "LAST SEQ",
        ]);
        for s in &self.streams {
            let r = &s.report;
            table.row([
                s.service.to_owned(),
                r.stream.clone(),
                r.subjects.clone(),
                r.checked.to_string(),
                r.found.to_string(),
                r.missing.to_string(),
                r.republished.to_string(),
                r.deduped.to_string(),
                r.read.to_string(),
                r.last_seq.to_string(),
            ]);
        }
        text.push_str(&table.render());
        for s in self.streams.iter().filter(|s| s.report.retention_capped) {
            text.push_str(&format!(
                "{} keeps events for less than the window: the {} rows of {} were checked from \
                 {} on (older events expired by design)\n",
                s.report.stream,
                s.service,
                s.report.subjects,
                output::timestamp(s.report.window_start)
            ));
        }
        let mut ids = Table::new(["SERVICE", "STREAM", "EVENT", "OUTCOME"]);
        let mut more = Vec::new();
        for s in &self.streams {
            let r = &s.report;
            let listed = [
                (&r.republished_ids, r.republished, "republished"),
                (&r.deduped_ids, r.deduped, "deduped: still missing"),
            ];
            for (list, count, outcome) in listed {
                for id in list.iter() {
                    ids.row([s.service, &r.stream, &id.to_string(), outcome]);
                }
                if count > list.len() as u64 {
                    more.push(format!(
                        "{} more {outcome} on {} ({})",
                        count - list.len() as u64,
                        r.stream,
                        s.service
                    ));
                }
            }
            if self.dry_run {
                for id in &r.missing_ids {
                    ids.row([s.service, &r.stream, &id.to_string(), "missing"]);
                }
                if r.missing > r.missing_ids.len() as u64 {
                    more.push(format!(
                        "{} more missing on {} ({})",
                        r.missing - r.missing_ids.len() as u64,
                        r.stream,
                        s.service
                    ));
                }
            }
        }
        if !ids.is_empty() {
            text.push('\n');
            text.push_str(&ids.render());
            for line in more {
                text.push_str(&format!("… and {line}\n"));
            }
        }
        text.push_str(&self.summary());
        text.push('\n');
        text
    }

    fn summary(&self) -> String {
        let speed = format!(
            "{} rows checked in {:.2} s ({:.0} rows/s)",
            self.checked, self.elapsed_secs, self.rows_per_sec
        );
        match self.outcome {
            "clean" => {
                format!("clean: every event published in the window is in its stream; {speed}")
            }
            "republished" => format!(
                "{} events were missing from their streams and are republished under their own \
                 ids (NATS lost writes it had acknowledged; exit {EXIT_REPUBLISHED}); {speed}",
                self.missing
            ),
            _ => {
                let mut text = format!("{} events missing", self.missing);
                if self.republished > 0 {
                    text.push_str(&format!(", {} republished", self.republished));
                }
                text.push_str(&format!(", {} still missing", self.unresolved));
                if self.dry_run {
                    text.push_str(" (dry run: run without --dry-run to republish them)");
                }
                if self.deduped > 0 {
                    let window = self
                        .streams
                        .iter()
                        .filter(|s| s.report.deduped > 0)
                        .map(|s| s.report.duplicate_window)
                        .max()
                        .unwrap_or_default();
                    text.push_str(&format!(
                        " ({} dropped by their stream as duplicates: it still remembers their \
                         Msg-Id; run again after its dedupe window of {})",
                        self.deduped,
                        window_text(window.max(Duration::from_secs(1)))
                    ));
                }
                format!("{text}; {speed}")
            }
        }
    }
}

/// Audits the streams of each service asked for, one after another.
pub async fn run(args: StreamsArgs, targets: &Targets, json: bool) -> Outcome {
    let services: Vec<ServiceName> = match args.service {
        Some(s) => vec![s],
        None => ServiceName::value_variants().to_vec(),
    };
    let js = targets.nats().await?;
    let config = AuditConfig {
        window: args.window,
        republish: !args.dry_run,
        ..AuditConfig::default()
    };
    let mut streams = Vec::new();
    let mut elapsed = Duration::ZERO;
    for service in services {
        let producer = service.producer();
        let pool = targets.read_only_pool(producer).await?;
        let started = std::time::Instant::now();
        let reports = stream_audit::audit(&pool, &js, &StreamScope::of_service(producer), &config)
            .await
            .with_context(|| format!("auditing the streams of the {producer} service"))?;
        elapsed += started.elapsed();
        pool.close().await;
        streams.extend(reports.into_iter().map(|report| ServiceReport {
            service: producer.service(),
            report,
        }));
    }
    let audit = Audit::new(&args, streams, elapsed);
    if json {
        output::json(&audit)?;
    } else {
        print!("{}", audit.render());
    }
    Ok(ExitCode::from(audit.exit_code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_seconds_minutes_hours_or_days() {
        assert_eq!(parse_window("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_window("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_window("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_window("1d"), Ok(Duration::from_secs(86_400)));
        for bad in [
            "",
            "h",
            "1",
            "1w",
            "-1h",
            "1.5h",
            "0d",
            "99999999999999999999d",
        ] {
            assert!(parse_window(bad).is_err(), "{bad}");
        }
        assert_eq!(window_text(Duration::from_secs(86_400)), "1d");
        assert_eq!(window_text(Duration::from_secs(9000)), "150m");
        assert_eq!(window_text(Duration::from_secs(90)), "90s");
    }

    fn report(missing: u64, republished: u64, deduped: u64) -> ServiceReport {
        ServiceReport {
            service: "payment",
            report: StreamReport {
                stream: "PAYMENTS".into(),
                subjects: "payments.>".into(),
                window_start: time::OffsetDateTime::UNIX_EPOCH,
                retention_capped: false,
                last_seq: 10,
                read: 10,
                checked: 10,
                found: 10 - missing,
                missing,
                republished,
                deduped,
                missing_ids: Vec::new(),
                republished_ids: Vec::new(),
                deduped_ids: Vec::new(),
                duplicate_window: Duration::from_secs(120),
                elapsed: Duration::from_millis(10),
            },
        }
    }

    #[test]
    fn the_exit_code_says_whether_anything_was_missing_and_whether_it_still_is() {
        let args = |dry_run| StreamsArgs {
            service: None,
            window: Duration::from_secs(86_400),
            dry_run,
        };
        let clean = Audit::new(
            &args(false),
            vec![report(0, 0, 0)],
            Duration::from_millis(20),
        );
        assert_eq!((clean.outcome, clean.exit_code), ("clean", 0));
        let fixed = Audit::new(
            &args(false),
            vec![report(2, 2, 0), report(0, 0, 0)],
            Duration::from_millis(20),
        );
        assert_eq!((fixed.outcome, fixed.exit_code), ("republished", 3));
        let dry = Audit::new(
            &args(true),
            vec![report(2, 0, 0)],
            Duration::from_millis(20),
        );
        assert_eq!((dry.outcome, dry.exit_code), ("missing", 1));
        assert!(dry.summary().contains("--dry-run"), "{}", dry.summary());
        let deduped = Audit::new(
            &args(false),
            vec![report(2, 1, 1)],
            Duration::from_millis(20),
        );
        assert_eq!((deduped.exit_code, deduped.unresolved), (1, 1));
        assert!(
            deduped.summary().contains("dedupe window of 2m"),
            "{}",
            deduped.summary()
        );
    }
}
