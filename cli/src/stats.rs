//! `jetsaga stats`: is the system keeping up? Consumer lag per service, outbox backlog, dead
//! letters and saga outcomes, from NATS and the five databases.

use crate::cli::Outcome;
use crate::output::{self, Table};
use crate::targets::Targets;
use anyhow::Context as _;
use clap::Args;
use futures::TryStreamExt;
use jetsaga_contracts::Producer;
use serde::Serialize;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct StatsArgs {}

/// One durable consumer's position.
#[derive(Debug, Serialize)]
pub struct ConsumerLag {
    pub service: String,
    pub consumer: String,
    pub stream: &'static str,
    /// Messages matching its filter not yet delivered.
    pub pending: u64,
    /// Delivered, not yet acked.
    pub ack_pending: usize,
    /// Delivered more than once.
    pub redelivered: usize,
    /// Pull requests of its readers waiting at the server now: a running instance keeps one
    /// waiting whenever it is not handling a batch.
    pub pulls_waiting: usize,
    /// Seconds since the server last delivered one of its messages; `None` if it never did.
    pub last_delivery_secs_ago: Option<u64>,
    /// Nobody pulls it (see [`nobody_pulls`]): every instance of its service is stopped or stuck,
    /// or no service reads this durable any more (one an upgrade left behind).
    pub nobody_pulls: bool,
}

impl ConsumerLag {
    /// A durable consumer's position as the server reports it in `info`; `None` for a consumer
    /// with no durable name (a replay's). Durables are named `<service>-on-<input>`.
    fn read(stream: &'static str, info: &async_nats::jetstream::consumer::Info) -> Option<Self> {
        let durable = info.config.durable_name.clone()?;
        let since_last_delivery = since(info.delivered.last_active);
        Some(ConsumerLag {
            service: durable
                .split_once("-on-")
                .map(|(s, _)| s.to_owned())
                .unwrap_or_default(),
            consumer: durable,
            stream,
            pending: info.num_pending,
            ack_pending: info.num_ack_pending,
            redelivered: info.num_redelivered,
            pulls_waiting: info.num_waiting,
            last_delivery_secs_ago: since_last_delivery.map(|d| d.as_secs()),
            nobody_pulls: nobody_pulls(info.num_waiting, since_last_delivery),
        })
    }
}

/// How long a durable may go without a delivery, while no pull request waits, before it is
/// reported as read by nobody. A running instance's pull request expires every 2 s and is
/// renewed at once, and one handling a batch got that batch moments ago.
pub const NOBODY_PULLS_AFTER: Duration = Duration::from_secs(60);

/// A durable that looks read by nobody is looked at again this often, [`LOOKS`] times in all:
/// a look can fall between a pull request's expiry and its renewal (one in sixteen did, on a
/// busy `jetsaga dev`), and the looks together span more than one request's 2 s.
pub const LOOK_AGAIN_AFTER: Duration = Duration::from_millis(1250);

/// How many looks find no pull waiting before a durable is reported as read by nobody.
pub const LOOKS: usize = 3;

/// Whether nobody pulls a durable: no pull request waits at the server and nothing was delivered
/// within [`NOBODY_PULLS_AFTER`] (or ever). Its pending messages then only grow, whatever the
/// instances' own `/health` says.
pub fn nobody_pulls(pulls_waiting: usize, since_last_delivery: Option<Duration>) -> bool {
    pulls_waiting == 0 && since_last_delivery.is_none_or(|d| d >= NOBODY_PULLS_AFTER)
}

/// One service's database side.
#[derive(Debug, Serialize)]
pub struct ServiceStats {
    pub service: &'static str,
    pub outbox_backlog: i64,
    /// Rows the stream refused, waiting for their back-off.
    pub outbox_retrying: i64,
    /// Rows that can never be published as they are (`jetsaga dlq parked`).
    pub outbox_parked: i64,
    pub dead_letters_open: i64,
    /// The service's whole database on disk.
    pub database_bytes: i64,
    /// `kit_outbox` and `kit_inbox` with their indexes: what the trim keeps to the streams'
    /// retention plus a day.
    pub outbox_inbox_bytes: i64,
}

/// Orders by outcome.
#[derive(Debug, Serialize, Default)]
pub struct Outcomes {
    pub pending: i64,
    pub confirmed: i64,
    pub cancelled: i64,
    /// Cancelled orders by reason.
    pub cancelled_by_reason: Vec<(String, i64)>,
    /// Pending orders past their deadline (the sweeper should cancel them within a second).
    pub pending_past_deadline: i64,
}

#[derive(Debug, Serialize)]
pub struct Stats {
    pub consumers: Vec<ConsumerLag>,
    pub services: Vec<ServiceStats>,
    pub sagas: Outcomes,
    /// Messages in each stream.
    pub streams: Vec<(&'static str, u64)>,
}

pub async fn run(_args: StatsArgs, targets: &Targets, json: bool) -> Outcome {
    let stats = collect(targets).await?;
    if json {
        output::json(&stats)?;
    } else {
        print!("{}", render(&stats));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn collect(targets: &Targets) -> anyhow::Result<Stats> {
    let js = targets.nats().await?;
    let (consumers, streams) = consumer_lags(&js).await?;
    let mut services = Vec::new();
    let mut sagas = Outcomes::default();
    for producer in Producer::ALL {
        let pool = targets.read_only_pool(producer).await?;
        services.push(service_stats(&pool, producer).await?);
        if producer == Producer::ORDER {
            sagas = outcomes(&pool).await?;
        }
    }
    Ok(Stats {
        consumers,
        services,
        sagas,
        streams,
    })
}

/// Every durable consumer's position, and the messages in each stream (`jetsaga stats` and the
/// console's health page).
pub async fn consumer_lags(
    js: &async_nats::jetstream::Context,
) -> anyhow::Result<(Vec<ConsumerLag>, Vec<(&'static str, u64)>)> {
    let mut consumers = Vec::new();
    let mut streams = Vec::new();
    for producer in Producer::ALL {
        let name = producer.stream();
        // Getting the stream reads its info once; it is used as read.
        let stream = js
            .get_stream(name)
            .await
            .with_context(|| format!("reading stream {name}"))?;
        streams.push((name, stream.cached_info().state.messages));
        let mut infos = stream.consumers();
        while let Some(c) = infos
            .try_next()
            .await
            .with_context(|| format!("listing the consumers of stream {name}"))?
        {
            consumers.extend(ConsumerLag::read(name, &c));
        }
    }
    look_again_at_those_nobody_pulls(js, &mut consumers).await?;
    consumers.sort_by(|a, b| (&a.service, &a.consumer).cmp(&(&b.service, &b.consumer)));
    Ok((consumers, streams))
}

/// Looks again at each durable that looked read by nobody, until a look finds a pull waiting or
/// a recent delivery (it is read) or [`LOOKS`] looks found neither (nobody reads it).
async fn look_again_at_those_nobody_pulls(
    js: &async_nats::jetstream::Context,
    consumers: &mut [ConsumerLag],
) -> anyhow::Result<()> {
    for _ in 1..LOOKS {
        if !consumers.iter().any(|c| c.nobody_pulls) {
            return Ok(());
        }
        tokio::time::sleep(LOOK_AGAIN_AFTER).await;
        for c in consumers.iter_mut().filter(|c| c.nobody_pulls) {
            let info = js
                .get_stream(c.stream)
                .await
                .with_context(|| format!("reading stream {}", c.stream))?
                .consumer_info(&c.consumer)
                .await
                .with_context(|| format!("reading consumer {} of {}", c.consumer, c.stream))?;
            if let Some(now) = ConsumerLag::read(c.stream, &info) {
                *c = now;
            }
        }
    }
    Ok(())
}

/// How long ago `at` was; `None` for never.
fn since(at: Option<time::OffsetDateTime>) -> Option<Duration> {
    at.map(|at| {
        (time::OffsetDateTime::now_utc() - at)
            .try_into()
            .unwrap_or(Duration::ZERO)
    })
}

/// A service's outbox and dead letters, from its database.
pub async fn service_stats(
    pool: &sqlx::PgPool,
    producer: Producer,
) -> anyhow::Result<ServiceStats> {
    let outbox = saga_kit::outbox::standing(pool)
        .await
        .with_context(|| format!("reading the outbox of {producer}"))?;
    let dead_letters_open = saga_kit::dead_letter::open_count(pool)
        .await
        .with_context(|| format!("reading the dead letters of {producer}"))?;
    let (database_bytes, outbox_inbox_bytes): (i64, i64) = sqlx::query_as(
        "SELECT pg_database_size(current_database()),
                pg_total_relation_size('kit_outbox') + pg_total_relation_size('kit_inbox')",
    )
    .fetch_one(pool)
    .await
    .with_context(|| format!("reading the size of the {producer} database"))?;
    Ok(ServiceStats {
        service: producer.service(),
        outbox_backlog: outbox.backlog,
        outbox_retrying: outbox.retrying,
        outbox_parked: outbox.parked,
        dead_letters_open,
        database_bytes,
        outbox_inbox_bytes,
    })
}

pub async fn outcomes(pool: &sqlx::PgPool) -> anyhow::Result<Outcomes> {
    let rows: Vec<(String, Option<String>, i64, i64)> = sqlx::query_as(
        "SELECT status, cancel_reason, count(*),
                count(*) FILTER (WHERE status = 'PENDING' AND deadline < now())
         FROM orders GROUP BY status, cancel_reason ORDER BY status, cancel_reason",
    )
    .fetch_all(pool)
    .await
    .context("counting orders by status")?;
    let mut o = Outcomes::default();
    for (status, reason, n, overdue) in rows {
        match status.as_str() {
            "PENDING" => o.pending += n,
            "CONFIRMED" => o.confirmed += n,
            _ => {
                o.cancelled += n;
                o.cancelled_by_reason.push((reason.unwrap_or_default(), n));
            }
        }
        o.pending_past_deadline += overdue;
    }
    Ok(o)
}

pub fn render(stats: &Stats) -> String {
    let mut text = String::from("consumers\n");
    let mut t = Table::new([
        "SERVICE",
        "CONSUMER",
        "STREAM",
        "PENDING",
        "ACK PENDING",
        "REDELIVERED",
        "LAST DELIVERY",
    ]);
    for c in &stats.consumers {
        t.row([
            c.service.clone(),
            c.consumer.clone(),
            c.stream.to_owned(),
            c.pending.to_string(),
            c.ack_pending.to_string(),
            c.redelivered.to_string(),
            last_delivery(c),
        ]);
    }
    text.push_str(&t.render());
    for c in stats.consumers.iter().filter(|c| c.nobody_pulls) {
        text.push_str(&format!(
            "! nobody pulls {} on {} ({} pending, last delivery {}):\n  every instance of {} \
             is stopped or stuck (see its /health), or no service reads it any more\n  (a \
             durable an upgrade left behind: delete it once you know that it is one)\n",
            c.consumer,
            c.stream,
            c.pending,
            last_delivery(c),
            c.service,
        ));
    }
    text.push_str("\nservices\n");
    let mut t = Table::new([
        "SERVICE",
        "OUTBOX BACKLOG",
        "RETRYING",
        "PARKED",
        "OPEN DEAD LETTERS",
        "DATABASE",
        "OUTBOX+INBOX",
    ]);
    for s in &stats.services {
        t.row([
            s.service.to_owned(),
            s.outbox_backlog.to_string(),
            s.outbox_retrying.to_string(),
            s.outbox_parked.to_string(),
            s.dead_letters_open.to_string(),
            size(s.database_bytes),
            size(s.outbox_inbox_bytes),
        ]);
    }
    text.push_str(&t.render());
    text.push_str("\nstreams\n");
    let mut t = Table::new(["STREAM", "MESSAGES"]);
    for (name, n) in &stats.streams {
        t.row([(*name).to_owned(), n.to_string()]);
    }
    text.push_str(&t.render());
    let s = &stats.sagas;
    let reasons: Vec<String> = s
        .cancelled_by_reason
        .iter()
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    text.push_str(&format!(
        "\nsagas: {} confirmed, {} cancelled{}, {} pending ({} past deadline)\n",
        s.confirmed,
        s.cancelled,
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        },
        s.pending,
        s.pending_past_deadline
    ));
    text
}

/// A size on disk, for the table: `512 B`, `8.1 MB`, `15.0 GB`.
fn size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes.max(0) as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// When a durable last had a message delivered, for the table.
fn last_delivery(c: &ConsumerLag) -> String {
    match c.last_delivery_secs_ago {
        None => "never".to_owned(),
        Some(s) if s < 60 => format!("{s}s ago"),
        Some(s) if s < 3_600 => format!("{}m ago", s / 60),
        Some(s) if s < 86_400 => format!("{}h ago", s / 3_600),
        Some(s) => format!("{}d ago", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_shown_in_the_largest_unit_under_1024() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(8_493_465), "8.1 MB");
        assert_eq!(size(16_106_127_360), "15.0 GB");
        assert_eq!(size(1024), "1.0 kB");
    }

    #[test]
    fn a_durable_with_a_pull_waiting_is_read_however_long_its_stream_was_quiet() {
        assert!(!nobody_pulls(1, None));
        assert!(!nobody_pulls(1, Some(Duration::from_secs(86_400))));
    }

    #[test]
    fn a_durable_handling_a_batch_it_just_got_is_read() {
        assert!(!nobody_pulls(0, Some(Duration::from_secs(3))));
    }

    #[test]
    fn a_durable_without_a_pull_or_a_recent_delivery_is_read_by_nobody() {
        assert!(nobody_pulls(0, None));
        assert!(nobody_pulls(0, Some(NOBODY_PULLS_AFTER)));
        assert!(nobody_pulls(0, Some(Duration::from_secs(7_200))));
    }
}
