//! `jetsaga audit`: every admin change and every operator decision over a time range, read from
//! the streams, which are the audit log. An admin change is one of a service's declared admin
//! events (a price set, an account credited, stock adjusted, a voucher issued), each with the
//! operator whose credential made it; an operator decision is a dead letter requeued or discarded,
//! or a reconcile repair, signed (`jetsaga.dlq.<action>.v1` on the DLQ stream). Filter by operator
//! and kind.

use crate::cli::Outcome;
use crate::output::{self, Table};
use crate::participants::{self, Participant};
use crate::targets::Targets;
use anyhow::Context as _;
use async_nats::jetstream;
use clap::Args;
use saga_kit::dead_letter::{DISCARDED_TYPE, REQUEUED_TYPE};
use saga_kit::provision::DLQ_STREAM;
use saga_kit::repair::REPAIRED_TYPE;
use saga_kit::replay::read::{bounds, first_at, Reader};
use saga_kit::trace::{committed_at, event_name};
use serde::Serialize;
use std::process::ExitCode;
use std::str::FromStr;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Start of the range: an RFC 3339 time (`2026-12-01T00:00:00Z`) or a span back from now
    /// (`90m`, `24h`, `7d`).
    #[arg(long, default_value = "24h")]
    pub since: When,
    /// End of the range, in the same forms (default: now).
    #[arg(long)]
    pub until: Option<When>,
    /// Only the actions of this operator (the name in `ADMIN_TOKENS`, or `--by` of `jetsaga dlq`).
    #[arg(long)]
    pub operator: Option<String>,
    /// Only this kind of action, e.g. `payments.credited` or `dlq.requeued` (an unknown kind is
    /// refused with the list of kinds).
    #[arg(long)]
    pub kind: Option<String>,
}

/// A point in time as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    At(OffsetDateTime),
    Ago(Duration),
}

impl When {
    pub fn resolve(self, now: OffsetDateTime) -> OffsetDateTime {
        match self {
            When::At(t) => t,
            When::Ago(d) => now - d,
        }
    }
}

impl FromStr for When {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
            return Ok(When::At(t));
        }
        let unit_at = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (n, unit) = s.split_at(unit_at);
        let n: i64 = n.parse().map_err(|_| {
            format!("{s:?} is neither an RFC 3339 time nor a span like 90m, 24h or 7d")
        })?;
        let span = match unit {
            "s" => Duration::seconds(n),
            "m" => Duration::minutes(n),
            "h" => Duration::hours(n),
            "d" => Duration::days(n),
            _ => {
                return Err(format!(
                    "{s:?}: the unit of a span is s, m, h or d (e.g. 90m, 24h, 7d)"
                ))
            }
        };
        Ok(When::Ago(span))
    }
}

/// One audited action, as `--json` prints it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Entry {
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub service: String,
    pub operator: String,
    /// `<domain>.<event>` of an admin change, or `dlq.requeued` / `dlq.discarded` / `dlq.repaired`.
    pub kind: String,
    /// What it is about: the subject's key (a customer, a SKU, a voucher code), or the dead
    /// letter's consumer and place.
    pub about: String,
    /// What came of it, in a few words.
    pub outcome: String,
    pub event_id: String,
    pub stream: String,
    pub stream_seq: u64,
}

/// The kinds `--kind` accepts: each participant's admin events, then the operators' decisions
/// on dead letters and their repairs.
pub fn kinds() -> Vec<String> {
    let mut kinds: Vec<String> = participants::ALL
        .iter()
        .flat_map(|p| p.admin_events.iter().map(|f| kind_of_filter(f)))
        .collect();
    kinds.extend([
        kind_of_type(REQUEUED_TYPE),
        kind_of_type(DISCARDED_TYPE),
        kind_of_type(REPAIRED_TYPE),
    ]);
    kinds
}

/// A kind `--kind` (and the console's filter) does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown kind {kind:?}; the kinds are: {}", known.join(", "))]
pub struct UnknownKind {
    pub kind: String,
    pub known: Vec<String>,
}

/// Whether `kind` is one of [`kinds`]: the one check of `jetsaga audit --kind` and the console.
pub fn known_kind(kind: &str) -> Result<(), UnknownKind> {
    let known = kinds();
    if known.iter().any(|k| k == kind) {
        Ok(())
    } else {
        Err(UnknownKind {
            kind: kind.to_owned(),
            known,
        })
    }
}

/// `payments.credited.*` → `payments.credited`.
fn kind_of_filter(filter: &str) -> String {
    filter.trim_end_matches(".*").to_owned()
}

/// `jetsaga.dlq.requeued.v1` → `dlq.requeued`.
fn kind_of_type(ce_type: &str) -> String {
    let parts: Vec<&str> = ce_type.split('.').collect();
    match parts.as_slice() {
        [_, domain, event, _version] => format!("{domain}.{event}"),
        _ => ce_type.to_owned(),
    }
}

pub async fn run(args: AuditArgs, targets: &Targets, json: bool) -> Outcome {
    let now = OffsetDateTime::now_utc();
    let since = args.since.resolve(now);
    let until = args.until.map(|u| u.resolve(now)).unwrap_or(now);
    anyhow::ensure!(
        since <= until,
        "the range is empty: --since {} is after --until {}",
        since.format(&Rfc3339)?,
        until.format(&Rfc3339)?
    );
    if let Some(kind) = &args.kind {
        known_kind(kind)?;
    }
    let js = targets.nats().await?;
    let entries = collect(&js, &args, since, until).await?;
    if json {
        #[derive(Serialize)]
        struct Audit<'a> {
            #[serde(with = "time::serde::rfc3339")]
            since: OffsetDateTime,
            #[serde(with = "time::serde::rfc3339")]
            until: OffsetDateTime,
            entries: &'a [Entry],
        }
        output::json(&Audit {
            since,
            until,
            entries: &entries,
        })?;
    } else if entries.is_empty() {
        println!(
            "no admin changes or operator actions from {} to {}",
            since.format(&Rfc3339)?,
            until.format(&Rfc3339)?
        );
    } else {
        print!("{}", table(&entries));
    }
    Ok(ExitCode::SUCCESS)
}

/// Every audited action from `since` to `until` that passes the filters of `args`, oldest
/// first, read from the streams. `jetsaga audit` and the console's audit page both read here.
pub async fn collect(
    js: &jetstream::Context,
    args: &AuditArgs,
    since: OffsetDateTime,
    until: OffsetDateTime,
) -> anyhow::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for participant in &participants::ALL {
        entries.extend(admin_changes(js, participant, since).await?);
    }
    entries.extend(operator_actions(js, since).await?);
    Ok(select(entries, args, since, until))
}

/// The entries in the range that pass the filters, oldest first.
pub fn select(
    mut entries: Vec<Entry>,
    args: &AuditArgs,
    since: OffsetDateTime,
    until: OffsetDateTime,
) -> Vec<Entry> {
    entries.retain(|e| {
        e.time >= since
            && e.time <= until
            && args.operator.as_ref().is_none_or(|o| *o == e.operator)
            && args.kind.as_ref().is_none_or(|k| *k == e.kind)
    });
    entries
        .sort_by(|a, b| (a.time, &a.stream, a.stream_seq).cmp(&(b.time, &b.stream, b.stream_seq)));
    entries
}

/// A stream's messages of `filters` stored since `since`, up to its end when the read began.
async fn read_since(
    js: &jetstream::Context,
    stream: &'static str,
    filters: Vec<String>,
    since: OffsetDateTime,
) -> anyhow::Result<Vec<saga_kit::replay::read::Read>> {
    let reading = || format!("reading {} from {}", filters.join(","), stream);
    let Some(start) = first_at(js, stream, &filters, since)
        .await
        .with_context(reading)?
    else {
        return Ok(Vec::new());
    };
    let end = bounds(js, stream).await.with_context(reading)?.last;
    let mut reader = Reader::open(js, stream, filters.clone(), "audit", start, end)
        .await
        .with_context(reading)?;
    let mut read = Vec::new();
    let outcome = loop {
        match reader.next().await {
            Ok(Some(r)) => read.push(r),
            Ok(None) => break Ok(read),
            Err(e) => break Err(e),
        }
    };
    reader.close().await;
    outcome.with_context(reading)
}

fn header(raw: &saga_kit::consumer::RawMessage, name: &str) -> Option<String> {
    raw.headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_owned())
}

/// When the producer made it (`ce-time`), else when the stream stored it.
fn time_of(read: &saga_kit::replay::read::Read) -> OffsetDateTime {
    committed_at(header(&read.raw, "ce-time").as_deref(), read.stored)
}

/// The operator named in a payload; events written before admin changes were signed name none.
fn operator_of(payload: &serde_json::Value) -> String {
    payload["actor"]
        .as_str()
        .unwrap_or(jetsaga_contracts::Actor::ANONYMOUS)
        .to_owned()
}

/// A participant's admin events since `since`.
async fn admin_changes(
    js: &jetstream::Context,
    participant: &Participant,
    since: OffsetDateTime,
) -> anyhow::Result<Vec<Entry>> {
    if participant.admin_events.is_empty() {
        return Ok(Vec::new());
    }
    let producer = participant.producer;
    let filters = participant
        .admin_events
        .iter()
        .map(|f| (*f).to_owned())
        .collect();
    let read = read_since(js, producer.stream(), filters, since).await?;
    Ok(read
        .iter()
        .map(|r| {
            let ce_type = header(&r.raw, "ce-type").unwrap_or_default();
            let payload: serde_json::Value =
                serde_json::from_slice(&r.raw.payload).unwrap_or_default();
            let kind = event_name(&r.raw.subject);
            Entry {
                time: time_of(r),
                service: producer.service().to_owned(),
                operator: operator_of(&payload),
                about: r
                    .raw
                    .subject
                    .strip_prefix(&format!("{kind}."))
                    .unwrap_or_default()
                    .to_owned(),
                kind,
                outcome: (participant.describe)(&ce_type, &r.raw.payload)
                    .unwrap_or_else(|e| format!("undecodable: {e}")),
                event_id: header(&r.raw, "ce-id").unwrap_or_default(),
                stream: producer.stream().to_owned(),
                stream_seq: r.raw.stream_seq,
            }
        })
        .collect())
}

/// The operators' actions since `since`, as the DLQ stream keeps them: requeues and discards of
/// dead letters, and signed repairs.
async fn operator_actions(
    js: &jetstream::Context,
    since: OffsetDateTime,
) -> anyhow::Result<Vec<Entry>> {
    let read = read_since(js, DLQ_STREAM, vec!["dlq.>".to_owned()], since).await?;
    Ok(read
        .iter()
        .filter_map(|r| {
            let ce_type = header(&r.raw, "ce-type")?;
            let payload: serde_json::Value = serde_json::from_slice(&r.raw.payload).ok()?;
            let (about, outcome) = match ce_type.as_str() {
                REQUEUED_TYPE | DISCARDED_TYPE => decision(&ce_type, &payload),
                REPAIRED_TYPE => repair(&payload),
                _ => return None,
            };
            let service = r.raw.subject.split('.').nth(1).unwrap_or_default();
            Some(Entry {
                time: time_of(r),
                service: service.to_owned(),
                operator: operator_of(&payload),
                kind: kind_of_type(&ce_type),
                about,
                outcome,
                event_id: header(&r.raw, "ce-id").unwrap_or_default(),
                stream: DLQ_STREAM.to_owned(),
                stream_seq: r.raw.stream_seq,
            })
        })
        .collect())
}

/// A requeue or discard: the dead letter's place, and what came of it with the operator's reason.
fn decision(ce_type: &str, payload: &serde_json::Value) -> (String, String) {
    let done = match payload["new_msg_id"].as_str() {
        Some(id) if ce_type == REQUEUED_TYPE => format!("published again as {id}"),
        _ if ce_type == REQUEUED_TYPE => "published again".to_owned(),
        _ => "discarded".to_owned(),
    };
    let outcome = match payload["reason"].as_str() {
        Some(why) => format!("{done}: {why}"),
        None => done,
    };
    let about = format!(
        "{} {}#{}",
        payload["consumer"].as_str().unwrap_or_default(),
        payload["stream"].as_str().unwrap_or_default(),
        payload["stream_seq"]
    );
    (about, outcome)
}

/// A signed repair: its saga, and the repair with the event that announced the change.
fn repair(payload: &serde_json::Value) -> (String, String) {
    let about = format!("order {}", payload["saga_id"].as_str().unwrap_or_default());
    let outcome = format!(
        "{}: {} {}",
        payload["repair"].as_str().unwrap_or_default(),
        kind_of_type(payload["event_type"].as_str().unwrap_or_default()),
        payload["event_id"].as_str().unwrap_or_default()
    );
    (about, outcome)
}

/// The entries as a table.
pub fn table(entries: &[Entry]) -> String {
    let mut table = Table::new(["TIME", "SERVICE", "OPERATOR", "KIND", "ABOUT", "OUTCOME"]);
    for e in entries {
        table.row([
            output::timestamp(e.time),
            e.service.clone(),
            e.operator.clone(),
            e.kind.clone(),
            e.about.clone(),
            e.outcome.clone(),
        ]);
    }
    format!("{}{} action(s)\n", table.render(), entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(minute: i64, operator: &str, kind: &str) -> Entry {
        Entry {
            time: OffsetDateTime::UNIX_EPOCH + Duration::minutes(minute),
            service: "payment".into(),
            operator: operator.into(),
            kind: kind.into(),
            about: "c1".into(),
            outcome: "credited 1.00 by alice".into(),
            event_id: format!("e{minute}"),
            stream: "PAYMENTS".into(),
            stream_seq: minute as u64,
        }
    }

    fn args(operator: Option<&str>, kind: Option<&str>) -> AuditArgs {
        AuditArgs {
            since: When::Ago(Duration::hours(24)),
            until: None,
            operator: operator.map(str::to_owned),
            kind: kind.map(str::to_owned),
        }
    }

    #[test]
    fn a_time_is_an_rfc3339_instant_or_a_span_back_from_now() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(10);
        assert_eq!(
            "90m".parse::<When>().unwrap().resolve(now),
            now - Duration::minutes(90)
        );
        assert_eq!(
            "7d".parse::<When>().unwrap().resolve(now),
            now - Duration::days(7)
        );
        assert_eq!(
            "1970-01-02T00:00:00Z".parse::<When>().unwrap().resolve(now),
            OffsetDateTime::UNIX_EPOCH + Duration::days(1)
        );
        for bad in ["", "h", "24", "24w", "yesterday", "-3h"] {
            assert!(bad.parse::<When>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn selection_keeps_the_range_the_operator_and_the_kind_oldest_first() {
        let all = vec![
            entry(30, "bob", "payments.credited"),
            entry(10, "alice", "payments.credited"),
            entry(20, "alice", "dlq.requeued"),
            entry(99, "alice", "payments.credited"),
        ];
        let since = OffsetDateTime::UNIX_EPOCH;
        let until = OffsetDateTime::UNIX_EPOCH + Duration::minutes(60);
        let picked = select(all.clone(), &args(Some("alice"), None), since, until);
        let ids: Vec<&str> = picked.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids, ["e10", "e20"]);
        let picked = select(all, &args(None, Some("payments.credited")), since, until);
        let ids: Vec<&str> = picked.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids, ["e10", "e30"]);
    }

    #[test]
    fn the_kinds_are_every_declared_admin_event_and_the_dead_letter_decisions() {
        let kinds = kinds();
        for kind in [
            "orders.product_priced",
            "payments.credited",
            "stock.adjusted",
            "vouchers.issued",
            "points.awarded",
            "dlq.requeued",
            "dlq.discarded",
            "dlq.repaired",
        ] {
            assert!(kinds.iter().any(|k| k == kind), "{kind} missing: {kinds:?}");
        }
    }
}
