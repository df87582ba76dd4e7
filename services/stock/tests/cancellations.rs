//! OrderCancelled → StockReleased, and its races with PaymentSucceeded, against the real service.

mod common;

use common::{cancelled, paid, StockService};
use jetsaga_contracts::events::stock::{StockReleased, StockReserved};
use jetsaga_contracts::{CancelReason, OrderId, Sku, StockEvent, StockLine};
use stock_service::consumers::{OnOrders, OnPayments};

fn line(sku: &str, quantity: u32) -> StockLine {
    StockLine {
        sku: Sku::parse(sku).expect("valid sku"),
        quantity,
    }
}

#[tokio::test]
async fn cancellation_releases_held_stock_once() -> anyhow::Result<()> {
    let svc = StockService::start().await?;
    svc.add_stock("A", 4).await?;
    svc.add_stock("B", 2).await?;
    let order = OrderId::new_random();
    svc.inject(&paid(order, &[("A", 3), ("B", 2)])).await?;
    svc.wait_emitted_for(order, 1).await?;
    assert_eq!(svc.stock("A").await?, (1, 3));

    // The order is cancelled (say, the deadline passed), and the cancellation comes twice.
    svc.inject(&cancelled(order, CancelReason::Timeout)).await?;
    svc.inject(&cancelled(order, CancelReason::Timeout)).await?;
    svc.wait_applied(OnOrders::DURABLE, 2).await?;

    let lines = vec![line("A", 3), line("B", 2)];
    assert_eq!(
        svc.emitted_for(order).await?,
        vec![
            StockEvent::StockReserved(StockReserved {
                order_id: order,
                lines: lines.clone()
            }),
            StockEvent::StockReleased(StockReleased {
                order_id: order,
                lines
            }),
        ]
    );
    assert_eq!(svc.stock("A").await?, (4, 0));
    assert_eq!(svc.stock("B").await?, (2, 0));
    assert_eq!(
        svc.reservations(order).await?,
        vec![
            ("A".to_owned(), 3, "RELEASED".to_owned()),
            ("B".to_owned(), 2, "RELEASED".to_owned())
        ]
    );

    svc.stop().await
}

#[tokio::test]
async fn cancellation_before_payment_reserves_nothing() -> anyhow::Result<()> {
    let svc = StockService::start().await?;
    svc.add_stock("A", 4).await?;
    let order = OrderId::new_random();

    // The cancellation overtakes the payment: a null compensation, then a hanging forward step.
    svc.inject(&cancelled(order, CancelReason::Timeout)).await?;
    svc.wait_applied(OnOrders::DURABLE, 1).await?;
    svc.inject(&paid(order, &[("A", 1)])).await?;
    svc.wait_applied(OnPayments::DURABLE, 1).await?;

    assert!(svc.emitted_for(order).await?.is_empty());
    assert_eq!(svc.stock("A").await?, (4, 0));
    assert!(svc.reservations(order).await?.is_empty());

    svc.stop().await
}
