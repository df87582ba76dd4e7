//! `jetsaga replay --service S [--since TIME | --from-seq N | --from-scratch | --verify]`: a
//! service's state rebuilt from the streams (see `saga_kit::replay`): the dead letters and
//! operators' decisions, then the facts of its own stream, then the inputs it never decided.
//!
//! For a database restored from a backup: stop the service, restore, run
//! `jetsaga replay --service S` (each source starts where the restored database says it is safe;
//! `--since` can only start earlier), start the service. Re-emitted events keep their
//! deterministic ids, so other services dedupe them. `--verify` rebuilds into a scratch database
//! and compares it with the live one, and never writes to the live one.

mod verify;

pub use verify::rebuild_and_compare;

use crate::cli::Outcome;
use crate::output::{self, Table};
use crate::progress;
use crate::targets::{ServiceName, Targets};
use anyhow::Context as _;
use clap::{ArgGroup, Args};
use indicatif::ProgressBar;
use jetsaga_contracts::Producer;
use saga_kit::replay::{Progress, Replay, ReplayFrom, ReplayStart, ReplaySummary, Step};
use sqlx::migrate::Migrator;
use sqlx::PgPool;
use std::process::ExitCode;
use std::str::FromStr;
use time::OffsetDateTime;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("start").args(["from_seq", "since", "from_scratch", "verify"])))]
pub struct ReplayArgs {
    /// The service whose inputs are replayed.
    #[arg(long)]
    pub service: ServiceName,
    /// Start at this stream sequence: `N` for every stream the service reads, or `STREAM=N` for
    /// one (repeatable; a stream without its own starts at the bare `N`, or where the database says
    /// it is safe). A start later than the safe one is moved to it, and said.
    #[arg(long, value_name = "N|STREAM=N")]
    pub from_seq: Vec<SeqStart>,
    /// Start at messages stored at or after this time: RFC 3339 (`2026-11-21T10:00:00Z`) or an
    /// age (`90s`, `15m`, `2h`, `1d`); or earlier, where the database says it is safe. Without any
    /// start, each source starts where the database says it is safe.
    #[arg(long, value_name = "TIME")]
    pub since: Option<Since>,
    /// Rebuild an empty database from the streams alone (migrations are run first).
    #[arg(long)]
    pub from_scratch: bool,
    /// Rebuild into a scratch database from the streams alone and compare every business row
    /// with the live database; exit 1 on any difference. Never writes to the live database.
    #[arg(long)]
    pub verify: bool,
    /// With `--verify`: rebuild into this (empty) database instead of creating a scratch one on
    /// the live database's server (which needs the CREATEDB privilege).
    #[arg(long, value_name = "URL", requires = "verify")]
    pub scratch_url: Option<String>,
    /// With `--verify`: keep the scratch database for inspection instead of dropping it.
    #[arg(long, requires = "verify")]
    pub keep_scratch: bool,
    /// Failures per message before it is dead-lettered, as in the service.
    #[arg(long, default_value_t = 5)]
    pub max_failures: i64,
}

/// One `--from-seq` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeqStart {
    All(u64),
    Stream(String, u64),
}

impl FromStr for SeqStart {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let seq = |n: &str| {
            n.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("`{n}` is not a stream sequence (1 or more)"))
        };
        match s.split_once('=') {
            None => Ok(SeqStart::All(seq(s)?)),
            Some((stream, n)) => {
                let stream = stream.to_ascii_uppercase();
                if Producer::from_stream(&stream).is_none() {
                    return Err(format!(
                        "`{stream}` is not a stream (ORDERS, VOUCHERS, POINTS, PAYMENTS, STOCK)"
                    ));
                }
                Ok(SeqStart::Stream(stream, seq(n)?))
            }
        }
    }
}

/// A `--since` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Since(pub OffsetDateTime);

impl FromStr for Since {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(t) = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
            return Ok(Since(t));
        }
        let (n, unit) = s.split_at(s.len().saturating_sub(1));
        let n: i64 = n.parse().map_err(|_| {
            format!("`{s}` is neither an RFC 3339 time (2026-11-21T10:00:00Z) nor an age (90s, 15m, 2h, 1d)")
        })?;
        let secs = match unit {
            "s" => n,
            "m" => n * 60,
            "h" => n * 3600,
            "d" => n * 86_400,
            _ => return Err(format!("`{s}`: an age ends in s, m, h or d")),
        };
        Ok(Since(
            OffsetDateTime::now_utc() - time::Duration::seconds(secs),
        ))
    }
}

/// The start the arguments ask for.
pub fn start(args: &ReplayArgs) -> ReplayStart {
    if args.from_scratch || args.verify {
        return ReplayStart::from(ReplayFrom::Beginning);
    }
    if let Some(Since(t)) = args.since {
        return ReplayStart::from(ReplayFrom::Time(t));
    }
    let mut start = ReplayStart::from(ReplayFrom::Saved);
    for s in &args.from_seq {
        match s {
            SeqStart::All(n) => start.default = ReplayFrom::Sequence(*n),
            SeqStart::Stream(stream, n) => {
                start.streams.insert(stream.clone(), *n);
            }
        }
    }
    start
}

fn migrations(producer: Producer) -> &'static Migrator {
    crate::participants::of(producer).migrations
}

/// The business state `--verify` compares.
fn state_tables(producer: Producer) -> &'static [saga_kit::facts::StateTable] {
    crate::participants::of(producer).state
}

/// The service's consumers and restorer, from the same declarations the service runs.
fn wire(replay: &mut Replay, producer: Producer) {
    (crate::participants::of(producer).wire_replay)(replay)
}

/// `--from-scratch` only rebuilds a database that holds nothing yet.
async fn ensure_empty(pool: &PgPool, producer: Producer) -> anyhow::Result<()> {
    let (outbox, inbox): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM kit_outbox), (SELECT count(*) FROM kit_inbox)",
    )
    .fetch_one(pool)
    .await
    .with_context(|| format!("checking that the {producer} database is empty"))?;
    if outbox + inbox > 0 {
        anyhow::bail!(
            "the {producer} database is not empty ({outbox} outbox and {inbox} inbox rows): \
             --from-scratch rebuilds an empty database; drop and create it first, or replay \
             --since/--from-seq to catch up"
        );
    }
    Ok(())
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn total(&self, messages: u64) {
        self.0.set_length(messages);
    }

    fn step(&self, _source: &str, _step: &Step) {
        self.0.inc(1);
    }
}

pub async fn run(args: ReplayArgs, targets: &Targets, json: bool) -> Outcome {
    if args.verify {
        return verify::run(&args, targets, json).await;
    }
    let producer = args.service.producer();
    let pool = targets.pool(producer).await?;
    saga_kit::migrate::migrate(&pool, Some(migrations(producer)))
        .await
        .with_context(|| format!("migrating the {producer} database"))?;
    if args.from_scratch {
        ensure_empty(&pool, producer).await?;
    }
    let js = targets.nats().await?;
    let summary = rebuild(producer, pool, js, &start(&args), args.max_failures).await?;
    if json {
        output::json(&summary)?;
    } else {
        print!("{}", render(&summary));
    }
    Ok(if summary.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs one replay of `producer` into `pool`, with a progress bar.
async fn rebuild(
    producer: Producer,
    pool: PgPool,
    js: async_nats::jetstream::Context,
    start: &ReplayStart,
    max_failures: i64,
) -> anyhow::Result<ReplaySummary> {
    let mut replay = Replay::new(producer, pool, js, max_failures.max(1));
    wire(&mut replay, producer);
    let bar = Bar(progress::bar(Some(0), &format!("replay {producer}")));
    let summary = replay
        .run(start, &bar)
        .await
        .with_context(|| format!("replaying the {producer} service"))?;
    bar.0.finish_and_clear();
    Ok(summary)
}

/// The summary: one row per source, a total, and the failures.
pub fn render(summary: &ReplaySummary) -> String {
    let mut t = Table::new([
        "SOURCE",
        "STREAM",
        "SEQ",
        "SEEN",
        "RECORDED",
        "RESTORED",
        "ALREADY KNOWN",
        "APPLIED",
        "ALREADY APPLIED",
        "DEAD-LETTERED",
        "FOREIGN",
        "DIVERGED",
        "FAILED",
    ]);
    let total = summary.total();
    for s in summary.sources.iter().chain(std::iter::once(&total)) {
        let seq = if s.source == "total" {
            String::new()
        } else if s.from_seq > s.to_seq {
            "nothing new".to_owned()
        } else {
            format!("{}..{}", s.from_seq, s.to_seq)
        };
        t.row([
            s.source.clone(),
            s.stream.clone(),
            seq,
            s.seen.to_string(),
            s.recorded.to_string(),
            s.restored.to_string(),
            s.already_known.to_string(),
            s.applied.to_string(),
            s.already_applied.to_string(),
            s.dead_lettered.to_string(),
            s.foreign.to_string(),
            s.diverged.to_string(),
            s.failed.to_string(),
        ]);
    }
    let mut text = format!("replay of the {} service\n", summary.service);
    text.push_str(&t.render());
    text.push_str(&format!(
        "{} events seen: {} decisions and {} root events applied as recorded, {} inputs handled now, \
         {} already applied; {} dead-letter records read; {} outbox rows already in the stream marked published\n",
        total.seen,
        total.recorded,
        total.restored,
        total.applied,
        total.already_applied,
        summary.dead_letter_records,
        summary.outbox_marked_published
    ));
    for n in &summary.notes {
        text.push_str(&format!("note: {n}\n"));
    }
    for d in &summary.divergences {
        text.push_str(&format!("DIVERGED: {d}\n"));
    }
    for f in &summary.failures {
        text.push_str(&format!("failed: {f}\n"));
    }
    if total.diverged > 0 {
        text.push_str(&format!(
            "{} divergence(s): a handler run again says something else under an id the stream holds; \
             nothing diverging was committed and no outbox row was marked published. The database \
             does not match its history: find out why before the service runs on it\n",
            total.diverged
        ));
    }
    if total.failed > 0 {
        text.push_str("some messages failed: fix the cause and run the same replay again (it is idempotent)\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_seq_takes_a_bare_sequence_or_one_per_stream() {
        assert_eq!("42".parse::<SeqStart>(), Ok(SeqStart::All(42)));
        assert_eq!(
            "vouchers=7".parse::<SeqStart>(),
            Ok(SeqStart::Stream("VOUCHERS".into(), 7))
        );
        assert!("0".parse::<SeqStart>().is_err());
        assert!("BANK=3".parse::<SeqStart>().is_err());
        assert!("ORDERS=x".parse::<SeqStart>().is_err());
    }

    #[test]
    fn since_takes_a_time_or_an_age() {
        let t: Since = "2026-11-21T10:00:00Z".parse().unwrap();
        assert_eq!(t.0.hour(), 10);
        let age: Since = "15m".parse().unwrap();
        let ago = OffsetDateTime::now_utc() - age.0;
        assert!((ago.whole_seconds() - 900).abs() <= 2);
        assert!("yesterday".parse::<Since>().is_err());
        assert!("5w".parse::<Since>().is_err());
    }
}
