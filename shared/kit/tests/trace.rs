//! One saga read back from every stream, in order, and nothing of other sagas.

mod common;

use common::{order_created, Harness};
use jetsaga_contracts::events::order::OrderCancelled;
use jetsaga_contracts::events::stock::StockReleased;
use jetsaga_contracts::{CancelReason, EventSet, OrderEvent, OrderId, StockEvent};

#[tokio::test]
async fn saga_is_read_back_across_streams_in_time_order() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let created = order_created("SKU-1");
    let order_id: OrderId = created.key().parse()?;
    let first = h.commit_event(&created).await?;
    let second = h
        .commit_event(&OrderEvent::OrderCancelled(OrderCancelled {
            order_id,
            reason: CancelReason::StockFailed,
        }))
        .await?;
    let third = h
        .commit_event(&StockEvent::StockReleased(StockReleased {
            order_id,
            lines: vec![],
        }))
        .await?;
    h.commit_event(&order_created("SKU-2")).await?;
    h.relay_until_empty(&h.relay()).await?;

    let saga = saga_kit::trace::read_saga(
        &h.js,
        &jetsaga_contracts::Producer::ALL,
        &order_id.to_string(),
    )
    .await?;
    let ids: Vec<String> = saga.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(
        ids,
        [
            first.id.to_string(),
            second.id.to_string(),
            third.id.to_string()
        ]
    );
    let names: Vec<&str> = saga.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        names,
        ["orders.created", "orders.cancelled", "stock.released"]
    );
    assert_eq!(saga[2].service, "stock");
    assert_eq!(saga[1].payload["reason"], "stock_failed");
    assert!(saga_kit::trace::read_saga(
        &h.js,
        &jetsaga_contracts::Producer::ALL,
        &OrderId::new_random().to_string()
    )
    .await?
    .is_empty());
    Ok(())
}
