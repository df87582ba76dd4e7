//! PaymentSucceeded → StockReserved | StockFailed, against the real service.

mod common;

use common::{paid, StockService};
use jetsaga_contracts::events::stock::{StockFailed, StockReserved};
use jetsaga_contracts::{OrderId, Sku, StockEvent, StockLine};
use stock_service::consumers::OnPayments;

fn line(sku: &str, quantity: u32) -> StockLine {
    StockLine {
        sku: Sku::parse(sku).expect("valid sku"),
        quantity,
    }
}

#[tokio::test]
async fn payment_succeeded_reserves_every_line_once() -> anyhow::Result<()> {
    let svc = StockService::start().await?;
    svc.add_stock("A", 10).await?;
    svc.add_stock("B", 10).await?;
    let order = OrderId::new_random();

    // The same payment announced twice, under two event ids (a duplicate effect, not a
    // redelivery), with two lines of A that count as one.
    let payment = paid(order, &[("B", 1), ("A", 2), ("A", 1)]);
    svc.inject(&payment).await?;
    svc.inject(&payment).await?;
    svc.wait_applied(OnPayments::DURABLE, 2).await?;

    let events = svc.emitted_for(order).await?;
    assert_eq!(
        events,
        vec![StockEvent::StockReserved(StockReserved {
            order_id: order,
            lines: vec![line("A", 3), line("B", 1)],
        })]
    );
    assert_eq!(svc.stock("A").await?, (7, 3));
    assert_eq!(svc.stock("B").await?, (9, 1));
    assert_eq!(
        svc.reservations(order).await?,
        vec![
            ("A".to_owned(), 3, "HELD".to_owned()),
            ("B".to_owned(), 1, "HELD".to_owned())
        ]
    );
    let metrics = svc.metrics().await?;
    assert!(
        metrics.contains("jetsaga_stock_total{outcome=\"reserved\"} 1"),
        "{metrics}"
    );

    svc.stop().await
}

#[tokio::test]
async fn short_second_line_reserves_nothing() -> anyhow::Result<()> {
    let svc = StockService::start().await?;
    svc.add_stock("A", 5).await?;
    svc.add_stock("B", 1).await?;
    let order = OrderId::new_random();

    svc.inject(&paid(order, &[("A", 2), ("B", 3)])).await?;
    let events = svc.wait_emitted_for(order, 1).await?;

    assert_eq!(
        events,
        vec![StockEvent::StockFailed(StockFailed {
            order_id: order,
            sku: Sku::parse("B")?,
            requested: 3,
            available: 1,
        })]
    );
    assert_eq!(svc.stock("A").await?, (5, 0), "the first line was touched");
    assert_eq!(svc.stock("B").await?, (1, 0));
    assert!(svc.reservations(order).await?.is_empty());

    svc.stop().await
}

#[tokio::test]
async fn last_unit_goes_to_exactly_one_of_two_orders() -> anyhow::Result<()> {
    let svc = StockService::start().await?;
    svc.add_stock("LAST", 1).await?;
    let (first, second) = (OrderId::new_random(), OrderId::new_random());

    let (pay_first, pay_second) = (paid(first, &[("LAST", 1)]), paid(second, &[("LAST", 1)]));
    let (a, b) = tokio::join!(svc.inject(&pay_first), svc.inject(&pay_second));
    a?;
    b?;
    let mut events = svc.wait_emitted_for(first, 1).await?;
    events.extend(svc.wait_emitted_for(second, 1).await?);

    let reserved: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, StockEvent::StockReserved(_)))
        .collect();
    let failed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            StockEvent::StockFailed(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!((reserved.len(), failed.len()), (1, 1), "{events:?}");
    assert_eq!((failed[0].requested, failed[0].available), (1, 0));
    assert_eq!(svc.stock("LAST").await?, (0, 1));
    assert_eq!(svc.count("reservations").await?, 1);

    svc.stop().await
}
