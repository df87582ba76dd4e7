//! `GET /api/audit`: every admin change and operator action over a time range, filtered by
//! operator and kind: the rows of `jetsaga audit --json`, read by the same
//! [`crate::audit::collect`]. A requeue or discard made in the console is there under the
//! operator who signed in.

use super::error::{ConsoleError, ConsoleResult};
use super::params::{self, given};
use super::session::Signed;
use super::Shared;
use crate::audit::{self, AuditArgs, Entry, When};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// The query of `GET /api/audit`.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    /// RFC 3339; default 24 hours ago.
    pub from: Option<String>,
    /// RFC 3339; default now.
    pub to: Option<String>,
    pub operator: Option<String>,
    pub kind: Option<String>,
}

/// One row: `jetsaga audit --json`'s entry, with `subject` (what it is about) and `detail`
/// (where the event is) named as the console's pages name them.
#[derive(Debug, Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub entry: Entry,
    pub subject: String,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct Audit {
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    pub entries: Vec<Row>,
    /// Every kind the filter accepts.
    pub kinds: Vec<String>,
}

/// `GET /api/audit`.
pub async fn list(
    Signed(_): Signed,
    State(state): State<Shared>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> ConsoleResult<Json<Audit>> {
    let Query(q) = query?;
    let now = OffsetDateTime::now_utc();
    let from = given(&q.from)
        .map(|s| params::time("from", s))
        .transpose()?
        .unwrap_or(now - Duration::hours(24));
    let to = given(&q.to)
        .map(|s| params::time("to", s))
        .transpose()?
        .unwrap_or(now);
    if from > to {
        return Err(ConsoleError::bad_request(
            "bad_filter",
            "the range is empty: from is after to",
        ));
    }
    if let Some(kind) = given(&q.kind) {
        audit::known_kind(kind)
            .map_err(|e| ConsoleError::bad_request("bad_filter", e.to_string()))?;
    }
    let args = AuditArgs {
        since: When::At(from),
        until: Some(When::At(to)),
        operator: given(&q.operator).map(str::to_owned),
        kind: given(&q.kind).map(str::to_owned),
    };
    let entries = audit::collect(&state.js, &args, from, to)
        .await
        .map_err(|e| ConsoleError::unavailable("reading the audit from the streams", e))?
        .into_iter()
        .map(|entry| Row {
            subject: entry.about.clone(),
            detail: format!(
                "{}#{} event {}",
                entry.stream, entry.stream_seq, entry.event_id
            ),
            entry,
        })
        .collect();
    Ok(Json(Audit {
        from,
        to,
        entries,
        kinds: audit::kinds(),
    }))
}
