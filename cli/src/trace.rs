//! `jetsaga trace <order_id>`: one saga as a timeline across every stream — each event, its
//! service, time, time since the previous step, what caused it and its outcome — or as a Mermaid
//! sequence diagram (`--format mermaid`) to look at instead of read.

use crate::cli::Outcome;
use crate::output::{self, Table};
use crate::targets::Targets;
use anyhow::Context as _;
use clap::{Args, ValueEnum};
use jetsaga_contracts::Producer;
use saga_kit::trace::{read_saga, TraceEvent};
use serde::Serialize;
use std::collections::HashMap;
use std::process::ExitCode;
use uuid::Uuid;

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The order (saga) id.
    pub order_id: Uuid,
    /// A timeline table, or a Mermaid sequence diagram.
    #[arg(long, value_enum, default_value_t = TraceFormat::Table)]
    pub format: TraceFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceFormat {
    Table,
    Mermaid,
}

/// One step of the timeline, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Step {
    pub n: usize,
    pub service: &'static str,
    pub event: String,
    #[serde(with = "time::serde::rfc3339")]
    pub time: time::OffsetDateTime,
    /// Milliseconds since the previous step (0 for the first).
    pub since_previous_ms: f64,
    /// The step that caused this one, or `None` for a root event (an API call, a timer).
    pub caused_by: Option<usize>,
    pub outcome: String,
    pub event_id: String,
    pub stream: &'static str,
    pub stream_seq: u64,
}

/// How the saga ended, from its events.
#[derive(Debug, Serialize, PartialEq)]
pub struct Summary {
    pub order_id: Uuid,
    /// CONFIRMED, CANCELLED or PENDING.
    pub status: String,
    pub cancel_reason: Option<String>,
    pub events: usize,
    /// From the first event to the last.
    pub duration_ms: f64,
}

pub async fn run(args: TraceArgs, targets: &Targets, json: bool) -> Outcome {
    let js = targets.nats().await?;
    let events = read_saga(&js, &Producer::ALL, &args.order_id.to_string())
        .await
        .with_context(|| format!("tracing order {}", args.order_id))?;
    if events.is_empty() {
        anyhow::bail!(
            "order {} has no events on any stream (unknown order, or older than the streams' retention)",
            args.order_id
        );
    }
    let steps = steps(&events);
    let summary = summary(args.order_id, &steps);
    if json {
        #[derive(Serialize)]
        struct Trace<'a> {
            summary: &'a Summary,
            steps: &'a [Step],
        }
        output::json(&Trace {
            summary: &summary,
            steps: &steps,
        })?;
    } else {
        match args.format {
            TraceFormat::Table => print!("{}", table(&steps, &summary)),
            TraceFormat::Mermaid => print!("{}", mermaid(&steps)),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The events as numbered steps with their cause and outcome.
pub fn steps(events: &[TraceEvent]) -> Vec<Step> {
    let index: HashMap<&str, usize> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.event_id.as_str(), i + 1))
        .collect();
    let mut previous = None;
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let since = previous
                .map(|p: time::OffsetDateTime| (e.time - p).as_seconds_f64() * 1000.0)
                .unwrap_or(0.0);
            previous = Some(e.time);
            let caused_by = e
                .causation_id
                .as_deref()
                .filter(|c| *c != e.event_id)
                .and_then(|c| index.get(c).copied());
            Step {
                n: i + 1,
                service: e.service,
                event: e.event.clone(),
                time: e.time,
                since_previous_ms: since,
                caused_by,
                outcome: Producer::from_service(e.service)
                    .map(|p| outcome(p, &e.ce_type, &e.payload))
                    .unwrap_or_default(),
                event_id: e.event_id.clone(),
                stream: e.stream,
                stream_seq: e.stream_seq,
            }
        })
        .collect()
}

/// What an event says happened, in a few words, from the typed event its producer emitted.
pub fn outcome(producer: Producer, ce_type: &str, payload: &serde_json::Value) -> String {
    let bytes = payload.to_string().into_bytes();
    (crate::participants::of(producer).describe)(ce_type, &bytes)
        .unwrap_or_else(|e| format!("undecodable: {e}"))
}

/// Each producer's events in a few words.
pub mod describe {
    use crate::output;
    use jetsaga_contracts::{
        DecodeError, EventSet, Money, OrderEvent, PaymentEvent, PointsEvent, StockEvent,
        VoucherEvent,
    };

    fn money(m: Money) -> String {
        output::cents(m.cents())
    }

    pub fn order(ce_type: &str, bytes: &[u8]) -> Result<String, DecodeError> {
        OrderEvent::from_payload(ce_type, bytes).map(|e| match e {
            OrderEvent::OrderCreated(e) => format!(
                "accepted, total {}{}",
                money(e.total),
                e.voucher_code
                    .map(|v| format!(", voucher {v}"))
                    .unwrap_or_default()
            ),
            OrderEvent::OrderConfirmed(_) => "CONFIRMED".into(),
            OrderEvent::OrderCancelled(e) => format!("CANCELLED: {}", e.reason.as_str()),
            OrderEvent::ProductPriced(e) => {
                format!("{} priced {} by {}", e.sku, money(e.price), e.actor)
            }
        })
    }

    pub fn voucher(ce_type: &str, bytes: &[u8]) -> Result<String, DecodeError> {
        VoucherEvent::from_payload(ce_type, bytes).map(|e| match e {
            VoucherEvent::VoucherIssued(e) => {
                format!("issued, discount {} by {}", money(e.discount), e.actor)
            }
            VoucherEvent::VoucherReserved(e) => format!("discount {}", money(e.discount)),
            VoucherEvent::VoucherRejected(e) => format!(
                "rejected: {}",
                serde_json::to_value(e.reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
            VoucherEvent::VoucherReleased(_) => "voucher available again".into(),
            VoucherEvent::VoucherRedeemed(_) => "voucher redeemed".into(),
        })
    }

    pub fn points(ce_type: &str, bytes: &[u8]) -> Result<String, DecodeError> {
        PointsEvent::from_payload(ce_type, bytes).map(|e| match e {
            PointsEvent::PointsAwarded(e) => {
                format!("awarded {} points by {}", e.points, e.actor)
            }
            PointsEvent::PointsReserved(e) => format!("{} points held", e.points),
            PointsEvent::PointsRejected(e) => {
                format!("rejected: {} points asked, too few available", e.requested)
            }
            PointsEvent::PointsReleased(e) => format!("{} points available again", e.points),
            PointsEvent::PointsEarned(e) => {
                format!("{} points spent, {} earned", e.spent, e.earned)
            }
        })
    }

    pub fn payment(ce_type: &str, bytes: &[u8]) -> Result<String, DecodeError> {
        PaymentEvent::from_payload(ce_type, bytes).map(|e| match e {
            PaymentEvent::AccountCredited(e) => {
                format!("credited {} by {}", money(e.amount), e.actor)
            }
            PaymentEvent::PaymentSucceeded(e) => format!("charged {}", money(e.amount)),
            PaymentEvent::PaymentFailed(e) => {
                format!("not charged {}: balance too low", money(e.amount))
            }
            PaymentEvent::PaymentRefunded(e) => format!("refunded {}", money(e.amount)),
        })
    }

    pub fn stock(ce_type: &str, bytes: &[u8]) -> Result<String, DecodeError> {
        StockEvent::from_payload(ce_type, bytes).map(|e| match e {
            StockEvent::StockAdjusted(e) => format!("{} {:+} by {}", e.sku, e.delta, e.actor),
            StockEvent::StockReserved(e) => format!("{} line(s) held", e.lines.len()),
            StockEvent::StockFailed(e) => format!(
                "{}: {} requested, {} available",
                e.sku, e.requested, e.available
            ),
            StockEvent::StockReleased(_) => "stock released".into(),
        })
    }
}

/// CONFIRMED, CANCELLED (with its reason) or PENDING, and how long the saga took.
pub fn summary(order_id: Uuid, steps: &[Step]) -> Summary {
    let terminal = steps
        .iter()
        .find(|s| s.event == "orders.confirmed" || s.event == "orders.cancelled");
    let (status, cancel_reason) = match terminal {
        Some(s) if s.event == "orders.confirmed" => ("CONFIRMED".to_owned(), None),
        Some(s) => (
            "CANCELLED".to_owned(),
            s.outcome.strip_prefix("CANCELLED: ").map(str::to_owned),
        ),
        None => ("PENDING".to_owned(), None),
    };
    let duration_ms = match (steps.first(), steps.last()) {
        (Some(a), Some(b)) => (b.time - a.time).as_seconds_f64() * 1000.0,
        _ => 0.0,
    };
    Summary {
        order_id,
        status,
        cancel_reason,
        events: steps.len(),
        duration_ms,
    }
}

/// The timeline as a table with a closing summary line.
pub fn table(steps: &[Step], summary: &Summary) -> String {
    let mut table = Table::new([
        "#",
        "TIME",
        "+MS",
        "SERVICE",
        "EVENT",
        "CAUSED BY",
        "OUTCOME",
    ]);
    for s in steps {
        table.row([
            s.n.to_string(),
            output::timestamp(s.time),
            format!("{:.1}", s.since_previous_ms),
            s.service.to_owned(),
            s.event.clone(),
            s.caused_by
                .map(|c| format!("#{c}"))
                .unwrap_or_else(|| "root".to_owned()),
            s.outcome.clone(),
        ]);
    }
    let mut text = table.render();
    text.push_str(&format!(
        "order {}: {}{} after {:.1} ms, {} events\n",
        summary.order_id,
        summary.status,
        summary
            .cancel_reason
            .as_ref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default(),
        summary.duration_ms,
        summary.events
    ));
    text
}

/// The saga as a Mermaid sequence diagram: each event is an arrow from the service that emitted
/// the event it reacted to (or from the client, for a root event) to the service that emitted it.
pub fn mermaid(steps: &[Step]) -> String {
    let mut text = String::from("sequenceDiagram\n    autonumber\n    actor client\n");
    for service in ["order", "voucher", "payment", "stock"] {
        text.push_str(&format!("    participant {service}\n"));
    }
    for s in steps {
        let from = s
            .caused_by
            .and_then(|c| steps.get(c - 1))
            .map(|c| c.service)
            .unwrap_or("client");
        let label = if s.outcome.is_empty() {
            s.event.clone()
        } else {
            format!("{}: {}", s.event, s.outcome)
        };
        text.push_str(&format!(
            "    {from}->>{}: {} (+{:.0} ms)\n",
            s.service,
            mermaid_text(&label),
            s.since_previous_ms
        ));
    }
    text
}

/// Mermaid message text may not contain `;` or `#` (entity syntax) or line breaks.
fn mermaid_text(s: &str) -> String {
    s.replace([';', '#', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jetsaga_contracts::events::{order, payment, voucher};
    use jetsaga_contracts::{
        CancelReason, CustomerId, EventSet, Money, OrderEvent, OrderId, PaymentEvent, VoucherEvent,
    };
    use time::macros::datetime;

    fn event<E: EventSet>(
        id: &str,
        cause: &str,
        service: &'static str,
        ms: i64,
        e: E,
    ) -> TraceEvent {
        let t = datetime!(2026-11-21 10:00:00 UTC) + time::Duration::milliseconds(ms);
        let subject = e.subject();
        let mut parts = subject.split('.');
        let name = format!("{}.{}", parts.next().unwrap(), parts.next().unwrap());
        TraceEvent {
            service,
            stream: "X",
            stream_seq: 1,
            subject,
            event_id: id.into(),
            ce_type: e.ce_type().into(),
            event: name,
            causation_id: Some(cause.into()),
            time: t,
            stored: t,
            payload: serde_json::from_slice(&e.to_payload()).unwrap(),
            headers: Default::default(),
        }
    }

    fn saga() -> Vec<TraceEvent> {
        let order_id = OrderId::new_random();
        let customer_id = CustomerId::new_random();
        let total = Money::from_cents(2500).unwrap();
        vec![
            event(
                "a",
                "a",
                "order",
                0,
                OrderEvent::from(order::OrderCreated {
                    order_id,
                    customer_id,
                    lines: vec![],
                    total,
                    voucher_code: None,
                    points: None,
                    deadline: datetime!(2026-11-21 10:00:30 UTC),
                    idempotency_key: None,
                }),
            ),
            event(
                "b",
                "a",
                "voucher",
                4,
                VoucherEvent::from(voucher::VoucherReserved {
                    order_id,
                    customer_id,
                    voucher_code: None,
                    lines: vec![],
                    total,
                    discount: Money::ZERO,
                    points: None,
                }),
            ),
            event(
                "c",
                "b",
                "payment",
                9,
                PaymentEvent::from(payment::PaymentFailed {
                    order_id,
                    customer_id,
                    amount: total,
                }),
            ),
            event(
                "d",
                "c",
                "order",
                12,
                OrderEvent::from(order::OrderCancelled {
                    order_id,
                    reason: CancelReason::PaymentFailed,
                }),
            ),
        ]
    }

    #[test]
    fn steps_know_their_cause_and_the_time_since_the_previous_step() {
        let steps = steps(&saga());
        assert_eq!(steps[0].caused_by, None, "a root event has no cause");
        assert_eq!(steps[2].caused_by, Some(2));
        assert_eq!(steps[2].since_previous_ms, 5.0);
        assert_eq!(steps[2].outcome, "not charged 25.00: balance too low");
    }

    #[test]
    fn summary_takes_the_status_from_the_terminal_event() {
        let s = summary(Uuid::nil(), &steps(&saga()));
        assert_eq!(s.status, "CANCELLED");
        assert_eq!(s.cancel_reason.as_deref(), Some("payment_failed"));
        assert_eq!(s.duration_ms, 12.0);
        let pending = summary(Uuid::nil(), &steps(&saga()[..2]));
        assert_eq!(pending.status, "PENDING");
    }

    #[test]
    fn mermaid_draws_an_arrow_from_the_cause_to_the_emitter() {
        let m = mermaid(&steps(&saga()));
        assert!(m.starts_with("sequenceDiagram\n"));
        assert!(
            m.contains("client->>order: orders.created: accepted, total 25.00 (+0 ms)"),
            "{m}"
        );
        assert!(
            m.contains("voucher->>payment: payments.failed: not charged 25.00"),
            "{m}"
        );
        assert!(
            m.contains("payment->>order: orders.cancelled: CANCELLED: payment_failed"),
            "{m}"
        );
    }
}
