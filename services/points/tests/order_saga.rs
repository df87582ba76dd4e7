//! The points step of the order saga: voucher and order events injected into the streams, the
//! points service's reaction read from its API and its outbox.

mod common;

use common::{
    order_cancelled, order_confirmed, voucher_reserved, TestService, EARNED, REJECTED, RELEASED,
    RESERVED,
};
use jetsaga_contracts::{CustomerId, OrderId};

#[tokio::test]
async fn points_held_for_an_order_are_spent_on_confirmation_and_earned_once() -> anyhow::Result<()>
{
    let svc = TestService::start().await?;
    let customer = CustomerId::new_random();
    svc.award_ok(customer, 1_000).await?;
    let order = OrderId::new_random();

    // Given an order of 30.00 with 5.00 off asking 400 points
    svc.deliver_voucher(voucher_reserved(order, customer, 3_000, 500, Some(400)))
        .await?;
    assert_eq!(svc.points(customer).await?, (600, 400));
    let reserved = svc.emitted_of(RESERVED).await?;
    assert_eq!(reserved.len(), 1);
    assert_eq!(reserved[0]["points"], 400);
    assert_eq!(reserved[0]["discount"], 500);
    // The same step again under another id is a duplicate for the barrier
    svc.deliver_voucher(voucher_reserved(order, customer, 3_000, 500, Some(400)))
        .await?;
    assert_eq!(svc.points(customer).await?, (600, 400));

    // When the order is confirmed (charged 21.00), twice
    for _ in 0..2 {
        svc.deliver_order(order_confirmed(order, customer, 3_000, 500, 400))
            .await?;
    }
    // Then the points are spent and 21 earned, once
    assert_eq!(svc.points(customer).await?, (621, 0));
    let earned = svc.emitted_of(EARNED).await?;
    assert_eq!(earned.len(), 1, "{earned:?}");
    assert_eq!(
        (earned[0]["spent"].as_i64(), earned[0]["earned"].as_i64()),
        (Some(400), Some(21))
    );
    // A cancellation after the confirmation gives nothing back
    svc.deliver_order(order_cancelled(order)).await?;
    assert_eq!(svc.points(customer).await?, (621, 0));
    assert!(svc.emitted_of(RELEASED).await?.is_empty());
    let metrics = svc.metrics().await?;
    assert!(
        metrics.contains(r#"jetsaga_points_total{outcome="earned"} 1"#),
        "{metrics}"
    );
    svc.stop().await
}

#[tokio::test]
async fn an_order_holds_at_most_what_is_left_to_pay_and_one_without_points_holds_none(
) -> anyhow::Result<()> {
    let svc = TestService::start().await?;
    let customer = CustomerId::new_random();
    svc.award_ok(customer, 5_000).await?;
    let (big, plain) = (OrderId::new_random(), OrderId::new_random());
    svc.deliver_voucher(voucher_reserved(big, customer, 1_000, 300, Some(4_000)))
        .await?;
    svc.deliver_voucher(voucher_reserved(plain, customer, 1_000, 0, None))
        .await?;
    let reserved = svc.emitted_of(RESERVED).await?;
    let points: Vec<i64> = reserved
        .iter()
        .filter_map(|e| e["points"].as_i64())
        .collect();
    assert_eq!(points, [700, 0]);
    assert_eq!(svc.points(customer).await?, (4_300, 700));
    // The order without points earns on its full charge when confirmed.
    svc.deliver_order(order_confirmed(plain, customer, 1_000, 0, 0))
        .await?;
    assert_eq!(svc.points(customer).await?, (4_310, 700));
    svc.stop().await
}

#[tokio::test]
async fn too_few_points_reject_the_order_and_hold_nothing() -> anyhow::Result<()> {
    let svc = TestService::start().await?;
    let customer = CustomerId::new_random();
    svc.award_ok(customer, 99).await?;
    let order = OrderId::new_random();
    svc.deliver_voucher(voucher_reserved(order, customer, 1_000, 0, Some(100)))
        .await?;
    let rejected = svc.emitted_of(REJECTED).await?;
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["reason"], "insufficient_points");
    assert_eq!(rejected[0]["requested"], 100);
    assert!(svc.emitted_of(RESERVED).await?.is_empty());
    assert_eq!(svc.points(customer).await?, (99, 0));
    // The cancellation that follows releases nothing.
    svc.deliver_order(order_cancelled(order)).await?;
    assert!(svc.emitted_of(RELEASED).await?.is_empty());
    svc.stop().await
}

#[tokio::test]
async fn a_cancellation_releases_held_points_once_and_a_late_hold_takes_nothing(
) -> anyhow::Result<()> {
    let svc = TestService::start().await?;
    let customer = CustomerId::new_random();
    svc.award_ok(customer, 500).await?;
    let (held, early) = (OrderId::new_random(), OrderId::new_random());
    svc.deliver_voucher(voucher_reserved(held, customer, 1_000, 0, Some(300)))
        .await?;
    // The cancellation, twice under two ids: released once.
    svc.deliver_order(order_cancelled(held)).await?;
    svc.deliver_order(order_cancelled(held)).await?;
    assert_eq!(svc.points(customer).await?, (500, 0));
    let released = svc.emitted_of(RELEASED).await?;
    assert_eq!(released.len(), 1);
    assert_eq!(released[0]["points"], 300);

    // A cancellation before the order reached us (null compensation), then its VoucherReserved
    // (a hanging step): nothing is held, nothing said.
    svc.deliver_order(order_cancelled(early)).await?;
    svc.deliver_voucher(voucher_reserved(early, customer, 1_000, 0, Some(200)))
        .await?;
    assert_eq!(svc.points(customer).await?, (500, 0));
    assert_eq!(svc.emitted_of(RESERVED).await?.len(), 1);
    svc.stop().await
}

#[tokio::test]
async fn an_award_needs_an_operator_and_a_positive_number() -> anyhow::Result<()> {
    let svc = TestService::start().await?;
    let customer = CustomerId::new_random();
    for bad in [
        r#"{"points": 0}"#,
        r#"{"points": -5}"#,
        r#"{"points": 1.5}"#,
    ] {
        let a = svc.post(&format!("/points/{customer}/award"), bad).await?;
        assert_eq!(a.status, 400, "{bad}: {}", a.body);
    }
    let a = svc
        .post("/points/not-a-uuid/award", r#"{"points": 5}"#)
        .await?;
    assert_eq!(a.status, 400, "{}", a.body);
    svc.award_ok(customer, 5).await?;
    let awarded = svc.emitted_of(common::AWARDED).await?;
    assert_eq!(awarded.len(), 1);
    assert_eq!(awarded[0]["points"], 5);
    assert!(awarded[0]["actor"].is_string(), "{awarded:?}");
    assert_eq!(svc.points(customer).await?, (5, 0));
    svc.stop().await
}
