//! The points service's facts: a database rebuilt from what the service said holds what it held.

mod common;

use common::{order_cancelled, order_confirmed, voucher_reserved, TestService};
use jetsaga_contracts::{CustomerId, OrderId};
use jetsaga_servicetest::facts;
use points_service::restore::Restorer;
use points_service::state::TABLES;

#[tokio::test]
async fn a_database_rebuilt_from_what_the_service_said_holds_what_it_held() -> anyhow::Result<()> {
    let svc = TestService::start().await?;
    let (rich, poor) = (CustomerId::new_random(), CustomerId::new_random());
    svc.award_ok(rich, 1_000).await?;
    svc.award_ok(poor, 10).await?;
    let [spent, released, plain, rejected, pending] = [(); 5].map(|_| OrderId::new_random());
    svc.deliver_voucher(voucher_reserved(spent, rich, 2_000, 0, Some(300)))
        .await?;
    svc.deliver_voucher(voucher_reserved(released, rich, 2_000, 0, Some(200)))
        .await?;
    svc.deliver_voucher(voucher_reserved(plain, rich, 2_000, 0, None))
        .await?;
    svc.deliver_voucher(voucher_reserved(rejected, poor, 2_000, 0, Some(500)))
        .await?;
    svc.deliver_voucher(voucher_reserved(pending, rich, 2_000, 0, Some(100)))
        .await?;
    svc.deliver_order(order_confirmed(spent, rich, 2_000, 0, 300))
        .await?;
    svc.deliver_order(order_confirmed(plain, rich, 2_000, 0, 0))
        .await?;
    svc.deliver_order(order_cancelled(released)).await?;

    let rebuilt = facts::fresh_db("points_restore", &points_service::MIGRATIONS).await?;
    facts::assert_rebuilt_from_facts(
        &Restorer,
        svc.db.pool(),
        rebuilt.pool(),
        TABLES,
        10,
        "2 awarded, 4 reserved, 1 rejected, 2 earned, 1 released",
    )
    .await?;
    let again = facts::fresh_db("points_restore", &points_service::MIGRATIONS).await?;
    let recorded = facts::recorded(svc.db.pool()).await?;
    facts::assert_restoring_twice_changes_nothing(&Restorer, again.pool(), TABLES, &recorded)
        .await?;
    svc.stop().await
}

#[tokio::test]
async fn a_customer_without_points_who_is_rejected_leaves_nothing_a_rebuild_would_miss(
) -> anyhow::Result<()> {
    let svc = TestService::start().await?;
    let nobody = CustomerId::new_random();
    svc.deliver_voucher(voucher_reserved(
        OrderId::new_random(),
        nobody,
        500,
        0,
        Some(50),
    ))
    .await?;
    assert_eq!(svc.count("accounts").await?, 0);
    let rebuilt = facts::fresh_db("points_restore", &points_service::MIGRATIONS).await?;
    facts::assert_rebuilt_from_facts(
        &Restorer,
        svc.db.pool(),
        rebuilt.pool(),
        TABLES,
        1,
        "1 rejected",
    )
    .await?;
    svc.stop().await
}
