//! Traces: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, one order is one OpenTelemetry trace across the
//! five services, its handlers parented across the NATS hops, rooted at the HTTP request.

use jetsaga_scenarios::checker::assert_invariants;
use jetsaga_scenarios::ledger::new_sku;
use jetsaga_scenarios::otlp::{OtlpReceiver, ReceivedSpan};
use jetsaga_scenarios::{Ledger, Svc, System, SystemOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const SETTLE: Duration = Duration::from_secs(60);

const SERVICES: [&str; 5] = [
    "order-service",
    "voucher-service",
    "points-service",
    "payment-service",
    "stock-service",
];

async fn traced_system(receiver: &OtlpReceiver) -> anyhow::Result<System> {
    System::start(SystemOptions {
        service_env: vec![
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                receiver.endpoint().to_owned(),
            ),
            // Export every 200 ms rather than every 5 s, so the test does not wait on the batch.
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "200".into()),
        ],
        ..SystemOptions::default()
    })
    .await
}

/// The spans of the trace(s) that hold `order_id`'s handler spans, once `complete` holds for them.
async fn order_spans(
    receiver: &OtlpReceiver,
    order_id: &str,
    complete: impl Fn(&[ReceivedSpan]) -> bool,
) -> anyhow::Result<Vec<ReceivedSpan>> {
    let started = Instant::now();
    loop {
        let all = receiver.spans();
        let traces: BTreeSet<&str> = all
            .iter()
            .filter(|s| s.attribute("order_id") == Some(order_id))
            .map(|s| s.trace_id.as_str())
            .collect();
        let spans: Vec<ReceivedSpan> = all
            .iter()
            .filter(|s| traces.contains(s.trace_id.as_str()))
            .cloned()
            .collect();
        if complete(&spans) {
            return Ok(spans);
        }
        if started.elapsed() > SETTLE {
            anyhow::bail!(
                "the spans of order {order_id} never completed; {} spans of its traces: {spans:#?}",
                spans.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn services(spans: &[ReceivedSpan]) -> BTreeSet<&str> {
    spans.iter().map(|s| s.service.as_str()).collect()
}

fn handlers_of<'a>(spans: &'a [ReceivedSpan], service: &str) -> Vec<&'a ReceivedSpan> {
    spans
        .iter()
        .filter(|s| s.name == "handle" && s.service == service)
        .collect()
}

/// Whether the span that parents each handler span has arrived too. Each service exports its
/// spans on its own schedule, so a handler's span may arrive before the span, in another service,
/// that emitted its event.
fn every_handler_parent_arrived(spans: &[ReceivedSpan]) -> bool {
    spans
        .iter()
        .filter(|s| s.name == "handle")
        .all(|h| spans.iter().any(|p| p.span_id == h.parent_span_id))
}

/// Every handler span's parent is a span of another service in the same trace.
fn assert_handlers_parented_across_services(spans: &[ReceivedSpan]) {
    let by_id: BTreeMap<&str, &ReceivedSpan> =
        spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    for handler in spans.iter().filter(|s| s.name == "handle") {
        let parent = by_id
            .get(handler.parent_span_id.as_str())
            .unwrap_or_else(|| {
                panic!(
                    "the parent {} of handler span {handler:?} is not in the trace",
                    handler.parent_span_id
                )
            });
        assert_ne!(
            parent.service, handler.service,
            "handler {handler:?} is parented in its own service by {parent:?}"
        );
    }
}

/// The one root is `POST /orders` of the order service.
fn assert_rooted_at_the_request(spans: &[ReceivedSpan]) {
    let roots: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.parent_span_id.is_empty())
        .collect();
    assert_eq!(roots.len(), 1, "one root span: {roots:#?}");
    assert_eq!(roots[0].service, "order-service");
    assert_eq!(roots[0].name, "POST /orders");
    assert_eq!(roots[0].attribute("http.response.status_code"), Some("202"));
}

#[tokio::test]
async fn one_order_is_one_trace_across_all_five_services_parented_across_nats() -> anyhow::Result<()>
{
    // Given the system exporting its traces to a receiver
    let receiver = OtlpReceiver::start().await?;
    let sys = traced_system(&receiver).await?;
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let sku = new_sku("MUG");
    ledger.sku(api, &sku, 1_250, 10).await?;
    let alice = ledger.customer(api, 10_000).await?;
    // When she orders and the order is confirmed
    let order = ledger.order(api, &alice, &[(&sku, 2)], None).await?;
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.status(&order), "CONFIRMED");
    // Then its spans are one trace, from all five services, each handler the child of a span of
    // another service, rooted at the HTTP request
    let spans = order_spans(&receiver, &order, |spans| {
        services(spans).len() == SERVICES.len()
            && !handlers_of(spans, "order-service").is_empty()
            && spans.iter().any(|s| s.parent_span_id.is_empty())
            && every_handler_parent_arrived(spans)
    })
    .await?;
    let traces: BTreeSet<&str> = spans.iter().map(|s| s.trace_id.as_str()).collect();
    assert_eq!(traces.len(), 1, "one trace: {traces:?}");
    assert_eq!(services(&spans), BTreeSet::from(SERVICES));
    for service in SERVICES.into_iter().filter(|s| *s != "order-service") {
        assert!(
            !handlers_of(&spans, service).is_empty(),
            "{service} handled the order"
        );
    }
    assert_handlers_parented_across_services(&spans);
    assert_rooted_at_the_request(&spans);
    let handler = handlers_of(&spans, "payment-service")[0];
    assert_eq!(handler.attribute("consumer"), Some("payment-on-points"));
    assert_eq!(handler.attribute("outcome"), Some("applied"));
    assert!(
        spans.iter().any(|s| s.name == "publish"),
        "the relays' publishes are in the trace"
    );
    Ok(())
}

#[tokio::test]
async fn a_cancelled_orders_compensations_are_in_its_trace() -> anyhow::Result<()> {
    // Given the system exporting its traces, and a customer who cannot pay
    let receiver = OtlpReceiver::start().await?;
    let sys = traced_system(&receiver).await?;
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let sku = new_sku("TV");
    ledger.sku(api, &sku, 50_000, 2).await?;
    let erin = ledger.customer(api, 10_000).await?;
    let code = new_sku("TENOFF");
    ledger.voucher(api, &code, &erin, 1_000, None).await?;
    // When her order with a voucher is cancelled for want of money
    let order = ledger.order(api, &erin, &[(&sku, 1)], Some(&code)).await?;
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.status(&order), "CANCELLED");
    // Then the voucher's release (a compensation) is a handler span of the same trace
    let spans = order_spans(&receiver, &order, |spans| {
        handlers_of(spans, "voucher-service").len() >= 2
    })
    .await?;
    let traces: BTreeSet<&str> = spans.iter().map(|s| s.trace_id.as_str()).collect();
    assert_eq!(traces.len(), 1, "one trace: {traces:?}");
    let voucher_inputs: BTreeSet<&str> = handlers_of(&spans, "voucher-service")
        .iter()
        .filter_map(|s| s.attribute("ce_type"))
        .collect();
    assert!(
        voucher_inputs.len() >= 2,
        "the voucher service reserved, then compensated: {voucher_inputs:?}"
    );
    assert_handlers_parented_across_services(&spans);
    Ok(())
}

#[tokio::test]
async fn a_bad_endpoint_is_a_warning_and_the_services_run_without_traces() -> anyhow::Result<()> {
    // Given services whose endpoint is not a URL
    let sys = System::start(SystemOptions {
        service_env: vec![("OTEL_EXPORTER_OTLP_ENDPOINT".into(), "not a url".into())],
        ..SystemOptions::default()
    })
    .await?;
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let sku = new_sku("CUP");
    ledger.sku(api, &sku, 500, 5).await?;
    let dana = ledger.customer(api, 1_000).await?;
    // When an order is placed, it is confirmed as ever
    let order = ledger.order(api, &dana, &[(&sku, 1)], None).await?;
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.status(&order), "CONFIRMED");
    // And every service said why it runs without traces, naming the value
    for svc in Svc::ALL {
        let log = sys.log(svc);
        assert!(
            log.contains("running without traces") && log.contains("not a url"),
            "{} log: {log}",
            svc.name()
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_callers_traceparent_makes_the_order_a_part_of_the_callers_trace() -> anyhow::Result<()> {
    // Given the system exporting its traces, and a caller already inside a trace of its own
    let receiver = OtlpReceiver::start().await?;
    let sys = traced_system(&receiver).await?;
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let sku = new_sku("PEN");
    ledger.sku(api, &sku, 300, 5).await?;
    let frank = ledger.customer(api, 1_000).await?;
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    // When it places an order with its traceparent
    let answer = reqwest::Client::new()
        .post(format!("{}/orders", api.base(Svc::Order)))
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .json(&serde_json::json!({
            "customer_id": frank,
            "items": [{"sku": sku, "quantity": 1}],
        }))
        .send()
        .await?;
    assert_eq!(answer.status().as_u16(), 202);
    let body: serde_json::Value = answer.json().await?;
    let order = body["order_id"].as_str().expect("an order id").to_owned();
    // Then the request's span is the caller span's child, and the whole saga is in that trace
    let spans = order_spans(&receiver, &order, |spans| {
        services(spans).len() == SERVICES.len()
            && spans.iter().any(|s| s.name == "POST /orders")
            && every_handler_parent_arrived(spans)
    })
    .await?;
    let traces: BTreeSet<&str> = spans.iter().map(|s| s.trace_id.as_str()).collect();
    assert_eq!(traces, BTreeSet::from([caller_trace]), "the caller's trace");
    let request = spans
        .iter()
        .find(|s| s.name == "POST /orders")
        .expect("the request span");
    assert_eq!(request.parent_span_id, caller_span);
    assert_handlers_parented_across_services(&spans);
    Ok(())
}
