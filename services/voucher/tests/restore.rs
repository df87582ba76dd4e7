//! The voucher service's own events applied again as recorded facts
//! ([`voucher_service::restore`]): a database rebuilt from what the service said holds what the
//! service held; each fact is applied as it happened, once, with the barrier its handler left.

mod common;

use common::{order_cancelled, order_confirmed, order_created, TestService};
use jetsaga_contracts::events::voucher::{
    VoucherIssued, VoucherRedeemed, VoucherRejected, VoucherReleased, VoucherReserved,
};
use jetsaga_contracts::{
    Actor, CustomerId, EventId, Money, OrderEvent, OrderId, RejectReason, VoucherCode, VoucherEvent,
};
use jetsaga_servicetest::facts::{self, Fact};
use jetsaga_testkit::TestDb;
use saga_kit::barrier::{self, Gate};
use time::OffsetDateTime;
use voucher_service::consumers::OnOrders;
use voucher_service::handlers::BRANCH;
use voucher_service::restore::Restorer;
use voucher_service::state::TABLES;

async fn empty_db() -> anyhow::Result<TestDb> {
    facts::fresh_db("voucher_restore", &voucher_service::MIGRATIONS).await
}

fn code(c: &str) -> VoucherCode {
    VoucherCode::parse(c).expect("valid code")
}

fn issued(
    c: &str,
    customer_id: CustomerId,
    expires_at: Option<OffsetDateTime>,
) -> Fact<VoucherEvent> {
    Fact::root(VoucherEvent::VoucherIssued(VoucherIssued {
        code: code(c),
        customer_id,
        discount: Money::from_cents(500).expect("valid money"),
        expires_at,
        actor: Actor::anonymous(),
    }))
}

fn reserved(order_id: OrderId, customer_id: CustomerId, c: Option<&str>) -> Fact<VoucherEvent> {
    let total = Money::from_cents(1_000).expect("valid money");
    Fact::answer(
        VoucherEvent::VoucherReserved(VoucherReserved {
            order_id,
            customer_id,
            voucher_code: c.map(code),
            lines: vec![],
            total,
            discount: Money::from_cents(if c.is_some() { 500 } else { 0 }).expect("valid money"),
            points: None,
        }),
        EventId::new_random(),
    )
}

fn released(order_id: OrderId, c: &str) -> VoucherEvent {
    VoucherEvent::VoucherReleased(VoucherReleased {
        order_id,
        voucher_code: code(c),
    })
}

fn redeemed(order_id: OrderId, c: &str) -> Fact<VoucherEvent> {
    Fact::answer(
        VoucherEvent::VoucherRedeemed(VoucherRedeemed {
            order_id,
            voucher_code: code(c),
        }),
        EventId::new_random(),
    )
}

/// The stored status and holder of a voucher.
async fn voucher(db: &TestDb, c: &str) -> anyhow::Result<(String, Option<uuid::Uuid>)> {
    Ok(
        sqlx::query_as("SELECT status, order_id FROM vouchers WHERE code = $1")
            .bind(c)
            .fetch_one(db.pool())
            .await?,
    )
}

#[tokio::test]
async fn a_database_rebuilt_from_what_the_service_said_holds_what_it_held() -> anyhow::Result<()> {
    let svc = TestService::start().await?;
    let customer = CustomerId::new_random();
    svc.issue_ok("KEEP", customer, 300, Some("2099-12-31T23:59:59.123456Z"))
        .await?;
    svc.issue_ok("GIVEBACK", customer, 2_000, None).await?;
    svc.issue_ok("UNUSED", customer, 100, None).await?;

    let redeemed = order_created(customer, Some("KEEP"), 1_000);
    let given_back = order_created(customer, Some("GIVEBACK"), 1_000);
    let without = order_created(customer, None, 1_000);
    let rejected = order_created(customer, Some("NOSUCH"), 1_000);
    for created in [&redeemed, &given_back, &without, &rejected] {
        svc.deliver(OrderEvent::OrderCreated(created.clone()))
            .await?;
    }
    svc.deliver(OrderEvent::OrderConfirmed(order_confirmed(&redeemed, 300)))
        .await?;
    svc.deliver(OrderEvent::OrderCancelled(order_cancelled(
        given_back.order_id,
    )))
    .await?;

    let rebuilt = empty_db().await?;
    facts::assert_rebuilt_from_facts(
        &Restorer,
        svc.db.pool(),
        rebuilt.pool(),
        TABLES,
        9,
        "3 issued, 3 reserved, 1 rejected, 1 redeemed, 1 released",
    )
    .await?;
    svc.stop().await
}

/// The order's check passed when the reservation was committed; the voucher has expired since.
/// Restoring the reservation asks nothing again, so the voucher stays with its order.
#[tokio::test]
async fn a_voucher_reserved_before_it_expired_is_restored_reserved() -> anyhow::Result<()> {
    let db = empty_db().await?;
    let (customer, order) = (CustomerId::new_random(), OrderId::new_random());
    let expired = OffsetDateTime::now_utc() - time::Duration::hours(1);
    let recorded = [
        issued("SPRING", customer, Some(expired)),
        reserved(order, customer, Some("SPRING")),
    ];
    facts::restore_all(&Restorer, db.pool(), &recorded).await?;
    assert_eq!(
        voucher(&db, "SPRING").await?,
        ("RESERVED".to_owned(), Some(*order.as_uuid()))
    );
    Ok(())
}

#[tokio::test]
async fn restoring_the_same_facts_twice_changes_nothing() -> anyhow::Result<()> {
    let db = empty_db().await?;
    let customer = CustomerId::new_random();
    let [used, given_back, without, rejected] = std::array::from_fn(|_| OrderId::new_random());
    let recorded = [
        issued("USED", customer, None),
        issued("BACK", customer, None),
        reserved(used, customer, Some("USED")),
        reserved(given_back, customer, Some("BACK")),
        reserved(without, customer, None),
        Fact::answer(
            VoucherEvent::VoucherRejected(VoucherRejected {
                order_id: rejected,
                voucher_code: code("USED"),
                reason: RejectReason::AlreadyUsed,
            }),
            EventId::new_random(),
        ),
        redeemed(used, "USED"),
        Fact::answer(released(given_back, "BACK"), EventId::new_random()),
    ];
    facts::assert_restoring_twice_changes_nothing(&Restorer, db.pool(), TABLES, &recorded).await?;
    assert_eq!(
        voucher(&db, "USED").await?,
        ("REDEEMED".to_owned(), Some(*used.as_uuid()))
    );
    assert_eq!(voucher(&db, "BACK").await?, ("AVAILABLE".to_owned(), None));
    Ok(())
}

#[tokio::test]
async fn restored_release_leaves_the_barrier_so_a_late_order_created_reserves_nothing(
) -> anyhow::Result<()> {
    let db = empty_db().await?;
    let customer = CustomerId::new_random();
    let created = order_created(customer, Some("ONCE"), 1_000);
    let order = created.order_id;
    let recorded = [
        issued("ONCE", customer, None),
        reserved(order, customer, Some("ONCE")),
        Fact::answer(released(order, "ONCE"), EventId::new_random()),
    ];
    facts::restore_all(&Restorer, db.pool(), &recorded).await?;
    assert_eq!(voucher(&db, "ONCE").await?, ("AVAILABLE".to_owned(), None));
    let mut conn = db.pool().acquire().await?;
    let gate =
        barrier::forward(&mut conn, &order.to_string(), BRANCH, EventId::new_random()).await?;
    assert_eq!(gate, Gate::Hanging);

    // OrderCreated again under another id: it meets the barrier and reserves nothing.
    let late = OrderEvent::OrderCreated(created);
    assert!(facts::handle(db.pool(), &OnOrders, OnOrders::DURABLE, late)
        .await?
        .is_empty());
    assert_eq!(voucher(&db, "ONCE").await?, ("AVAILABLE".to_owned(), None));
    Ok(())
}

/// A release a reconcile repair made is a root event; it restores as the handler's does, and a
/// cancellation still on its way then finds the compensation done.
#[tokio::test]
async fn a_repairs_release_is_restored_like_the_handlers() -> anyhow::Result<()> {
    let db = empty_db().await?;
    let (customer, order) = (CustomerId::new_random(), OrderId::new_random());
    let recorded = [
        issued("FIXED", customer, None),
        reserved(order, customer, Some("FIXED")),
        Fact::root(released(order, "FIXED")),
    ];
    facts::restore_all(&Restorer, db.pool(), &recorded).await?;
    assert_eq!(voucher(&db, "FIXED").await?, ("AVAILABLE".to_owned(), None));

    let late = OrderEvent::OrderCancelled(order_cancelled(order));
    assert!(facts::handle(db.pool(), &OnOrders, OnOrders::DURABLE, late)
        .await?
        .is_empty());
    Ok(())
}

#[tokio::test]
async fn a_fact_that_does_not_fit_the_restored_voucher_fails_and_names_the_order(
) -> anyhow::Result<()> {
    let db = empty_db().await?;
    let customer = CustomerId::new_random();
    let (holder, other) = (OrderId::new_random(), OrderId::new_random());

    // A voucher never issued.
    let never_issued = [reserved(holder, customer, Some("GHOST"))];
    let err = facts::restore_all(&Restorer, db.pool(), &never_issued)
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains(&holder.to_string()) && text.contains("GHOST"),
        "{text}"
    );

    // A voucher another order holds (that order's release is missing).
    let taken = [
        issued("TAKEN", customer, None),
        reserved(holder, customer, Some("TAKEN")),
        reserved(other, customer, Some("TAKEN")),
    ];
    let err = facts::restore_all(&Restorer, db.pool(), &taken)
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains(&other.to_string()) && text.contains(&holder.to_string()),
        "{text}"
    );
    assert_eq!(
        voucher(&db, "TAKEN").await?,
        ("RESERVED".to_owned(), Some(*holder.as_uuid()))
    );

    // A redemption by an order that does not hold it.
    let err = facts::restore_all(&Restorer, db.pool(), &[redeemed(other, "TAKEN")])
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains(&other.to_string()), "{err:#}");
    Ok(())
}
