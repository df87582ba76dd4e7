//! `POST /api/reconcile`: the reconciler's check for a business date (with or without a
//! settlement file), each difference with what a repair would do; `POST /api/reconcile/repair`:
//! after the person confirmed, the repair, by [`crate::reconcile::reconcile`], the function
//! `jetsaga reconcile --repair` runs.
//!
//! The check only reads and is open to viewers; the repair needs an operator and
//! `"confirm": true`, so a stray request repairs nothing.

use super::error::{ConsoleError, ConsoleResult};
use super::params::given;
use super::session::{OperatorOnly, Signed};
use super::Shared;
use crate::reconcile::check::{BusinessDay, Options};
use crate::reconcile::difference::Difference;
use crate::reconcile::repair::{RepairOutcome, RepairResult};
use crate::reconcile::{self as reconciler, settlement, Reconciled};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;
use jetsaga_contracts::Actor;
use serde::{Deserialize, Serialize};
use time::Date;

/// The body of a check or a repair.
#[derive(Debug, Deserialize)]
pub struct Request {
    /// The UTC business date, `YYYY-MM-DD`; none: every order.
    #[serde(default)]
    pub date: Option<String>,
    /// The provider's settlement CSV (`payment_id,amount_cents,time`), as text.
    #[serde(default)]
    pub settlement: Option<String>,
    /// A repair is made only with `true`.
    #[serde(default)]
    pub confirm: Option<bool>,
}

/// A difference as the console shows it.
#[derive(Debug, Serialize)]
pub struct Shown {
    /// Names it across a check and its repair: `<kind>/<service>/<entity>/<id>`.
    pub id: String,
    pub kind: &'static str,
    pub service: &'static str,
    pub order_id: Option<String>,
    pub detail: String,
    pub repairable: bool,
    /// What a repair will do, in words; `None`: it needs a person.
    pub repair: Option<&'static str>,
}

/// `<kind>/<service>/<entity>/<id>`.
pub fn difference_id(d: &Difference) -> String {
    format!(
        "{}/{}/{}/{}",
        d.kind.as_str(),
        d.service.service(),
        d.entity.type_name(),
        d.entity.id()
    )
}

fn shown(d: &Difference) -> Shown {
    Shown {
        id: difference_id(d),
        kind: d.kind.as_str(),
        service: d.service.service(),
        order_id: d.entity.order_id().map(|o| o.to_string()),
        detail: d.detail.clone(),
        repairable: !d.needs_person(),
        repair: d.repair.map(|r| r.describe()),
    }
}

/// The answer of a check.
#[derive(Debug, Serialize)]
pub struct Checked {
    pub date: Option<String>,
    pub clean: bool,
    pub orders_checked: u64,
    /// PENDING within deadline plus slack: not judged.
    pub running: u64,
    /// Ended moments ago: judged on a later run.
    pub settling: u64,
    pub differences: Vec<Shown>,
}

/// A repaired difference.
#[derive(Debug, Serialize)]
pub struct Repaired {
    pub id: String,
    pub detail: String,
    /// The event that announces the repair, e.g. `jetsaga.payments.refunded.v1`.
    pub event_type: String,
    pub event_id: String,
}

/// A difference still there after the repair, and why.
#[derive(Debug, Serialize)]
pub struct Left {
    pub id: String,
    pub detail: String,
    pub why: String,
}

/// The answer of a repair.
#[derive(Debug, Serialize)]
pub struct RepairAnswer {
    pub date: Option<String>,
    pub repaired: Vec<Repaired>,
    pub left: Vec<Left>,
    /// Compensations of orders the repair cancelled, on their way.
    pub in_flight: usize,
    /// The operator who repaired.
    pub by: String,
}

/// What a request asks to check, checked before any database is read.
struct Asked {
    date: Option<Date>,
    options: Options,
    settlement: Option<Vec<settlement::SettlementRow>>,
}

fn asked(state: &Shared, request: &Request) -> ConsoleResult<Asked> {
    let date = given(&request.date)
        .map(|d| {
            Date::parse(d, time::macros::format_description!("[year]-[month]-[day]")).map_err(
                |_| {
                    ConsoleError::bad_request(
                        "bad_date",
                        format!("{d:?} is not a date like 2026-03-01"),
                    )
                },
            )
        })
        .transpose()?;
    let settlement = request
        .settlement
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(|text| {
            if date.is_none() {
                return Err(ConsoleError::bad_request(
                    "date_required",
                    "a settlement file is compared with one business date: give \"date\"",
                ));
            }
            settlement::parse(text.as_bytes(), "the settlement file")
                .map_err(|e| ConsoleError::bad_request("bad_settlement", e.to_string()))
        })
        .transpose()?;
    Ok(Asked {
        date,
        options: state.timing.options(date.map(BusinessDay::new)),
        settlement,
    })
}

async fn run(
    state: &Shared,
    asked: &Asked,
    repair_by: Option<&Actor>,
) -> ConsoleResult<Reconciled> {
    reconciler::reconcile(
        &state.sources,
        &state.targets,
        &asked.options,
        asked.settlement.as_deref(),
        repair_by,
    )
    .await
    .map_err(|e| ConsoleError::unavailable("reconciling", e))
}

/// `POST /api/reconcile`: the check only (viewers too).
pub async fn check(
    Signed(_): Signed,
    State(state): State<Shared>,
    body: Result<Json<Request>, JsonRejection>,
) -> ConsoleResult<Json<Checked>> {
    let Json(request) = body?;
    let asked = asked(&state, &request)?;
    let found = run(&state, &asked, None).await?;
    Ok(Json(Checked {
        date: asked.date.map(|d| d.to_string()),
        clean: found.first.differences.is_empty(),
        orders_checked: found.first.orders,
        running: found.first.running,
        settling: found.first.settling,
        differences: found.first.differences.iter().map(shown).collect(),
    }))
}

fn why_left(d: &Difference, repairs: &[RepairResult]) -> String {
    let id = difference_id(d);
    let tried = repairs
        .iter()
        .find(|r| difference_id(&r.difference) == id)
        .map(|r| &r.outcome);
    match (d.repair, tried) {
        (None, _) => "needs a person: no ordinary event repairs it".to_owned(),
        (Some(_), Some(RepairOutcome::Failed(e))) => format!("the repair failed: {e}"),
        (Some(_), Some(RepairOutcome::Emitted { .. })) => {
            "repaired; the re-check still sees it (its events are on their way)".to_owned()
        }
        (Some(_), Some(RepairOutcome::AlreadyConsistent(found))) => {
            format!("the owner found nothing to change: {found}")
        }
        (Some(_), None) => "appeared after the check; run the check again".to_owned(),
    }
}

/// `POST /api/reconcile/repair`: an operator's repair, after `"confirm": true`.
pub async fn repair(
    OperatorOnly(who): OperatorOnly,
    State(state): State<Shared>,
    body: Result<Json<Request>, JsonRejection>,
) -> ConsoleResult<Json<RepairAnswer>> {
    let Json(request) = body?;
    if request.confirm != Some(true) {
        return Err(ConsoleError::bad_request(
            "confirmation_required",
            "a repair changes the services' state: send \"confirm\": true after the person confirmed",
        ));
    }
    let asked = asked(&state, &request)?;
    let actor = who.actor()?;
    tracing::info!(operator = %actor, date = ?asked.date, "console: reconcile repair");
    let done = run(&state, &asked, Some(&actor)).await?;
    let repairs = done.repairs.unwrap_or_default();
    let repaired = repairs
        .iter()
        .filter_map(|r| match &r.outcome {
            RepairOutcome::Emitted { event_id, ce_type } => Some(Repaired {
                id: difference_id(&r.difference),
                detail: r.difference.detail.clone(),
                event_type: ce_type.clone(),
                event_id: event_id.clone(),
            }),
            _ => None,
        })
        .collect();
    let left = done
        .remaining
        .iter()
        .map(|d| Left {
            id: difference_id(d),
            detail: d.detail.clone(),
            why: why_left(d, &repairs),
        })
        .collect();
    Ok(Json(RepairAnswer {
        date: asked.date.map(|d| d.to_string()),
        repaired,
        left,
        in_flight: done.in_flight,
        by: actor.to_string(),
    }))
}
