//! The voucher step of the order saga: order events injected into the ORDERS stream, the voucher
//! service's reaction read from its API and its outbox.

mod common;

use common::{
    order_cancelled, order_confirmed, order_created, TestService, REDEEMED, REJECTED, RELEASED,
    RESERVED,
};
use jetsaga_contracts::CustomerId;
use serde_json::{json, Value};

fn for_order<'a>(events: &'a [Value], order_id: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["order_id"].as_str() == Some(order_id))
        .collect()
}

#[tokio::test]
async fn order_with_own_voucher_reserves_it_then_confirmation_redeems_it() -> anyhow::Result<()> {
    let svc = TestService::start().await?;
    let customer = CustomerId::new_random();
    svc.issue_ok("SPRING5", customer, 500, Some("2099-01-01T00:00:00Z"))
        .await?;

    let created = order_created(customer, Some("SPRING5"), 2000);
    svc.deliver(created.clone()).await?;
    assert_eq!(svc.status("SPRING5").await?, "RESERVED");
    let reserved = svc.emitted_of(RESERVED).await?;
    assert_eq!(
        reserved,
        vec![json!({
            "order_id": created.order_id,
            "customer_id": customer,
            "voucher_code": "SPRING5",
            "lines": created.lines,
            "total": 2000,
            "discount": 500,
        })]
    );

    // The same order again, under another event id: the barrier sees a duplicate.
    svc.deliver(created.clone()).await?;
    assert_eq!(svc.emitted_of(RESERVED).await?.len(), 1);

    svc.deliver(order_confirmed(&created, 500)).await?;
    assert_eq!(svc.status("SPRING5").await?, "REDEEMED");
    // A repeated confirmation changes nothing.
    svc.deliver(order_confirmed(&created, 500)).await?;
    assert_eq!(
        svc.emitted_of(REDEEMED).await?,
        vec![json!({"order_id": created.order_id, "voucher_code": "SPRING5"})]
    );
    assert_eq!(svc.status("SPRING5").await?, "REDEEMED");

    let metrics = svc.metrics().await?;
    assert!(
        metrics.contains(r#"jetsaga_vouchers_total{outcome="reserved"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"jetsaga_vouchers_total{outcome="redeemed"} 1"#),
        "{metrics}"
    );
    assert!(svc.dead_letters().await?.is_empty());
    svc.stop().await
}

#[tokio::test]
async fn each_rejection_reason() -> anyhow::Result<()> {
    let svc = TestService::start().await?;
    let me = CustomerId::new_random();
    let someone_else = CustomerId::new_random();
    svc.issue_ok("MINE", me, 300, None).await?;
    svc.issue_ok("STALE", me, 300, Some("2001-01-01T00:00:00Z"))
        .await?;
    svc.issue_ok("THEIRS", someone_else, 300, None).await?;

    let unknown = order_created(me, Some("NOSUCH"), 1000);
    let expired = order_created(me, Some("STALE"), 1000);
    let not_owner = order_created(me, Some("THEIRS"), 1000);
    let first = order_created(me, Some("MINE"), 1000);
    let second = order_created(me, Some("MINE"), 1000);
    for order in [&unknown, &expired, &not_owner, &first, &second] {
        svc.deliver(order.clone()).await?;
    }

    let rejected = svc.emitted_of(REJECTED).await?;
    let reason = |o: &jetsaga_contracts::events::order::OrderCreated| {
        let hits = for_order(&rejected, &o.order_id.to_string());
        assert_eq!(hits.len(), 1, "{rejected:?}");
        hits[0]["reason"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(reason(&unknown), "unknown");
    assert_eq!(reason(&expired), "expired");
    assert_eq!(reason(&not_owner), "not_owner");
    assert_eq!(reason(&second), "already_used");
    assert_eq!(rejected.len(), 4);
    assert_eq!(
        for_order(&rejected, &second.order_id.to_string())[0]["voucher_code"],
        "MINE"
    );

    let reserved = svc.emitted_of(RESERVED).await?;
    assert_eq!(reserved.len(), 1);
    assert_eq!(reserved[0]["order_id"], json!(first.order_id));

    // Nothing was taken by a rejection.
    assert_eq!(svc.status("MINE").await?, "RESERVED");
    assert_eq!(svc.status("STALE").await?, "EXPIRED");
    assert_eq!(svc.status("THEIRS").await?, "AVAILABLE");
    let metrics = svc.metrics().await?;
    assert!(
        metrics.contains(r#"jetsaga_vouchers_total{outcome="rejected"} 4"#),
        "{metrics}"
    );
    svc.stop().await
}

#[tokio::test]
async fn cancellation_releases_the_reservation() -> anyhow::Result<()> {
    let svc = TestService::start().await?;
    let customer = CustomerId::new_random();
    svc.issue_ok("BACKAGAIN", customer, 250, None).await?;

    let created = order_created(customer, Some("BACKAGAIN"), 1000);
    svc.deliver(created.clone()).await?;
    assert_eq!(svc.status("BACKAGAIN").await?, "RESERVED");

    svc.deliver(order_cancelled(created.order_id)).await?;
    assert_eq!(svc.status("BACKAGAIN").await?, "AVAILABLE");
    // A second cancellation (another event id) releases nothing more.
    svc.deliver(order_cancelled(created.order_id)).await?;
    assert_eq!(
        svc.emitted_of(RELEASED).await?,
        vec![json!({"order_id": created.order_id, "voucher_code": "BACKAGAIN"})]
    );

    // Released means usable again, by another order.
    let next = order_created(customer, Some("BACKAGAIN"), 1000);
    svc.deliver(next.clone()).await?;
    assert_eq!(svc.status("BACKAGAIN").await?, "RESERVED");
    assert_eq!(svc.emitted_of(RESERVED).await?.len(), 2);

    let metrics = svc.metrics().await?;
    assert!(
        metrics.contains(r#"jetsaga_vouchers_total{outcome="released"} 1"#),
        "{metrics}"
    );
    svc.stop().await
}

#[tokio::test]
async fn cancellation_before_creation_reserves_nothing() -> anyhow::Result<()> {
    let svc = TestService::start().await?;
    let customer = CustomerId::new_random();
    svc.issue_ok("LATE", customer, 250, None).await?;

    let created = order_created(customer, Some("LATE"), 1000);
    // The cancellation overtakes the creation: a null compensation, then a hanging forward step.
    svc.deliver(order_cancelled(created.order_id)).await?;
    svc.deliver(created.clone()).await?;

    assert_eq!(svc.status("LATE").await?, "AVAILABLE");
    let emitted = svc.emitted().await?;
    let types: Vec<&str> = emitted.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, vec![common::ISSUED], "{emitted:?}");
    svc.stop().await
}

#[tokio::test]
async fn order_without_voucher_is_reserved_with_zero_discount() -> anyhow::Result<()> {
    let svc = TestService::start().await?;
    let customer = CustomerId::new_random();

    let created = order_created(customer, None, 1234);
    svc.deliver(created.clone()).await?;
    assert_eq!(
        svc.emitted_of(RESERVED).await?,
        vec![json!({
            "order_id": created.order_id,
            "customer_id": customer,
            "voucher_code": null,
            "lines": created.lines,
            "total": 1234,
            "discount": 0,
        })]
    );
    // Its cancellation has nothing to release, and its confirmation nothing to redeem.
    svc.deliver(order_cancelled(created.order_id)).await?;
    svc.deliver(order_confirmed(&created, 0)).await?;
    assert_eq!(svc.emitted().await?.len(), 1);
    svc.stop().await
}
