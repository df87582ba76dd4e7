//! `jetsaga dlq list|show|requeue|discard`: the dead letters of every service, in one place.
//!
//! A dead letter is addressed as `<service>:<id>` (ids are per service database), e.g. `payment:3`.
//! Requeue publishes the original message under a new `Nats-Msg-Id` (its `ce-id` stays, so a
//! consumer that already applied it dedupes it) and records who did it; a message that fails again
//! comes back as a new dead letter, never into a loop.

use crate::cli::Outcome;
use crate::output::{self, Table};
use crate::signing::Signing;
use crate::targets::{ServiceName, Targets};
use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use jetsaga_contracts::Producer;
use saga_kit::dead_letter::{self, AuditEntry, DeadLetter, Filter};
use serde::Serialize;
use std::process::ExitCode;
use std::str::FromStr;

#[derive(Debug, Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    pub command: DlqCommand,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// The dead letters of every service (or one), oldest first per service.
    List {
        /// Only this service.
        #[arg(long)]
        service: Option<ServiceName>,
        /// Only dead letters in this status.
        #[arg(long, value_enum, default_value_t = StatusFilter::Open)]
        status: StatusFilter,
        /// At most this many per service.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Outbox rows that can never be published as they are (larger than the server accepts),
    /// set aside by the relay so that they hold back nothing, with their reason.
    Parked {
        /// Only this service.
        #[arg(long)]
        service: Option<ServiceName>,
        /// At most this many per service.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// One dead letter whole: headers, payload, reason and what was done with it.
    Show {
        /// `<service>:<id>`, e.g. `payment:3`.
        dead_letter: DeadLetterRef,
    },
    /// Publish dead letters again under a new Msg-Id, with an audit row.
    Requeue(DecisionArgs),
    /// Mark dead letters as dealt with, with an audit row; the message is not published.
    Discard(DecisionArgs),
}

/// What a requeue or a discard is given.
#[derive(Debug, Args)]
pub struct DecisionArgs {
    /// `<service>:<id>` of each dead letter.
    #[arg(required = true)]
    pub dead_letters: Vec<DeadLetterRef>,
    /// Why, for the audit (recorded with the decision).
    #[arg(long)]
    pub reason: Option<String>,
    /// The operator who does it, for the audit.
    #[command(flatten)]
    pub signing: Signing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFilter {
    Open,
    Requeued,
    Discarded,
    All,
}

impl StatusFilter {
    fn as_status(self) -> Option<String> {
        match self {
            StatusFilter::Open => Some("open".into()),
            StatusFilter::Requeued => Some("requeued".into()),
            StatusFilter::Discarded => Some("discarded".into()),
            StatusFilter::All => None,
        }
    }
}

/// `<service>:<id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadLetterRef {
    pub producer: Producer,
    pub id: i64,
}

impl FromStr for DeadLetterRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (service, id) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}` is not <service>:<id>, e.g. payment:3"))?;
        let producer = Producer::from_service(service).ok_or_else(|| {
            format!("`{service}` is not a service (order, voucher, points, payment, stock)")
        })?;
        let id = id
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| format!("`{id}` is not a dead letter id (a positive number)"))?;
        Ok(DeadLetterRef { producer, id })
    }
}

impl std::fmt::Display for DeadLetterRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.producer.service(), self.id)
    }
}

/// A dead letter with the service it belongs to, as `--json` prints it.
#[derive(Debug, Serialize)]
struct Listed {
    #[serde(rename = "ref")]
    reference: String,
    service: &'static str,
    #[serde(flatten)]
    dead_letter: DeadLetter,
}

pub async fn run(args: DlqArgs, targets: &Targets, json: bool) -> Outcome {
    match args.command {
        DlqCommand::List {
            service,
            status,
            limit,
        } => list(targets, json, service, status, limit).await,
        DlqCommand::Parked { service, limit } => parked(targets, json, service, limit).await,
        DlqCommand::Show { dead_letter } => show(targets, json, dead_letter).await,
        DlqCommand::Requeue(decision) => act(targets, json, &decision, Action::Requeue).await,
        DlqCommand::Discard(decision) => act(targets, json, &decision, Action::Discard).await,
    }
}

async fn list(
    targets: &Targets,
    json: bool,
    service: Option<ServiceName>,
    status: StatusFilter,
    limit: i64,
) -> Outcome {
    let producers: Vec<Producer> = match service {
        Some(s) => vec![s.producer()],
        None => Producer::ALL.to_vec(),
    };
    let filter = Filter {
        status: status.as_status(),
        limit,
    };
    let mut listed = Vec::new();
    for producer in producers {
        let pool = targets.pool(producer).await?;
        let letters = dead_letter::list(&pool, &filter)
            .await
            .with_context(|| format!("listing the dead letters of {producer}"))?;
        listed.extend(letters.into_iter().map(|dl| Listed {
            reference: format!("{}:{}", producer.service(), dl.id),
            service: producer.service(),
            dead_letter: dl,
        }));
    }
    if json {
        output::json(&listed)?;
        return Ok(ExitCode::SUCCESS);
    }
    if listed.is_empty() {
        println!(
            "no dead letters ({})",
            status.as_status().unwrap_or_else(|| "any status".into())
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new([
        "REF",
        "STATUS",
        "KIND",
        "CONSUMER",
        "SUBJECT",
        "SEQ",
        "FAILED AT",
        "REASON",
    ]);
    for l in &listed {
        let dl = &l.dead_letter;
        table.row([
            l.reference.clone(),
            dl.status.clone(),
            dl.kind.clone(),
            dl.consumer.clone(),
            dl.subject.clone(),
            dl.stream_seq.to_string(),
            output::timestamp(dl.failed_at),
            output::truncate(&dl.reason, 80),
        ]);
    }
    table.print();
    println!("{} dead letter(s)", listed.len());
    Ok(ExitCode::SUCCESS)
}

/// A parked outbox row and its service.
#[derive(Debug, serde::Serialize)]
struct ParkedListed {
    service: &'static str,
    #[serde(flatten)]
    row: saga_kit::outbox::ParkedRow,
}

async fn parked(
    targets: &Targets,
    json: bool,
    service: Option<ServiceName>,
    limit: i64,
) -> Outcome {
    let producers: Vec<Producer> = match service {
        Some(s) => vec![s.producer()],
        None => Producer::ALL.to_vec(),
    };
    let mut listed = Vec::new();
    for producer in producers {
        let pool = targets.pool(producer).await?;
        let rows = saga_kit::outbox::parked(&pool, limit)
            .await
            .with_context(|| format!("listing the parked outbox rows of {producer}"))?;
        listed.extend(rows.into_iter().map(|row| ParkedListed {
            service: producer.service(),
            row,
        }));
    }
    if json {
        output::json(&listed)?;
    } else if listed.is_empty() {
        println!("no parked outbox rows");
    } else {
        let mut table = Table::new([
            "SERVICE",
            "ROW",
            "EVENT",
            "SUBJECT",
            "BYTES",
            "PARKED AT",
            "REASON",
        ]);
        for l in &listed {
            table.row([
                l.service.to_owned(),
                l.row.id.to_string(),
                l.row.event_id.to_string(),
                l.row.subject.clone(),
                l.row.payload_bytes.to_string(),
                output::timestamp(l.row.parked_at),
                output::truncate(l.row.park_reason.as_deref().unwrap_or(""), 80),
            ]);
        }
        table.print();
        println!("{} parked row(s): each needs a person", listed.len());
    }
    // Something is left for a person while any row is parked.
    Ok(if listed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn show(targets: &Targets, json: bool, r: DeadLetterRef) -> Outcome {
    let pool = targets.pool(r.producer).await?;
    let dl = dead_letter::get(&pool, r.id)
        .await
        .with_context(|| format!("reading dead letter {r}"))?
        .with_context(|| format!("dead letter {r} does not exist"))?;
    let audit = dead_letter::audit_trail(&pool, r.id)
        .await
        .with_context(|| format!("reading the audit of dead letter {r}"))?;
    if json {
        #[derive(Serialize)]
        struct Shown<'a> {
            #[serde(rename = "ref")]
            reference: String,
            #[serde(flatten)]
            dead_letter: &'a DeadLetter,
            payload: String,
            audit: &'a [AuditEntry],
        }
        output::json(&Shown {
            reference: r.to_string(),
            dead_letter: &dl,
            payload: dl.payload_text(),
            audit: &audit,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("dead letter {r} ({})", dl.status);
    println!("  kind        {}", dl.kind);
    println!("  reason      {}", dl.reason);
    println!("  consumer    {}", dl.consumer);
    println!("  stream      {} seq {}", dl.stream, dl.stream_seq);
    println!("  subject     {}", dl.subject);
    println!(
        "  event id    {}",
        dl.event_id.map(|i| i.to_string()).unwrap_or("-".into())
    );
    println!("  deliveries  {}", dl.deliveries);
    println!("  failed at   {}", output::timestamp(dl.failed_at));
    println!("  headers");
    if let Some(map) = dl.headers.as_object() {
        for (k, v) in map {
            println!("    {k}: {}", v.as_str().unwrap_or_default());
        }
    }
    println!("  payload");
    println!("    {}", dl.payload_text());
    if audit.is_empty() {
        println!("  audit       none");
    } else {
        println!("  audit");
        for a in &audit {
            println!(
                "    {} {} by {}{}{}",
                output::timestamp(a.at),
                a.action,
                a.actor,
                a.new_msg_id
                    .as_ref()
                    .map(|m| format!(" as {m}"))
                    .unwrap_or_default(),
                a.reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An operator's decision on a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Publish the message again under a new `Nats-Msg-Id`.
    Requeue,
    /// Mark it dealt with; nothing is published.
    Discard,
}

impl Action {
    /// `requeued` or `discarded`.
    pub const fn past(self) -> &'static str {
        match self {
            Action::Requeue => "requeued",
            Action::Discard => "discarded",
        }
    }
}

/// What came of one decision: the new `Nats-Msg-Id` of a requeue (`None` for a discard), or why
/// it was not made (not open, gone, NATS refused).
#[derive(Debug)]
pub struct Decided {
    pub dead_letter: DeadLetterRef,
    pub result: Result<Option<String>, dead_letter::DeadLetterError>,
}

/// Requeues or discards each dead letter as `actor`, one after the other; one that cannot be is
/// reported and the rest go on. `jetsaga dlq requeue|discard` and the console both decide here,
/// so a decision is recorded the same way (status, audit row, DLQ event naming the actor)
/// whoever makes it. An unreachable database or NATS is an error.
pub async fn decide(
    targets: &Targets,
    refs: &[DeadLetterRef],
    actor: &jetsaga_contracts::Actor,
    reason: Option<&str>,
    action: Action,
) -> anyhow::Result<Vec<Decided>> {
    let by = dead_letter::Decided {
        actor: actor.as_str(),
        reason,
    };
    let js = match action {
        Action::Requeue => Some(targets.nats().await?),
        Action::Discard => None,
    };
    let mut decided = Vec::new();
    // One pool per service, however many of its dead letters are named.
    let mut pools = std::collections::HashMap::new();
    for r in refs {
        let pool = match pools.entry(r.producer) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(targets.pool(r.producer).await?)
            }
        };
        let pool: &sqlx::PgPool = pool;
        let result = match (&js, action) {
            (Some(js), Action::Requeue) => {
                dead_letter::requeue(pool, js, r.producer.service(), r.id, by)
                    .await
                    .map(Some)
            }
            _ => dead_letter::discard(pool, r.producer.service(), r.id, by)
                .await
                .map(|()| None),
        };
        decided.push(Decided {
            dead_letter: *r,
            result,
        });
    }
    Ok(decided)
}

#[derive(Debug, Serialize)]
struct ActionResult {
    #[serde(rename = "ref")]
    reference: String,
    ok: bool,
    /// The new `Nats-Msg-Id` of a requeue.
    new_msg_id: Option<String>,
    error: Option<String>,
}

/// Requeues or discards each dead letter; exit 1 when any failed.
async fn act(targets: &Targets, json: bool, decision: &DecisionArgs, action: Action) -> Outcome {
    let operator = decision.signing.operator()?;
    let actor = operator.as_str();
    let refs = &decision.dead_letters;
    let reason = decision
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let results: Vec<ActionResult> = decide(targets, refs, &operator, reason, action)
        .await?
        .into_iter()
        .map(|d| match d.result {
            Ok(new_msg_id) => ActionResult {
                reference: d.dead_letter.to_string(),
                ok: true,
                new_msg_id,
                error: None,
            },
            Err(e) => ActionResult {
                reference: d.dead_letter.to_string(),
                ok: false,
                new_msg_id: None,
                error: Some(e.to_string()),
            },
        })
        .collect();
    let failed = results.iter().filter(|r| !r.ok).count();
    if json {
        output::json(&results)?;
    } else {
        let verb = action.past();
        for r in &results {
            match (&r.error, &r.new_msg_id) {
                (Some(e), _) => println!("{}: not {verb}: {e}", r.reference),
                (None, Some(m)) => println!("{}: {verb} as {m} by {actor}", r.reference),
                (None, None) => println!("{}: {verb} by {actor}", r.reference),
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_ref_names_a_service_and_a_positive_id() {
        let r: DeadLetterRef = "payment:3".parse().unwrap();
        assert_eq!(r.producer, Producer::PAYMENT);
        assert_eq!(r.id, 3);
        assert_eq!(r.to_string(), "payment:3");
        assert!("payment".parse::<DeadLetterRef>().is_err());
        assert!("bank:3".parse::<DeadLetterRef>().is_err());
        assert!("stock:-1".parse::<DeadLetterRef>().is_err());
        assert!("stock:x".parse::<DeadLetterRef>().is_err());
    }
}
