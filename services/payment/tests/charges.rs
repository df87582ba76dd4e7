//! PointsReserved → PaymentSucceeded | PaymentFailed, against the real service.

mod common;

use common::{points_reserved, PaymentService, FAILED, SUCCEEDED};
use jetsaga_contracts::{CustomerId, OrderId};
use payment_service::consumers::OnPoints;

#[tokio::test]
async fn points_reserved_charges_total_minus_discount_once() -> anyhow::Result<()> {
    let svc = PaymentService::start().await?;
    let customer = CustomerId::new_random();
    let order = OrderId::new_random();
    svc.credit(customer, 10_000).await?;

    // Given the voucher step passed for an order of 30.00 with 5.00 off
    let event = points_reserved(order, customer, 3_000, 500);
    let first = svc.inject(&event).await?;
    // When the same effect is asked again under another event id (the barrier's case)
    svc.inject(&event).await?;
    // And the very same event is redelivered past the stream's dedupe (the inbox's case)
    svc.publish(&first, "redelivery-of-the-first").await?;
    svc.wait_finished(OnPoints::DURABLE, 3).await?;

    // Then the customer was charged 25.00 exactly once
    assert_eq!(svc.balance(customer).await?, 7_500);
    let succeeded = svc.emitted_of(SUCCEEDED).await?;
    assert_eq!(succeeded.len(), 1, "{succeeded:?}");
    let e = &succeeded[0];
    assert_eq!(e["order_id"], order.to_string());
    assert_eq!(e["customer_id"], customer.to_string());
    assert_eq!(e["amount"], 2_500);
    assert_eq!(e["lines"][0]["sku"], "SKU-1");
    assert_eq!(e["lines"][0]["quantity"], 2);
    let (payment_id, amount, status, _) = svc.payment(order).await?.expect("a payment row");
    assert_eq!((amount, status.as_str()), (2_500, "CHARGED"));
    assert_eq!(e["payment_id"], payment_id.to_string());
    assert!(svc.emitted_of(FAILED).await?.is_empty());
    assert_eq!(
        svc.metric(&format!(
            "jetsaga_events_duplicate_total{{consumer=\"{}\"}}",
            OnPoints::DURABLE
        ))
        .await?,
        1
    );
    assert_eq!(
        svc.metric("jetsaga_payments_total{outcome=\"succeeded\"}")
            .await?,
        1
    );
    svc.stop().await
}

#[tokio::test]
async fn insufficient_funds_fails_the_payment_and_charges_nothing() -> anyhow::Result<()> {
    let svc = PaymentService::start().await?;
    let customer = CustomerId::new_random();
    let order = OrderId::new_random();
    // Given a balance one cent short of total minus discount
    svc.credit(customer, 999).await?;

    svc.inject(&points_reserved(order, customer, 1_500, 500))
        .await?;
    svc.wait_finished(OnPoints::DURABLE, 1).await?;

    // Then nothing was charged and the failure is announced with the amount asked
    assert_eq!(svc.balance(customer).await?, 999);
    assert!(svc.emitted_of(SUCCEEDED).await?.is_empty());
    let failed = svc.emitted_of(FAILED).await?;
    assert_eq!(
        failed,
        vec![serde_json::json!({
            "order_id": order.to_string(),
            "customer_id": customer.to_string(),
            "amount": 1_000,
        })]
    );
    let (_, amount, status, _) = svc.payment(order).await?.expect("a payment row");
    assert_eq!((amount, status.as_str()), (1_000, "FAILED"));
    assert_eq!(
        svc.metric("jetsaga_payments_total{outcome=\"failed\"}")
            .await?,
        1
    );

    // And a customer without any account fails the same way.
    let stranger = CustomerId::new_random();
    let other = OrderId::new_random();
    svc.inject(&points_reserved(other, stranger, 100, 0))
        .await?;
    svc.wait_finished(OnPoints::DURABLE, 2).await?;
    assert_eq!(svc.emitted_of(FAILED).await?.len(), 2);
    assert_eq!(svc.balance(stranger).await?, 0);
    svc.stop().await
}

#[tokio::test]
async fn points_spent_are_taken_off_the_charge() -> anyhow::Result<()> {
    let svc = PaymentService::start().await?;
    let customer = CustomerId::new_random();
    let order = OrderId::new_random();
    svc.credit(customer, 10_000).await?;
    // Given an order of 30.00 with 5.00 off and 7.00 paid in points
    svc.inject(&common::points_reserved_spending(
        order, customer, 3_000, 500, 700,
    ))
    .await?;
    svc.wait_finished(OnPoints::DURABLE, 1).await?;
    // Then 18.00 is charged
    assert_eq!(svc.balance(customer).await?, 10_000 - 1_800);
    let succeeded = svc.emitted_of(SUCCEEDED).await?;
    assert_eq!(succeeded.len(), 1, "{succeeded:?}");
    assert_eq!(succeeded[0]["amount"], 1_800);
    svc.stop().await
}
