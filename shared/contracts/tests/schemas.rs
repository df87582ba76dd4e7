//! The published contract documents are what the code says: the committed AsyncAPI document is
//! the generated one, and every event the code can emit validates against its payload schema.

use jetsaga_contracts::events::{order, payment, points, stock, voucher};
use jetsaga_contracts::{
    asyncapi, Actor, CancelReason, CustomerId, EventSet, Money, OrderEvent, OrderId, OrderLine,
    PaymentEvent, Points, PointsEvent, PointsRejectReason, RejectReason, Sku, StockEvent,
    StockLine, VoucherCode, VoucherEvent,
};
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

fn cents(c: i64) -> Money {
    Money::from_cents(c).unwrap()
}

fn sample<E: EventSet>(event: impl Into<E>) -> (&'static str, Vec<u8>) {
    let event: E = event.into();
    (event.ce_type(), event.to_payload())
}

/// One event of every type, with the optional fields both set and left out where there are any.
fn samples() -> Vec<(&'static str, Vec<u8>)> {
    let (order_id, customer) = (OrderId::new_random(), CustomerId::new_random());
    let operator = Actor::parse("alice").unwrap();
    let sku = Sku::parse("SKU-1").unwrap();
    let code = VoucherCode::parse("WELCOME5").unwrap();
    let lines = vec![OrderLine {
        sku: sku.clone(),
        quantity: 2,
        unit_price: cents(1250),
    }];
    let stock_lines = vec![StockLine {
        sku: sku.clone(),
        quantity: 2,
    }];
    let created = |voucher_code, idempotency_key| order::OrderCreated {
        order_id,
        customer_id: customer,
        lines: lines.clone(),
        total: cents(2500),
        voucher_code,
        points: Points::new(300).ok(),
        deadline: OffsetDateTime::UNIX_EPOCH,
        idempotency_key,
    };
    vec![
        sample::<OrderEvent>(created(Some(code.clone()), Some("k-1".to_owned()))),
        sample::<OrderEvent>(created(None, None)),
        sample::<OrderEvent>(order::OrderConfirmed {
            order_id,
            customer_id: customer,
            total: cents(2500),
            discount: cents(500),
            voucher_code: Some(code.clone()),
            points_spent: Points::new(300).unwrap(),
        }),
        sample::<OrderEvent>(order::OrderCancelled {
            order_id,
            reason: CancelReason::Timeout,
        }),
        (
            "jetsaga.orders.cancelled.v2",
            serde_json::to_vec(&order::OrderCancelledV2 {
                order_id,
                reason: CancelReason::Timeout,
                detail: "the saga did not finish within 30 s".into(),
            })
            .unwrap(),
        ),
        sample::<OrderEvent>(order::ProductPriced {
            sku: sku.clone(),
            name: "Mug".into(),
            price: cents(1250),
            actor: operator.clone(),
        }),
        sample::<VoucherEvent>(voucher::VoucherIssued {
            code: code.clone(),
            customer_id: customer,
            discount: cents(500),
            expires_at: Some(OffsetDateTime::UNIX_EPOCH),
            actor: operator.clone(),
        }),
        sample::<VoucherEvent>(voucher::VoucherReserved {
            order_id,
            customer_id: customer,
            voucher_code: None,
            lines: lines.clone(),
            total: cents(2500),
            discount: Money::ZERO,
            points: None,
        }),
        sample::<PointsEvent>(points::PointsAwarded {
            award_id: Uuid::new_v4(),
            customer_id: customer,
            points: Points::new(500).unwrap(),
            actor: operator.clone(),
        }),
        sample::<PointsEvent>(points::PointsReserved {
            order_id,
            customer_id: customer,
            voucher_code: Some(code.clone()),
            lines: lines.clone(),
            total: cents(2500),
            discount: cents(500),
            points: Points::new(300).unwrap(),
        }),
        sample::<PointsEvent>(points::PointsRejected {
            order_id,
            customer_id: customer,
            requested: Points::new(300).unwrap(),
            reason: PointsRejectReason::InsufficientPoints,
        }),
        sample::<PointsEvent>(points::PointsReleased {
            order_id,
            customer_id: customer,
            points: Points::new(300).unwrap(),
        }),
        sample::<PointsEvent>(points::PointsEarned {
            order_id,
            customer_id: customer,
            spent: Points::new(300).unwrap(),
            earned: Points::new(17).unwrap(),
        }),
        sample::<VoucherEvent>(voucher::VoucherRejected {
            order_id,
            voucher_code: code.clone(),
            reason: RejectReason::AlreadyUsed,
        }),
        sample::<VoucherEvent>(voucher::VoucherReleased {
            order_id,
            voucher_code: code.clone(),
        }),
        sample::<VoucherEvent>(voucher::VoucherRedeemed {
            order_id,
            voucher_code: code,
        }),
        sample::<PaymentEvent>(payment::AccountCredited {
            credit_id: Uuid::new_v4(),
            customer_id: customer,
            amount: cents(20_000),
            actor: operator.clone(),
        }),
        sample::<PaymentEvent>(payment::PaymentSucceeded {
            order_id,
            payment_id: Uuid::new_v4(),
            customer_id: customer,
            amount: cents(2000),
            lines,
        }),
        sample::<PaymentEvent>(payment::PaymentFailed {
            order_id,
            customer_id: customer,
            amount: cents(2000),
        }),
        sample::<PaymentEvent>(payment::PaymentRefunded {
            order_id,
            payment_id: Uuid::new_v4(),
            customer_id: customer,
            amount: cents(2000),
        }),
        sample::<StockEvent>(stock::StockAdjusted {
            adjustment_id: Uuid::new_v4(),
            sku: sku.clone(),
            delta: -3,
            actor: Actor::anonymous(),
        }),
        sample::<StockEvent>(stock::StockReserved {
            order_id,
            lines: stock_lines.clone(),
        }),
        sample::<StockEvent>(stock::StockFailed {
            order_id,
            sku,
            requested: 2,
            available: 1,
        }),
        sample::<StockEvent>(stock::StockReleased {
            order_id,
            lines: stock_lines,
        }),
    ]
}

/// The payload schema of `ce_type` in the AsyncAPI document, with the document's components so
/// its references resolve.
fn payload_schema(doc: &Value, ce_type: &str) -> Value {
    let message = doc["components"]["messages"]
        .as_object()
        .unwrap()
        .values()
        .find(|m| m["title"] == ce_type)
        .unwrap_or_else(|| panic!("{ce_type} has no message in the document"));
    let mut schema = message["payload"].clone();
    schema["components"] = json!({ "schemas": doc["components"]["schemas"] });
    schema
}

/// A validator that also checks formats (uuid, date-time), as a consumer of the document would.
fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap()
}

#[test]
fn every_event_the_code_can_emit_validates_against_its_schema() {
    let doc = asyncapi::document();
    let samples = samples();
    let all = [
        OrderEvent::ce_types(),
        VoucherEvent::ce_types(),
        PaymentEvent::ce_types(),
        StockEvent::ce_types(),
    ]
    .concat();
    for ce_type in &all {
        assert!(
            samples.iter().any(|(t, _)| t == ce_type),
            "no sample of {ce_type}"
        );
    }
    for (ce_type, payload) in samples {
        let instance: Value = serde_json::from_slice(&payload).unwrap();
        let validator = validator(&payload_schema(&doc, ce_type));
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{ce_type} {instance}: {errors:?}");
    }
}

#[test]
fn a_payload_the_decoder_refuses_is_refused_by_its_schema_too() {
    let doc = asyncapi::document();
    let ce_type = "jetsaga.orders.cancelled.v1";
    let validator = validator(&payload_schema(&doc, ce_type));
    for bad in [
        json!({ "order_id": Uuid::new_v4(), "reason": "bored" }),
        json!({ "order_id": Uuid::new_v4(), "reason": "timeout", "extra": 1 }),
        json!({ "order_id": "not-a-uuid", "reason": "timeout" }),
        json!({ "reason": "timeout" }),
    ] {
        assert!(OrderEvent::from_payload(ce_type, bad.to_string().as_bytes()).is_err());
        assert!(!validator.is_valid(&bad), "{bad} passes the schema");
    }
}

#[test]
fn both_versions_of_order_cancelled_decode_to_the_same_event_and_v1_is_what_is_emitted() {
    let order_id = OrderId::new_random();
    let v1 = json!({ "order_id": order_id, "reason": "stock_failed" });
    let v2 = json!({ "order_id": order_id, "reason": "stock_failed", "detail": "SKU-1: 0 left" });
    let from_v1 =
        OrderEvent::from_payload("jetsaga.orders.cancelled.v1", v1.to_string().as_bytes()).unwrap();
    let from_v2 =
        OrderEvent::from_payload("jetsaga.orders.cancelled.v2", v2.to_string().as_bytes()).unwrap();
    assert_eq!(from_v1, from_v2);
    assert_eq!(from_v2.ce_type(), "jetsaga.orders.cancelled.v1");
    // Each version keeps its own shape: a v2 without its detail is malformed.
    assert!(
        OrderEvent::from_payload("jetsaga.orders.cancelled.v2", v1.to_string().as_bytes()).is_err()
    );
    assert!(
        OrderEvent::from_payload("jetsaga.orders.cancelled.v3", v1.to_string().as_bytes()).is_err()
    );
}

#[test]
fn the_committed_asyncapi_document_is_what_the_code_generates() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/events/asyncapi.json"
    );
    let committed = std::fs::read_to_string(path).expect("docs/events/asyncapi.json is committed");
    let generated = format!(
        "{}\n",
        serde_json::to_string_pretty(&asyncapi::document()).unwrap()
    );
    assert!(
        committed == generated,
        "docs/events/asyncapi.json is not what the code generates: run `jetsaga-lab docs`"
    );
}
