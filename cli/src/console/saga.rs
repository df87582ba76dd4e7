//! `GET /api/sagas/{order_id}`: one saga whole. The order as the order service shows it
//! (`order_service::api::get_order::view`), its steps across every stream as `jetsaga trace` reads
//! them ([`crate::trace::steps`]) with each event's headers and payload, its trace id, and the
//! reconciler's verdict on this one order ([`crate::reconcile::check::one_order`]).

use super::error::{ConsoleError, ConsoleResult};
use super::session::Signed;
use super::Shared;
use crate::reconcile::check;
use crate::reconcile::rules::Verdict as RuleVerdict;
use crate::trace::{self, Step, Summary};
use axum::extract::{Path, State};
use axum::Json;
use jetsaga_contracts::{OrderId, Producer};
use order_service::api::get_order::OrderView;
use saga_kit::envelope::TraceParent;
use serde::Serialize;
use std::collections::BTreeMap;
use uuid::Uuid;

/// One step with what its event carried.
#[derive(Debug, Serialize)]
pub struct StepDetail {
    #[serde(flatten)]
    pub step: Step,
    pub headers: BTreeMap<String, String>,
    pub payload: serde_json::Value,
}

/// A difference the reconciler finds in this saga.
#[derive(Debug, Serialize)]
pub struct VerdictDifference {
    pub kind: &'static str,
    pub service: &'static str,
    pub detail: String,
    /// What a repair would do, or `None` when it needs a person.
    pub repair: Option<&'static str>,
}

/// The reconciler's verdict.
#[derive(Debug, Serialize)]
pub struct Verdict {
    /// No difference (a saga still running or settling is not judged, and counts as clean).
    pub clean: bool,
    /// `judged`, `running` (PENDING within its deadline and slack) or `settling` (ended moments
    /// ago; its compensations may be on their way).
    pub state: &'static str,
    pub differences: Vec<VerdictDifference>,
}

impl Verdict {
    fn of(verdict: RuleVerdict) -> Verdict {
        match verdict {
            RuleVerdict::Running => Verdict {
                clean: true,
                state: "running",
                differences: Vec::new(),
            },
            RuleVerdict::Settling => Verdict {
                clean: true,
                state: "settling",
                differences: Vec::new(),
            },
            RuleVerdict::Judged(differences) => Verdict {
                clean: differences.is_empty(),
                state: "judged",
                differences: differences
                    .into_iter()
                    .map(|d| VerdictDifference {
                        kind: d.kind.as_str(),
                        service: d.service.service(),
                        detail: d.detail,
                        repair: d.repair.map(|r| r.describe()),
                    })
                    .collect(),
            },
        }
    }
}

/// The answer of `GET /api/sagas/{order_id}`.
#[derive(Debug, Serialize)]
pub struct Saga {
    /// As `GET /orders/{id}` of the order service answers; `None` when only the streams know it.
    pub order: Option<OrderView>,
    /// The W3C trace id every step's `traceparent` carries (from the first step that has one).
    pub trace_id: Option<String>,
    pub summary: Summary,
    pub steps: Vec<StepDetail>,
    /// The lanes of the sequence diagram, in saga order.
    pub services: Vec<&'static str>,
    /// `None` when the order database does not hold the order.
    pub verdict: Option<Verdict>,
}

/// The trace id of a `traceparent` (`00-<trace id>-<span id>-<flags>`), as the kit reads one.
pub fn trace_id(traceparent: &str) -> Option<String> {
    TraceParent::parse(traceparent).map(|t| t.trace_id_hex())
}

/// `GET /api/sagas/{order_id}`: 404 for an order neither the order database nor a stream knows.
pub async fn show(
    Signed(_): Signed,
    State(state): State<Shared>,
    Path(raw): Path<String>,
) -> ConsoleResult<Json<Saga>> {
    let uuid = Uuid::parse_str(raw.trim()).map_err(|_| {
        ConsoleError::bad_request("bad_order_id", format!("{raw:?} is not an order id"))
    })?;
    let order_id = OrderId::from_uuid(uuid);
    let order = order_service::api::get_order::view(state.sources.pool(Producer::ORDER), order_id)
        .await
        .map_err(|e| ConsoleError::unavailable(format!("reading order {order_id}"), e))?;
    let events = saga_kit::trace::read_saga(&state.js, &Producer::ALL, &uuid.to_string())
        .await
        .map_err(|e| ConsoleError::unavailable(format!("tracing order {order_id}"), e))?;
    if order.is_none() && events.is_empty() {
        return Err(ConsoleError::not_found(
            "saga_not_found",
            format!("order {order_id} is in neither the order database nor a stream"),
        ));
    }
    let trace_id = events
        .iter()
        .find_map(|e| e.headers.get("traceparent").and_then(|t| trace_id(t)));
    let steps = trace::steps(&events);
    let summary = trace::summary(uuid, &steps);
    let steps = steps
        .into_iter()
        .zip(events)
        .map(|(step, event)| StepDetail {
            step,
            headers: event.headers,
            payload: event.payload,
        })
        .collect();
    let options = state.timing.options(None);
    let verdict = check::one_order(&state.sources, order_id, &options)
        .await
        .map_err(|e| ConsoleError::unavailable(format!("reconciling order {order_id}"), e))?
        .map(Verdict::of);
    Ok(Json(Saga {
        order,
        trace_id,
        summary,
        steps,
        services: Producer::ALL.iter().map(|p| p.service()).collect(),
        verdict,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_id_is_the_second_field_of_a_traceparent() {
        assert_eq!(
            trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(trace_id("garbage"), None);
        assert_eq!(
            trace_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
    }
}
