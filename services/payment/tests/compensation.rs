//! OrderCancelled → PaymentRefunded, and the races between a charge and its compensation.

mod common;

use common::{order_cancelled, points_reserved, PaymentService, FAILED, REFUNDED, SUCCEEDED};
use jetsaga_contracts::{CustomerId, OrderId};
use payment_service::consumers::{OnOrders, OnPoints};

#[tokio::test]
async fn cancellation_refunds_a_charge_exactly_once() -> anyhow::Result<()> {
    let svc = PaymentService::start().await?;
    let customer = CustomerId::new_random();
    let order = OrderId::new_random();
    svc.credit(customer, 5_000).await?;
    // Given a charged order
    svc.inject(&points_reserved(order, customer, 2_000, 0))
        .await?;
    svc.wait_finished(OnPoints::DURABLE, 1).await?;
    assert_eq!(svc.balance(customer).await?, 3_000);
    let succeeded = svc.emitted_of(SUCCEEDED).await?;
    assert_eq!(succeeded.len(), 1);

    // When it is cancelled, twice under different ids and once redelivered
    let cancelled = order_cancelled(order);
    let first = svc.inject(&cancelled).await?;
    svc.inject(&cancelled).await?;
    svc.publish(&first, "redelivery-of-the-cancellation")
        .await?;
    svc.wait_finished(OnOrders::DURABLE, 3).await?;

    // Then the charge went back exactly once
    assert_eq!(svc.balance(customer).await?, 5_000);
    let refunded = svc.emitted_of(REFUNDED).await?;
    assert_eq!(
        refunded,
        vec![serde_json::json!({
            "order_id": order.to_string(),
            "payment_id": succeeded[0]["payment_id"],
            "customer_id": customer.to_string(),
            "amount": 2_000,
        })]
    );
    let (_, amount, status, updated_after_created) =
        svc.payment(order).await?.expect("a payment row");
    assert_eq!((amount, status.as_str()), (2_000, "REFUNDED"));
    assert!(updated_after_created);
    assert_eq!(
        svc.metric("jetsaga_payments_total{outcome=\"refunded\"}")
            .await?,
        1
    );

    // And a failed payment's cancellation gives nothing back.
    let poor = CustomerId::new_random();
    let failed_order = OrderId::new_random();
    svc.inject(&points_reserved(failed_order, poor, 100, 0))
        .await?;
    svc.wait_finished(OnPoints::DURABLE, 2).await?;
    assert_eq!(svc.emitted_of(FAILED).await?.len(), 1);
    svc.inject(&order_cancelled(failed_order)).await?;
    svc.wait_finished(OnOrders::DURABLE, 4).await?;
    assert_eq!(svc.balance(poor).await?, 0);
    assert_eq!(svc.emitted_of(REFUNDED).await?.len(), 1);
    let (_, _, status, _) = svc.payment(failed_order).await?.expect("a payment row");
    assert_eq!(status, "FAILED");
    svc.stop().await
}

#[tokio::test]
async fn cancellation_before_the_charge_prevents_it() -> anyhow::Result<()> {
    let svc = PaymentService::start().await?;
    let customer = CustomerId::new_random();
    let order = OrderId::new_random();
    svc.credit(customer, 5_000).await?;

    // Given the order was cancelled before payment saw it (a null compensation)
    svc.inject(&order_cancelled(order)).await?;
    svc.wait_finished(OnOrders::DURABLE, 1).await?;
    // When its PointsReserved arrives late (a hanging step)
    svc.inject(&points_reserved(order, customer, 2_000, 0))
        .await?;
    svc.wait_finished(OnPoints::DURABLE, 1).await?;

    // Then nothing was charged, refunded or announced
    assert_eq!(svc.balance(customer).await?, 5_000);
    assert!(svc.payment(order).await?.is_none());
    let said: Vec<String> = svc.emitted().await?.into_iter().map(|(t, _)| t).collect();
    assert_eq!(said, vec![common::CREDITED.to_owned()]);
    svc.stop().await
}
