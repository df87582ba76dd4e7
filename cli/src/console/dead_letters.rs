//! `GET /api/dead-letters`: the open dead letters of every service, grouped by service, consumer
//! and failure (kind and reason), each with its raw message; `POST /api/dead-letters/requeue` and
//! `/discard`: one, several or a whole group, decided by [`crate::dlq::decide`], the function
//! `jetsaga dlq requeue|discard` calls, under the signed-in operator's name.

use super::error::{ConsoleError, ConsoleResult};
use super::failure;
use super::params::given;
use super::session::{OperatorOnly, Signed};
use super::Shared;
use crate::dlq::{self, Action, DeadLetterRef};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;
use base64::Engine as _;
use jetsaga_contracts::Producer;
use saga_kit::dead_letter::{self, AuditEntry, DeadLetter, Filter};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;

/// At most this many open dead letters are read per service.
pub const MAX_PER_SERVICE: i64 = 1000;

/// One open dead letter as the console shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Letter {
    pub service: &'static str,
    pub id: i64,
    pub subject: String,
    pub consumer: String,
    pub kind: String,
    pub reason: String,
    /// Deliveries before it was dead-lettered.
    pub attempts: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub stream: String,
    pub stream_seq: i64,
    pub headers: serde_json::Value,
    /// The payload as text, or base64 when it is not UTF-8 (`raw_encoding` says which).
    pub raw: String,
    /// `text` or `base64`.
    pub raw_encoding: &'static str,
    /// What operators did with it.
    pub audit: Vec<AuditEntry>,
}

/// The dead letters of one consumer that failed the same way.
#[derive(Debug, Serialize)]
pub struct Group {
    /// `<service>/<consumer>/<kind>/<failure>`: names the group in a requeue or discard.
    pub key: String,
    pub service: &'static str,
    pub consumer: String,
    pub kind: String,
    /// The failure the letters share: their reason without ids and counts
    /// ([`failure::shape`]); each letter keeps its own.
    pub reason: String,
    pub count: usize,
    pub letters: Vec<Letter>,
}

#[derive(Debug, Serialize)]
pub struct Groups {
    pub groups: Vec<Group>,
}

fn group_key(service: &str, consumer: &str, kind: &str, failure: &str) -> String {
    format!("{service}/{consumer}/{kind}/{failure}")
}

fn letter(service: &'static str, dl: DeadLetter, audit: Vec<AuditEntry>) -> Letter {
    let (raw, raw_encoding) = match std::str::from_utf8(&dl.payload) {
        Ok(text) => (text.to_owned(), "text"),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(&dl.payload),
            "base64",
        ),
    };
    Letter {
        service,
        id: dl.id,
        subject: dl.subject,
        consumer: dl.consumer,
        kind: dl.kind,
        reason: dl.reason,
        attempts: dl.deliveries,
        created_at: dl.failed_at,
        stream: dl.stream,
        stream_seq: dl.stream_seq,
        headers: dl.headers,
        raw,
        raw_encoding,
        audit,
    }
}

#[derive(Debug, sqlx::FromRow)]
struct AuditRow {
    dead_letter_id: i64,
    #[sqlx(flatten)]
    entry: AuditEntry,
}

/// The open dead letters of every service, with their audit, in groups (largest first).
pub async fn open_groups(state: &Shared) -> ConsoleResult<Vec<Group>> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for producer in Producer::ALL {
        let pool = state.sources.pool(producer);
        let reading = || format!("reading the dead letters of {producer}");
        let letters = dead_letter::list(
            pool,
            &Filter {
                status: Some("open".into()),
                limit: MAX_PER_SERVICE,
            },
        )
        .await
        .map_err(|e| ConsoleError::unavailable(reading(), e))?;
        let ids: Vec<i64> = letters.iter().map(|l| l.id).collect();
        let mut audits: HashMap<i64, Vec<AuditEntry>> = HashMap::new();
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT dead_letter_id, action, actor, new_msg_id, reason, at FROM kit_dead_letter_audit
             WHERE dead_letter_id = ANY($1) ORDER BY id",
        )
        .bind(&ids)
        .fetch_all(pool)
        .await
        .map_err(|e| ConsoleError::unavailable(reading(), e))?;
        for row in rows {
            audits
                .entry(row.dead_letter_id)
                .or_default()
                .push(row.entry);
        }
        let service = producer.service();
        for dl in letters {
            let failure = failure::shape(&dl.reason);
            let key = group_key(service, &dl.consumer, &dl.kind, &failure);
            let audit = audits.remove(&dl.id).unwrap_or_default();
            let group = groups.entry(key.clone()).or_insert_with(|| Group {
                key,
                service,
                consumer: dl.consumer.clone(),
                kind: dl.kind.clone(),
                reason: failure,
                count: 0,
                letters: Vec::new(),
            });
            group.count += 1;
            group.letters.push(letter(service, dl, audit));
        }
    }
    let mut groups: Vec<Group> = groups.into_values().collect();
    groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    Ok(groups)
}

/// `GET /api/dead-letters`.
pub async fn list(Signed(_): Signed, State(state): State<Shared>) -> ConsoleResult<Json<Groups>> {
    Ok(Json(Groups {
        groups: open_groups(&state).await?,
    }))
}

/// A dead letter named in a request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Named {
    pub service: String,
    pub id: i64,
}

/// The body of a requeue or discard: some letters, or a group, and why.
#[derive(Debug, Deserialize)]
pub struct Decision {
    #[serde(default)]
    pub letters: Option<Vec<Named>>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// One that could not be requeued or discarded, and why.
#[derive(Debug, Serialize)]
pub struct Failed {
    pub service: String,
    pub id: i64,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct Decisions {
    pub done: Vec<Named>,
    pub failed: Vec<Failed>,
    /// The operator recorded for each.
    pub by: String,
    pub reason: String,
}

/// The dead letters a decision names, checked before anything is done.
async fn named(state: &Shared, decision: &Decision) -> ConsoleResult<Vec<DeadLetterRef>> {
    match (&decision.letters, &decision.group) {
        (Some(letters), None) if !letters.is_empty() => letters
            .iter()
            .map(|n| {
                format!("{}:{}", n.service, n.id)
                    .parse::<DeadLetterRef>()
                    .map_err(|e| ConsoleError::bad_request("bad_dead_letter", e))
            })
            .collect(),
        (None, Some(key)) => {
            let group = open_groups(state)
                .await?
                .into_iter()
                .find(|g| g.key == *key)
                .ok_or_else(|| {
                    ConsoleError::not_found(
                        "group_not_found",
                        format!("no open dead letters in group {key:?} (already dealt with?)"),
                    )
                })?;
            Ok(group
                .letters
                .iter()
                .map(|l| DeadLetterRef {
                    producer: Producer::from_service(l.service).unwrap_or(Producer::ORDER),
                    id: l.id,
                })
                .collect())
        }
        _ => Err(ConsoleError::bad_request(
            "bad_request",
            "name either \"letters\" (a non-empty list of {\"service\",\"id\"}) or a \"group\" key",
        )),
    }
}

async fn decide(
    OperatorOnly(who): OperatorOnly,
    state: Shared,
    body: Result<Json<Decision>, JsonRejection>,
    action: Action,
) -> ConsoleResult<Json<Decisions>> {
    let Json(decision) = body?;
    let reason = given(&decision.reason)
        .ok_or_else(|| ConsoleError::bad_request("reason_required", "say why, in \"reason\""))?
        .to_owned();
    let actor = who.actor()?;
    let refs = named(&state, &decision).await?;
    tracing::info!(
        operator = %actor,
        action = action.past(),
        dead_letters = refs.len(),
        %reason,
        "console: dead letters decided"
    );
    let decided = dlq::decide(&state.targets, &refs, &actor, Some(&reason), action)
        .await
        .map_err(|e| ConsoleError::unavailable("deciding on the dead letters", e))?;
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for d in decided {
        let service = d.dead_letter.producer.service().to_owned();
        match d.result {
            Ok(_) => done.push(Named {
                service,
                id: d.dead_letter.id,
            }),
            Err(e) => failed.push(Failed {
                service,
                id: d.dead_letter.id,
                message: e.to_string(),
            }),
        }
    }
    Ok(Json(Decisions {
        done,
        failed,
        by: actor.to_string(),
        reason,
    }))
}

/// `POST /api/dead-letters/requeue`.
pub async fn requeue(
    who: OperatorOnly,
    State(state): State<Shared>,
    body: Result<Json<Decision>, JsonRejection>,
) -> ConsoleResult<Json<Decisions>> {
    decide(who, state, body, Action::Requeue).await
}

/// `POST /api/dead-letters/discard`.
pub async fn discard(
    who: OperatorOnly,
    State(state): State<Shared>,
    body: Result<Json<Decision>, JsonRejection>,
) -> ConsoleResult<Json<Decisions>> {
    decide(who, state, body, Action::Discard).await
}
