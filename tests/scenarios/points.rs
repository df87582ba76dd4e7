//! Loyalty points in the saga, given/when/then, each ending with the shared invariant checker:
//! paying partly with points, too few points, a later failure giving the points back, points earned
//! once, the same events twice, and a points reservation that arrives after its cancellation.

use jetsaga_contracts::events::order::OrderCancelled;
use jetsaga_contracts::events::voucher::VoucherReserved;
use jetsaga_contracts::{
    CancelReason, CustomerId, EventId, Money, OrderEvent, OrderId, OrderLine, Points, Sku,
    VoucherEvent,
};
use jetsaga_scenarios::checker::assert_invariants;
use jetsaga_scenarios::inject;
use jetsaga_scenarios::ledger::new_sku;
use jetsaga_scenarios::{Ledger, Svc, System, SystemOptions};
use jetsaga_testkit::wait_until;
use saga_kit::Envelope;
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(90);

/// The event names of an order's timeline, in order.
async fn events(sys: &System, order: &str) -> anyhow::Result<Vec<String>> {
    let timeline = sys.api.timeline(order).await?.ok()?;
    Ok(timeline["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["event"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// Messages a consumer has finished, applied or found duplicate.
async fn handled(sys: &System, svc: Svc, consumer: &str) -> f64 {
    let labels = format!("consumer=\"{consumer}\"");
    let mut n = 0.0;
    for metric in [
        "jetsaga_events_handled_total",
        "jetsaga_events_duplicate_total",
    ] {
        n += sys.api.metric(svc, metric, &labels).await.unwrap_or(0.0);
    }
    n
}

#[tokio::test]
async fn paying_partly_with_points_charges_the_rest_and_earns_on_what_was_charged(
) -> anyhow::Result<()> {
    // Given a customer with 30.00 and 500 points, and a voucher of 2.00
    let sys = System::start(SystemOptions::default()).await?;
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let sku = new_sku("MUG");
    ledger.sku(api, &sku, 1_250, 10).await?;
    let alice = ledger.customer(api, 3_000).await?;
    ledger.award_points(api, &alice, 500).await?;
    let code = new_sku("TWO");
    ledger.voucher(api, &code, &alice, 200, None).await?;
    // When she orders 25.00 with the voucher and 500 points
    let order = ledger
        .order_with_points(api, &alice, &[(&sku, 2)], Some(&code), Some(500))
        .await?;
    // Then she is charged 18.00 once, her points are spent, and she earned 18 points
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.status(&order), "CONFIRMED");
    assert_eq!(outcome.orders[&order]["points_spent"], 500);
    assert_eq!(outcome.orders[&order]["discount_cents"], 200);
    assert_eq!(api.balance(&alice).await?, 3_000 - 1_800);
    assert_eq!(api.points(&alice).await?, (18, 0));
    // The points step sits between the voucher and the payment; after the confirmation, the
    // voucher is redeemed and the points earned (in either order).
    let mut seen = events(&sys, &order).await?;
    assert_eq!(seen.len(), 8, "{seen:?}");
    let mut after = seen.split_off(6);
    after.sort();
    assert_eq!(
        seen,
        [
            "orders.created",
            "vouchers.reserved",
            "points.reserved",
            "payments.succeeded",
            "stock.reserved",
            "orders.confirmed"
        ]
    );
    assert_eq!(after, ["points.earned", "vouchers.redeemed"]);
    Ok(())
}

#[tokio::test]
async fn too_few_points_cancel_with_points_rejected_and_release_the_voucher() -> anyhow::Result<()>
{
    // Given a customer with money, 100 points and a voucher
    let sys = System::start(SystemOptions::default()).await?;
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let sku = new_sku("BOOK");
    ledger.sku(api, &sku, 2_500, 5).await?;
    let bob = ledger.customer(api, 10_000).await?;
    ledger.award_points(api, &bob, 100).await?;
    let code = new_sku("FIVE");
    ledger.voucher(api, &code, &bob, 500, None).await?;
    // When he orders with 1000 points
    let order = ledger
        .order_with_points(api, &bob, &[(&sku, 1)], Some(&code), Some(1_000))
        .await?;
    // Then the order is cancelled for points, nothing is charged or held, the voucher is free
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.status(&order), "CANCELLED");
    assert_eq!(outcome.reason(&order), "points_rejected");
    assert_eq!(api.balance(&bob).await?, 10_000);
    assert_eq!(api.points(&bob).await?, (100, 0));
    assert_eq!(api.stock(&sku).await?, (5, 0));
    assert_eq!(api.voucher_status(&code).await?, "AVAILABLE");
    let seen = events(&sys, &order).await?;
    assert!(seen.contains(&"points.rejected".to_owned()), "{seen:?}");
    assert!(!seen.contains(&"payments.succeeded".to_owned()), "{seen:?}");
    // And an order that spends no points still passes the points step with 0
    let plain = ledger.order(api, &bob, &[(&sku, 1)], None).await?;
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.status(&plain), "CONFIRMED");
    assert_eq!(outcome.orders[&plain]["points_spent"], 0);
    assert_eq!(api.points(&bob).await?, (125, 0));
    Ok(())
}

#[tokio::test]
async fn a_later_payment_or_stock_failure_gives_the_points_back() -> anyhow::Result<()> {
    // Given a customer with 10.00 and 800 points, and a SKU with one unit
    let sys = System::start(SystemOptions::default()).await?;
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let dear = new_sku("TV");
    ledger.sku(api, &dear, 50_000, 2).await?;
    let scarce = new_sku("LAMP");
    ledger.sku(api, &scarce, 1_000, 0).await?;
    let carol = ledger.customer(api, 1_000).await?;
    ledger.award_points(api, &carol, 800).await?;
    // When one order cannot be paid and another cannot get its stock
    let unpaid = ledger
        .order_with_points(api, &carol, &[(&dear, 1)], None, Some(300))
        .await?;
    let unstocked = ledger
        .order_with_points(api, &carol, &[(&scarce, 1)], None, Some(500))
        .await?;
    // Then both are cancelled for those reasons and every point is back
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.reason(&unpaid), "payment_failed");
    assert_eq!(outcome.reason(&unstocked), "stock_failed");
    assert_eq!(api.points(&carol).await?, (800, 0));
    assert_eq!(api.balance(&carol).await?, 1_000);
    for order in [&unpaid, &unstocked] {
        let seen = events(&sys, order).await?;
        assert!(seen.contains(&"points.released".to_owned()), "{seen:?}");
    }
    Ok(())
}

#[tokio::test]
async fn the_same_events_again_spend_and_earn_points_only_once() -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    if sys.is_external() {
        println!("not run against an external deployment: it publishes onto the streams");
        return Ok(());
    }
    let js = inject::jetstream(sys.nats_url()).await?;
    // Given a confirmed order that spent 300 points and earned 12
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let sku = new_sku("PEN");
    ledger.sku(api, &sku, 1_500, 4).await?;
    let dan = ledger.customer(api, 5_000).await?;
    ledger.award_points(api, &dan, 400).await?;
    let order = ledger
        .order_with_points(api, &dan, &[(&sku, 1)], None, Some(300))
        .await?;
    assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(api.points(&dan).await?, (112, 0));
    // When every event of its saga is published again, long after the dedupe window
    let timeline = api.timeline(&order).await?.ok()?;
    let saga = timeline["events"].as_array().cloned().unwrap_or_default();
    let before = handled(&sys, Svc::Points, "points-on-orders").await;
    for e in &saga {
        let stream = e["stream"].as_str().unwrap_or_default();
        let seq = e["stream_seq"].as_u64().unwrap_or_default();
        inject::republish(&js, stream, seq).await?;
    }
    wait_until(
        "points to see the repeated OrderConfirmed",
        Duration::from_secs(20),
        || async { handled(&sys, Svc::Points, "points-on-orders").await > before },
    )
    .await?;
    // Then nothing is spent, earned or charged a second time
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.status(&order), "CONFIRMED");
    assert_eq!(api.points(&dan).await?, (112, 0));
    assert_eq!(api.balance(&dan).await?, 5_000 - 1_200);
    Ok(())
}

#[tokio::test]
async fn a_points_reservation_arriving_after_its_cancellation_holds_nothing() -> anyhow::Result<()>
{
    let sys = System::start(SystemOptions::default()).await?;
    if sys.is_external() {
        println!("not run against an external deployment: it publishes onto the streams");
        return Ok(());
    }
    let js = inject::jetstream(sys.nats_url()).await?;
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let sku = new_sku("RACE");
    ledger.sku(api, &sku, 1_000, 3).await?;
    let erin = ledger.customer(api, 10_000).await?;
    ledger.award_points(api, &erin, 600).await?;
    let order_id = OrderId::new_random();
    let customer_id: CustomerId = erin.parse()?;
    // Given the cancellation reaches the points service first (a null compensation)
    let cancelled = OrderEvent::OrderCancelled(OrderCancelled {
        order_id,
        reason: CancelReason::Timeout,
    });
    let before = handled(&sys, Svc::Points, "points-on-orders").await;
    inject::publish_envelope(
        &js,
        &Envelope::root(EventId::new_random(), &cancelled),
        "c-1",
    )
    .await?;
    wait_until(
        "points to record the cancellation",
        Duration::from_secs(20),
        || async { handled(&sys, Svc::Points, "points-on-orders").await > before },
    )
    .await?;
    // When the voucher step's VoucherReserved, asking for 500 points, arrives late
    let reserved = VoucherEvent::VoucherReserved(VoucherReserved {
        order_id,
        customer_id,
        voucher_code: None,
        lines: vec![OrderLine {
            sku: Sku::parse(sku.clone())?,
            quantity: 1,
            unit_price: Money::from_cents(1_000)?,
        }],
        total: Money::from_cents(1_000)?,
        discount: Money::ZERO,
        points: Some(Points::new(500)?),
    });
    let before = handled(&sys, Svc::Points, "points-on-vouchers").await;
    inject::publish_envelope(
        &js,
        &Envelope::root(EventId::new_random(), &reserved),
        "f-1",
    )
    .await?;
    wait_until(
        "points to handle the late VoucherReserved",
        Duration::from_secs(20),
        || async { handled(&sys, Svc::Points, "points-on-vouchers").await > before },
    )
    .await?;
    // Then no points are held, nothing is charged, and the points service said nothing
    assert_eq!(api.points(&erin).await?, (600, 0));
    assert_eq!(api.balance(&erin).await?, 10_000);
    let saga = saga_kit::trace::read_saga(
        &js,
        &jetsaga_contracts::Producer::ALL,
        &order_id.to_string(),
    )
    .await?;
    let names: Vec<&str> = saga.iter().map(|e| e.event.as_str()).collect();
    assert!(
        names.iter().all(|n| !n.starts_with("points.")),
        "points reacted: {names:?}"
    );
    assert_invariants(api, &ledger, SETTLE).await?;
    Ok(())
}
