//! `jetsaga replay --service S --verify`: the service rebuilt from the streams alone into a
//! scratch database, compared row by row with the live one. The live database is only read.
//!
//! Figures: the same streams are first read without applying anything; the rebuild's speed is
//! given as events per second, orders per second, and as a share of that plain read.

use super::{ensure_empty, migrations, rebuild, state_tables, ReplayArgs};
use crate::cli::Outcome;
use crate::output::{self, Table};
use crate::targets::{connect_pool, Targets};
use anyhow::Context as _;
use jetsaga_contracts::Producer;
use saga_kit::replay::{Replay, ReplayFrom, ReplayStart, ReplaySummary};
use saga_kit::verify::Compared;
use serde::Serialize;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, PgPool};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Instant;

/// What `--verify` found and how fast.
#[derive(Debug, Serialize)]
struct Report {
    service: &'static str,
    scratch_database: String,
    scratch_kept: bool,
    replay: ReplaySummary,
    compared: Compared,
    figures: Figures,
}

/// How fast the rebuild went, against reading the same streams.
#[derive(Debug, Serialize)]
struct Figures {
    events: u64,
    orders: u64,
    read_seconds: f64,
    rebuild_seconds: f64,
    read_events_per_second: f64,
    rebuild_events_per_second: f64,
    rebuild_orders_per_second: f64,
    /// The rebuild's events per second as a share of the plain read's.
    rebuild_to_read: f64,
}

/// A scratch database on the live database's server, dropped at the end unless kept.
struct Scratch {
    admin: PgPool,
    name: String,
    pool: PgPool,
}

async fn create_scratch(
    live_url: &str,
    admin: PgPool,
    producer: Producer,
) -> anyhow::Result<Scratch> {
    let options = PgConnectOptions::from_str(live_url)
        .with_context(|| format!("reading the {producer} database URL"))?;
    let live_name = options.get_database().unwrap_or("postgres").to_owned();
    let name = format!(
        "{}_verify_{}",
        live_name.chars().take(40).collect::<String>(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&admin)
        .await
        .with_context(|| {
            format!(
                "creating the scratch database {name} beside the {producer} database \
                 (give --scratch-url to use an empty database of your own)"
            )
        })?;
    // A scratch database is thrown away after the comparison: its commits need not wait for the
    // disk, which would otherwise bound the rebuild (one commit per event).
    sqlx::query(&format!(
        "ALTER DATABASE \"{name}\" SET synchronous_commit = off"
    ))
    .execute(&admin)
    .await
    .with_context(|| format!("setting up the scratch database {name}"))?;
    let url = options.database(&name).to_url_lossy().to_string();
    let pool = connect_pool(&url, producer).await?;
    Ok(Scratch { admin, name, pool })
}

async fn drop_scratch(scratch: Scratch) -> anyhow::Result<()> {
    scratch.pool.close().await;
    sqlx::query(&format!(
        "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
        scratch.name
    ))
    .execute(&scratch.admin)
    .await
    .with_context(|| format!("dropping the scratch database {}", scratch.name))?;
    Ok(())
}

/// How many orders the streams hold: the rebuild's unit of work.
async fn orders_in_streams(js: &async_nats::jetstream::Context) -> anyhow::Result<u64> {
    use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
    let stream = js.get_stream(Producer::ORDER.stream()).await?;
    let mut counter = stream
        .create_consumer(pull::Config {
            filter_subject: jetsaga_contracts::events::order::OrderCreated::SUBJECT_FILTER
                .to_owned(),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            inactive_threshold: std::time::Duration::from_secs(10),
            memory_storage: true,
            ..Default::default()
        })
        .await?;
    let n = counter.info().await?.num_pending;
    let _ = stream.delete_consumer(&counter.cached_info().name).await;
    Ok(n)
}

/// Rebuilds `producer` from the streams alone into a scratch database beside its live one,
/// compares every business row, and drops the scratch database: the check `jetsaga chaos` ends
/// with.
pub async fn rebuild_and_compare(
    targets: &Targets,
    producer: Producer,
) -> anyhow::Result<(ReplaySummary, Compared)> {
    let live = targets.read_only_pool(producer).await?;
    let js = targets.nats().await?;
    let admin = targets.pool(producer).await?;
    let scratch = create_scratch(&targets.database_url(producer), admin, producer).await?;
    let outcome = rebuild_into(producer, &live, &scratch.pool, &scratch.name, js, 5).await;
    drop_scratch(scratch).await?;
    outcome.map(|(replay, compared, _)| (replay, compared))
}

/// Rebuilds `producer` from the streams alone into the empty database `scratch` (migrated first)
/// and compares every business row with `live`. Also returns how long the rebuild took.
async fn rebuild_into(
    producer: Producer,
    live: &PgPool,
    scratch: &PgPool,
    name: &str,
    js: async_nats::jetstream::Context,
    max_failures: i64,
) -> anyhow::Result<(ReplaySummary, Compared, f64)> {
    saga_kit::migrate::migrate(scratch, Some(migrations(producer)))
        .await
        .with_context(|| format!("migrating the scratch database {name}"))?;
    ensure_empty(scratch, producer).await?;
    let start = ReplayStart::from(ReplayFrom::Beginning);
    let began = Instant::now();
    let replay = rebuild(producer, scratch.clone(), js, &start, max_failures).await?;
    let seconds = began.elapsed().as_secs_f64();
    let compared = saga_kit::verify::compare(live, scratch, state_tables(producer))
        .await
        .context("comparing the live database with the rebuilt one")?;
    Ok((replay, compared, seconds))
}

pub async fn run(args: &ReplayArgs, targets: &Targets, json: bool) -> Outcome {
    let producer = args.service.producer();
    let live = targets.read_only_pool(producer).await?;
    let js = targets.nats().await?;
    let (scratch, scratch_name) = match &args.scratch_url {
        Some(url) => {
            let pool = connect_pool(url, producer).await?;
            let name = PgConnectOptions::from_str(url)?
                .get_database()
                .unwrap_or("?")
                .to_owned();
            (None, (pool, name))
        }
        None => {
            let admin = targets.pool(producer).await?;
            let s = create_scratch(&targets.database_url(producer), admin, producer).await?;
            let pair = (s.pool.clone(), s.name.clone());
            (Some(s), pair)
        }
    };
    let (pool, name) = scratch_name;
    let outcome = verify(args, producer, &live, &pool, js, &name, json).await;
    let kept = args.keep_scratch || scratch.is_none();
    if let Some(s) = scratch {
        if !args.keep_scratch {
            drop_scratch(s).await?;
        }
    }
    if kept && !json {
        eprintln!("the rebuilt database {name} was kept");
    }
    outcome
}

async fn verify(
    args: &ReplayArgs,
    producer: Producer,
    live: &PgPool,
    scratch: &PgPool,
    js: async_nats::jetstream::Context,
    name: &str,
    json: bool,
) -> Outcome {
    // The plain read first: the streams alone, nothing applied, the baseline of the rebuild.
    let start = ReplayStart::from(ReplayFrom::Beginning);
    let mut reader = Replay::new(producer, scratch.clone(), js.clone(), 1);
    super::wire(&mut reader, producer);
    let began = Instant::now();
    let read = reader
        .read_through(&start)
        .await
        .with_context(|| format!("reading the streams of the {producer} service"))?;
    let read_seconds = began.elapsed().as_secs_f64();

    let (replay, compared, rebuild_seconds) =
        rebuild_into(producer, live, scratch, name, js.clone(), args.max_failures).await?;
    let orders = orders_in_streams(&js).await.unwrap_or(0);
    let events = replay.total().seen;
    let per = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
    let figures = Figures {
        events,
        orders,
        read_seconds,
        rebuild_seconds,
        read_events_per_second: per(read, read_seconds),
        rebuild_events_per_second: per(events, rebuild_seconds),
        rebuild_orders_per_second: per(orders, rebuild_seconds),
        rebuild_to_read: if read_seconds > 0.0 && rebuild_seconds > 0.0 {
            (per(events, rebuild_seconds) / per(read, read_seconds) * 100.0).round() / 100.0
        } else {
            0.0
        },
    };
    let clean = replay.is_clean() && compared.differences.is_empty();
    let report = Report {
        service: producer.service(),
        scratch_database: name.to_owned(),
        scratch_kept: args.keep_scratch || args.scratch_url.is_some(),
        replay,
        compared,
        figures,
    };
    if json {
        output::json(&report)?;
    } else {
        print!("{}", render(&report));
    }
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn render(r: &Report) -> String {
    let mut text = super::render(&r.replay);
    let mut tables = Table::new(["TABLE", "ROWS", "DIFFERENCES"]);
    for (table, rows) in &r.compared.rows {
        let n = r
            .compared
            .differences
            .iter()
            .filter(|d| d.table == *table)
            .count();
        tables.row([(*table).to_owned(), rows.to_string(), n.to_string()]);
    }
    text.push_str(&format!(
        "\nverify of the {} service: rebuilt from the streams alone into {}, compared with the live database\n",
        r.service, r.scratch_database
    ));
    text.push_str(&tables.render());
    if !r.compared.differences.is_empty() {
        let mut t = Table::new(["TABLE", "KEY", "DIFFERENCE", "LIVE", "REBUILT"]);
        let show = |v: &Option<serde_json::Value>| {
            v.as_ref().map_or_else(|| "-".to_owned(), |v| v.to_string())
        };
        for d in &r.compared.differences {
            t.row([
                d.table.to_owned(),
                d.key.clone(),
                d.what().to_owned(),
                show(&d.live),
                show(&d.rebuilt),
            ]);
        }
        text.push_str(&t.render());
    }
    let f = &r.figures;
    text.push_str(&format!(
        "read {} events in {:.1} s ({:.0}/s) without applying them; rebuilt in {:.1} s: {:.0} events/s, \
         {:.0} orders/s, {:.2} of the plain read\n",
        f.events, f.read_seconds, f.read_events_per_second, f.rebuild_seconds,
        f.rebuild_events_per_second, f.rebuild_orders_per_second, f.rebuild_to_read
    ));
    let n = r.compared.differences.len();
    text.push_str(&if n == 0 && r.replay.is_clean() {
        "0 differences: the live database is what the streams say\n".to_owned()
    } else {
        format!("{n} difference(s): the live database is not what the streams say\n")
    });
    text
}
