//! The stock service's own events applied again as recorded facts ([`stock_service::restore`]):
//! a database rebuilt from what the service said holds what the service held; each fact is
//! applied as it happened, once, with the barrier its handler left.

mod common;

use common::{cancelled, paid, StockService};
use jetsaga_contracts::events::payment::PaymentSucceeded;
use jetsaga_contracts::events::stock::{StockAdjusted, StockFailed, StockReleased, StockReserved};
use jetsaga_contracts::{
    Actor, CancelReason, EventId, OrderEvent, OrderId, PaymentEvent, Sku, StockEvent, StockLine,
};
use jetsaga_servicetest::facts::{self, Fact};
use jetsaga_testkit::TestDb;
use saga_kit::barrier::{self, Gate};
use stock_service::consumers::{OnOrders, OnPayments};
use stock_service::handlers::BRANCH;
use stock_service::restore::Restorer;
use stock_service::state::TABLES;

async fn empty_db() -> anyhow::Result<TestDb> {
    facts::fresh_db("stock_restore", &stock_service::MIGRATIONS).await
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).expect("valid sku")
}

fn line(s: &str, quantity: u32) -> StockLine {
    StockLine {
        sku: sku(s),
        quantity,
    }
}

fn adjusted(s: &str, delta: i64) -> Fact<StockEvent> {
    Fact::root(StockEvent::StockAdjusted(StockAdjusted {
        adjustment_id: uuid::Uuid::new_v4(),
        sku: sku(s),
        delta,
        actor: Actor::anonymous(),
    }))
}

fn reserved(order_id: OrderId, lines: &[(&str, u32)], cause: EventId) -> Fact<StockEvent> {
    let lines = lines.iter().map(|(s, q)| line(s, *q)).collect();
    Fact::answer(
        StockEvent::StockReserved(StockReserved { order_id, lines }),
        cause,
    )
}

fn released(order_id: OrderId, lines: &[(&str, u32)], cause: EventId) -> Fact<StockEvent> {
    let lines = lines.iter().map(|(s, q)| line(s, *q)).collect();
    Fact::answer(
        StockEvent::StockReleased(StockReleased { order_id, lines }),
        cause,
    )
}

/// `(available, reserved)` of a SKU.
async fn units(db: &TestDb, s: &str) -> anyhow::Result<(i64, i64)> {
    Ok(
        sqlx::query_as("SELECT available, reserved FROM stock WHERE sku = $1")
            .bind(s)
            .fetch_one(db.pool())
            .await?,
    )
}

#[tokio::test]
async fn a_database_rebuilt_from_what_the_service_said_holds_what_it_held() -> anyhow::Result<()> {
    let svc = StockService::start().await?;
    svc.add_stock("A", 10).await?;
    svc.add_stock("B", 3).await?;
    svc.add_stock("A", -2).await?;
    let (held, short, given_back) = (
        OrderId::new_random(),
        OrderId::new_random(),
        OrderId::new_random(),
    );
    svc.inject(&paid(held, &[("A", 2), ("B", 1)])).await?;
    svc.inject(&paid(short, &[("B", 5)])).await?;
    svc.inject(&paid(given_back, &[("A", 1)])).await?;
    svc.wait_applied(OnPayments::DURABLE, 3).await?;
    svc.inject(&cancelled(given_back, CancelReason::Timeout))
        .await?;
    svc.wait_applied(OnOrders::DURABLE, 1).await?;

    let rebuilt = empty_db().await?;
    facts::assert_rebuilt_from_facts(
        &Restorer,
        svc.db.pool(),
        rebuilt.pool(),
        TABLES,
        7,
        "3 adjustments, 2 reserved, 1 failed, 1 released",
    )
    .await?;
    svc.stop().await
}

/// The "last unit": PaymentSucceeded A was retried, so B got the unit first. The facts
/// say so, and the rebuild follows them, not the order the payments were stored in.
#[tokio::test]
async fn the_last_unit_goes_to_the_order_the_facts_name_not_to_the_first_payment(
) -> anyhow::Result<()> {
    let db = empty_db().await?;
    let (first, second) = (OrderId::new_random(), OrderId::new_random());
    let recorded = [
        adjusted("LAST", 1),
        reserved(second, &[("LAST", 1)], EventId::new_random()),
        Fact::answer(
            StockEvent::StockFailed(StockFailed {
                order_id: first,
                sku: sku("LAST"),
                requested: 1,
                available: 0,
            }),
            EventId::new_random(),
        ),
    ];
    facts::restore_all(&Restorer, db.pool(), &recorded).await?;

    assert_eq!(units(&db, "LAST").await?, (0, 1));
    let holders: Vec<(uuid::Uuid, String)> =
        sqlx::query_as("SELECT order_id, status FROM reservations")
            .fetch_all(db.pool())
            .await?;
    assert_eq!(holders, vec![(*second.as_uuid(), "HELD".to_owned())]);
    // Both payments passed the forward barrier: a redelivery of either is a duplicate.
    let forward: Vec<_> = facts::barrier(db.pool()).await?;
    assert_eq!(forward.len(), 2, "{forward:?}");
    Ok(())
}

#[tokio::test]
async fn restoring_the_same_facts_twice_changes_nothing() -> anyhow::Result<()> {
    let db = empty_db().await?;
    let (kept, given_back) = (OrderId::new_random(), OrderId::new_random());
    let recorded = [
        adjusted("A", 5),
        adjusted("B", 2),
        reserved(kept, &[("A", 1), ("B", 2)], EventId::new_random()),
        reserved(given_back, &[("A", 3)], EventId::new_random()),
        released(given_back, &[("A", 3)], EventId::new_random()),
    ];
    facts::assert_restoring_twice_changes_nothing(&Restorer, db.pool(), TABLES, &recorded).await?;
    assert_eq!(units(&db, "A").await?, (4, 1));
    assert_eq!(units(&db, "B").await?, (0, 2));
    Ok(())
}

#[tokio::test]
async fn restored_release_leaves_the_barrier_so_a_late_payment_is_a_hanging_step(
) -> anyhow::Result<()> {
    let db = empty_db().await?;
    let order = OrderId::new_random();
    let recorded = [
        adjusted("A", 5),
        reserved(order, &[("A", 2)], EventId::new_random()),
        released(order, &[("A", 2)], EventId::new_random()),
    ];
    facts::restore_all(&Restorer, db.pool(), &recorded).await?;
    assert_eq!(units(&db, "A").await?, (5, 0));
    let mut conn = db.pool().acquire().await?;
    let saga = order.to_string();
    let gate = barrier::forward(&mut conn, &saga, BRANCH, EventId::new_random()).await?;
    assert_eq!(gate, Gate::Hanging);

    // The same payment again under another id, and the cancellation again: the handlers meet the
    // barrier the restored facts left, and neither holds nor releases anything.
    let PaymentEvent::PaymentSucceeded(payment) = paid(order, &[("A", 2)]) else {
        unreachable!("paid builds a PaymentSucceeded")
    };
    let late = PaymentEvent::PaymentSucceeded(PaymentSucceeded {
        payment_id: uuid::Uuid::new_v4(),
        ..payment
    });
    assert!(
        facts::handle(db.pool(), &OnPayments, OnPayments::DURABLE, late)
            .await?
            .is_empty()
    );
    let again: OrderEvent = cancelled(order, CancelReason::Timeout);
    assert!(
        facts::handle(db.pool(), &OnOrders, OnOrders::DURABLE, again)
            .await?
            .is_empty()
    );
    assert_eq!(units(&db, "A").await?, (5, 0));
    Ok(())
}

/// A release a reconcile repair made is a root event; it restores as the handler's does, and a
/// cancellation still on its way then finds the compensation done.
#[tokio::test]
async fn a_repairs_release_is_restored_like_the_handlers() -> anyhow::Result<()> {
    let db = empty_db().await?;
    let order = OrderId::new_random();
    let repair = Fact::root(StockEvent::StockReleased(StockReleased {
        order_id: order,
        lines: vec![line("A", 2)],
    }));
    let recorded = [
        adjusted("A", 5),
        reserved(order, &[("A", 2)], EventId::new_random()),
        repair,
    ];
    facts::restore_all(&Restorer, db.pool(), &recorded).await?;
    assert_eq!(units(&db, "A").await?, (5, 0));

    let late = cancelled(order, CancelReason::Timeout);
    assert!(facts::handle(db.pool(), &OnOrders, OnOrders::DURABLE, late)
        .await?
        .is_empty());
    assert_eq!(units(&db, "A").await?, (5, 0));
    Ok(())
}

#[tokio::test]
async fn a_fact_whose_earlier_fact_is_missing_fails_and_names_the_order() -> anyhow::Result<()> {
    let db = empty_db().await?;
    let order = OrderId::new_random();

    let never_added = [reserved(order, &[("GHOST", 1)], EventId::new_random())];
    let err = facts::restore_all(&Restorer, db.pool(), &never_added)
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains(&order.to_string()) && text.contains("GHOST"),
        "{text}"
    );

    let never_reserved = [
        adjusted("A", 1),
        released(order, &[("A", 1)], EventId::new_random()),
    ];
    let err = facts::restore_all(&Restorer, db.pool(), &never_reserved)
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains(&order.to_string()), "{text}");
    assert_eq!(
        units(&db, "A").await?,
        (1, 0),
        "the adjustment before it stays"
    );
    Ok(())
}
