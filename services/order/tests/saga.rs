//! The order's end of the saga: the other services' events, injected into their streams as their
//! relays would publish them, confirm or cancel the order; the deadline cancels it otherwise.

mod common;

use common::{order_body, App, WAIT};
use jetsaga_contracts::events::stock::StockFailed;
use jetsaga_contracts::events::voucher::VoucherRejected;
use jetsaga_contracts::{OrderId, RejectReason, Sku, StockEvent, VoucherCode, VoucherEvent};
use jetsaga_testkit::wait_until;
use order_service::consumers::{OnPayments, OnPoints, OnStock};
use saga_kit::envelope::keyed_event_id;
use serde_json::json;
use std::time::Duration;

const CONFIRMED: &str = "jetsaga.orders.confirmed.v1";
const CANCELLED: &str = "jetsaga.orders.cancelled.v1";

async fn app_with_tea() -> anyhow::Result<App> {
    let app = App::start().await?;
    app.put_product("TEA", 300).await?;
    Ok(app)
}

#[tokio::test]
async fn stock_reserved_confirms_after_points_reserved() -> anyhow::Result<()> {
    let app = app_with_tea().await?;

    // Given an order whose voucher step granted 100 cents.
    let customer = uuid::Uuid::new_v4();
    let first = app
        .place_order(&json!({
            "customer_id": customer,
            "items": [{"sku": "TEA", "quantity": 2}],
            "voucher_code": "SAVE1",
        }))
        .await?;
    app.points_reserved(first, 100).await?;
    app.wait_applied(OnPoints::DURABLE, 1).await?;
    assert_eq!(app.order(first).await?["discount_cents"], 100);

    // When stock is reserved, then it is confirmed and says so with the discount.
    app.stock_reserved(first).await?;
    let order = app.wait_status(first, "CONFIRMED").await?;
    assert_eq!(order["total_cents"], 600);
    assert_eq!(order["discount_cents"], 100);
    assert!(order.get("cancel_reason").is_none(), "{order}");
    let confirmed = app.emitted_for(CONFIRMED, first).await?;
    assert_eq!(confirmed.len(), 1);
    let (_, payload) = &confirmed[0];
    assert_eq!(payload["total"], 600);
    assert_eq!(payload["discount"], 100);
    assert_eq!(payload["voucher_code"], "SAVE1");
    assert_eq!(payload["customer_id"], customer.to_string());

    // Given another order whose StockReserved overtakes its PointsReserved.
    let second = app.place_order(&order_body(&[("TEA", 1)])).await?;
    app.stock_reserved(second).await?;
    // Both orders' StockReserved are applied: the second one is recorded, not retried.
    app.wait_applied(OnStock::DURABLE, 2).await?;
    assert_eq!(app.order(second).await?["status"], "PENDING");
    assert_eq!(
        app.metric(&format!(
            "jetsaga_handler_retries_total{{consumer=\"{}\"}}",
            OnStock::DURABLE
        ))
        .await?,
        0
    );

    // When the voucher step's answer arrives after all, it confirms the order.
    app.points_reserved(second, 0).await?;
    let order = app.wait_status(second, "CONFIRMED").await?;
    assert_eq!(order["discount_cents"], 0);
    let confirmed = app.emitted_for(CONFIRMED, second).await?;
    assert_eq!(confirmed.len(), 1);
    assert_eq!(confirmed[0].1["discount"], 0);
    assert_eq!(confirmed[0].1["voucher_code"], json!(null));

    // A second PointsReserved (another discount) and a second StockReserved change nothing.
    app.points_reserved(second, 50).await?;
    app.stock_reserved(second).await?;
    app.wait_applied(OnStock::DURABLE, 3).await?;
    app.wait_applied(OnPoints::DURABLE, 3).await?;
    assert_eq!(app.order(second).await?["discount_cents"], 0);
    assert_eq!(app.emitted_for(CONFIRMED, second).await?.len(), 1);

    assert_eq!(
        app.metric("jetsaga_sagas_total{outcome=\"confirmed\"}")
            .await?,
        2
    );
    app.stop().await
}

#[tokio::test]
async fn payment_failed_cancels_the_order_and_a_late_stock_reserved_does_not_confirm_it(
) -> anyhow::Result<()> {
    let app = app_with_tea().await?;
    let id = app.place_order(&order_body(&[("TEA", 1)])).await?;

    // When the voucher step passes and payment fails.
    app.points_reserved(id, 0).await?;
    app.payment_failed(id).await?;

    // Then the order is cancelled for that reason, once.
    let order = app.wait_status(id, "CANCELLED").await?;
    assert_eq!(order["cancel_reason"], "payment_failed");
    let cancelled = app.emitted_for(CANCELLED, id).await?;
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].1["reason"], "payment_failed");

    // When a stale StockReserved and another failure arrive late.
    app.stock_reserved(id).await?;
    app.inject(&StockEvent::StockFailed(StockFailed {
        order_id: id,
        sku: Sku::parse("TEA")?,
        requested: 1,
        available: 0,
    }))
    .await?;
    app.payment_failed(id).await?;
    app.wait_applied(OnStock::DURABLE, 2).await?;
    app.wait_applied(OnPayments::DURABLE, 2).await?;

    // Then the order stays cancelled for the first reason and nothing more is said.
    let order = app.order(id).await?;
    assert_eq!(order["status"], "CANCELLED");
    assert_eq!(order["cancel_reason"], "payment_failed");
    assert!(app.emitted_for(CONFIRMED, id).await?.is_empty());
    assert_eq!(app.emitted_for(CANCELLED, id).await?.len(), 1);
    assert_eq!(
        app.metric("jetsaga_sagas_total{outcome=\"cancelled\",reason=\"payment_failed\"}")
            .await?,
        1
    );
    app.stop().await
}

#[tokio::test]
async fn voucher_rejected_and_stock_failed_cancel_with_their_reasons() -> anyhow::Result<()> {
    let app = app_with_tea().await?;
    let rejected = app.place_order(&order_body(&[("TEA", 1)])).await?;
    let short = app.place_order(&order_body(&[("TEA", 2)])).await?;

    app.inject(&VoucherEvent::VoucherRejected(VoucherRejected {
        order_id: rejected,
        voucher_code: VoucherCode::parse("GONE")?,
        reason: RejectReason::Expired,
    }))
    .await?;
    app.points_reserved(short, 0).await?;
    app.inject(&StockEvent::StockFailed(StockFailed {
        order_id: short,
        sku: Sku::parse("TEA")?,
        requested: 2,
        available: 1,
    }))
    .await?;

    let order = app.wait_status(rejected, "CANCELLED").await?;
    assert_eq!(order["cancel_reason"], "voucher_rejected");
    let order = app.wait_status(short, "CANCELLED").await?;
    assert_eq!(order["cancel_reason"], "stock_failed");
    assert_eq!(app.emitted_for(CANCELLED, rejected).await?.len(), 1);
    assert_eq!(app.emitted_for(CANCELLED, short).await?.len(), 1);
    app.stop().await
}

#[tokio::test]
async fn event_about_an_unknown_order_is_dead_lettered_and_the_consumer_carries_on(
) -> anyhow::Result<()> {
    let app = app_with_tea().await?;
    let stranger = OrderId::new_random();
    app.inject(&StockEvent::StockFailed(StockFailed {
        order_id: stranger,
        sku: Sku::parse("TEA")?,
        requested: 1,
        available: 0,
    }))
    .await?;
    wait_until("the dead letter", WAIT, || async {
        app.count("kit_dead_letters").await.unwrap_or(0) == 1
    })
    .await?;

    let id = app.place_order(&order_body(&[("TEA", 1)])).await?;
    app.inject(&StockEvent::StockFailed(StockFailed {
        order_id: id,
        sku: Sku::parse("TEA")?,
        requested: 1,
        available: 0,
    }))
    .await?;
    app.wait_status(id, "CANCELLED").await?;
    app.stop().await
}

#[tokio::test]
async fn pending_order_past_its_deadline_is_cancelled_with_reason_timeout() -> anyhow::Result<()> {
    let app = App::start_with(|config| {
        config.order_deadline = Duration::from_secs(1);
        config.deadline_sweep = Duration::from_millis(100);
    })
    .await?;
    app.put_product("TEA", 300).await?;

    // Given one order that finishes in time and one that never hears back.
    let quick = app.place_order(&order_body(&[("TEA", 1)])).await?;
    let stuck = app.place_order(&order_body(&[("TEA", 1)])).await?;
    app.points_reserved(quick, 0).await?;
    app.stock_reserved(quick).await?;
    app.wait_status(quick, "CONFIRMED").await?;

    // Then the stuck one is cancelled with reason timeout, under the id derived from the order.
    let order = app.wait_status(stuck, "CANCELLED").await?;
    assert_eq!(order["cancel_reason"], "timeout");
    let cancelled = app.emitted_for(CANCELLED, stuck).await?;
    assert_eq!(cancelled.len(), 1);
    assert_eq!(
        cancelled[0].0,
        *keyed_event_id("order-timeout", &stuck.to_string()).as_uuid()
    );
    assert_eq!(cancelled[0].1["reason"], "timeout");

    // And the confirmed one, also past its deadline now, stays confirmed.
    assert_eq!(app.order(quick).await?["status"], "CONFIRMED");
    assert!(app.emitted_for(CANCELLED, quick).await?.is_empty());

    // When the stuck order's steps answer late, it stays cancelled and nothing is confirmed.
    app.points_reserved(stuck, 0).await?;
    app.stock_reserved(stuck).await?;
    app.wait_applied(OnStock::DURABLE, 2).await?;
    let order = app.order(stuck).await?;
    assert_eq!(order["status"], "CANCELLED");
    assert_eq!(order["cancel_reason"], "timeout");
    assert!(app.emitted_for(CONFIRMED, stuck).await?.is_empty());
    assert_eq!(
        app.metric("jetsaga_sagas_total{outcome=\"cancelled\",reason=\"timeout\"}")
            .await?,
        1
    );
    app.stop().await
}
