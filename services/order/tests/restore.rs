//! The order service's own events applied again as recorded facts ([`order_service::restore`]):
//! a database rebuilt from what the service said holds what the service held, Idempotency-Keys
//! included; each fact is applied as it happened, once, and a terminal order never changes.

mod common;

use common::{order_body, App};
use jetsaga_contracts::events::order::{
    OrderCancelled, OrderConfirmed, OrderCreated, ProductPriced,
};
use jetsaga_contracts::events::stock::StockReserved;
use jetsaga_contracts::events::voucher::VoucherRejected;
use jetsaga_contracts::{
    Actor, CancelReason, CustomerId, EventId, EventSet, Money, OrderEvent, OrderId, OrderLine,
    PointsEvent, RejectReason, Sku, StockEvent, StockLine, VoucherCode, VoucherEvent,
};
use jetsaga_servicetest::facts::{self, Fact};
use jetsaga_testkit::TestDb;
use order_service::consumers::{OnPayments, OnPoints, OnStock};
use order_service::restore::Restorer;
use order_service::state::TABLES;
use order_service::store;
use serde_json::json;

async fn empty_db() -> anyhow::Result<TestDb> {
    facts::fresh_db("order_restore", &order_service::MIGRATIONS).await
}

fn cents(c: i64) -> Money {
    Money::from_cents(c).expect("valid money")
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).expect("valid sku")
}

/// An order of two TEA at 300, with an Idempotency-Key.
fn created(key: Option<&str>) -> OrderCreated {
    OrderCreated {
        order_id: OrderId::new_random(),
        customer_id: CustomerId::new_random(),
        lines: vec![OrderLine {
            sku: sku("TEA"),
            quantity: 2,
            unit_price: cents(300),
        }],
        total: cents(600),
        voucher_code: None,
        points: None,
        deadline: time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000),
        idempotency_key: key.map(str::to_owned),
    }
}

fn confirmed(order: &OrderCreated, discount: i64) -> Fact<OrderEvent> {
    Fact::answer(
        OrderEvent::OrderConfirmed(OrderConfirmed {
            order_id: order.order_id,
            customer_id: order.customer_id,
            total: order.total,
            discount: cents(discount),
            points_spent: jetsaga_contracts::Points::ZERO,
            voucher_code: None,
        }),
        EventId::new_random(),
    )
}

fn cancelled(order_id: OrderId, reason: CancelReason) -> OrderEvent {
    OrderEvent::OrderCancelled(OrderCancelled { order_id, reason })
}

/// `(status, discount_cents, cancel_reason)` of an order.
async fn order_row(
    db: &TestDb,
    order_id: OrderId,
) -> anyhow::Result<(String, Option<i64>, Option<String>)> {
    Ok(sqlx::query_as(
        "SELECT status, discount_cents, cancel_reason FROM orders WHERE order_id = $1",
    )
    .bind(order_id.as_uuid())
    .fetch_one(db.pool())
    .await?)
}

#[tokio::test]
async fn a_database_rebuilt_from_what_the_service_said_holds_what_it_held() -> anyhow::Result<()> {
    let app = App::start().await?;
    app.put_product("TEA", 250).await?;
    app.put_product("TEA", 300).await?;
    app.put_product("CUP", 100).await?;
    let body = json!({
        "customer_id": uuid::Uuid::new_v4(),
        "items": [{"sku": "TEA", "quantity": 2}, {"sku": "CUP", "quantity": 1}],
        "voucher_code": "SAVE1",
    });
    let answer = app.post_order(&body, Some("client-key-1")).await?;
    anyhow::ensure!(answer.status == 202, "{answer:?}");
    let kept: OrderId = answer.body["order_id"]
        .as_str()
        .unwrap_or_default()
        .parse()?;
    let rejected = app.place_order(&order_body(&[("CUP", 1)])).await?;
    let unpaid = app.place_order(&order_body(&[("TEA", 1)])).await?;
    let pending = app
        .post_order(&order_body(&[("CUP", 3)]), Some("k2"))
        .await?;
    anyhow::ensure!(pending.status == 202, "{pending:?}");

    app.points_reserved(kept, 50).await?;
    app.wait_applied(OnPoints::DURABLE, 1).await?;
    app.stock_reserved(kept).await?;
    app.wait_status(kept, "CONFIRMED").await?;
    app.inject(&VoucherEvent::VoucherRejected(VoucherRejected {
        order_id: rejected,
        voucher_code: VoucherCode::parse("NOPE")?,
        reason: RejectReason::Unknown,
    }))
    .await?;
    app.wait_status(rejected, "CANCELLED").await?;
    // The voucher step passed (recorded, nothing said), then the payment failed.
    let unpaid_voucher = app.points_reserved(unpaid, 0).await?;
    app.wait_applied(OnPoints::DURABLE, 2).await?;
    app.payment_failed(unpaid).await?;
    app.wait_applied(OnPayments::DURABLE, 1).await?;

    let rebuilt = empty_db().await?;
    let recorded = facts::recorded::<OrderEvent>(app.db.pool()).await?;
    assert_eq!(
        recorded.len(),
        10,
        "3 prices, 4 orders, 1 confirmation, 2 cancellations"
    );
    facts::restore_all(&Restorer, rebuilt.pool(), &recorded).await?;

    // What the handlers recorded without saying anything has no fact: the replay handles that
    // input again (PointsReserved of the unpaid order, which recorded its discount and points).
    let live = facts::state(app.db.pool(), TABLES).await?;
    assert_ne!(facts::state(rebuilt.pool(), TABLES).await?, live);
    let input = PointsEvent::from_payload(&unpaid_voucher.ce_type, &unpaid_voucher.payload)?;
    assert!(
        facts::handle(rebuilt.pool(), &OnPoints, OnPoints::DURABLE, input)
            .await?
            .is_empty()
    );
    assert_eq!(facts::state(rebuilt.pool(), TABLES).await?, live);

    // The Idempotency-Key answers the same order, with the same request hash.
    assert_eq!(
        store::order_by_idempotency_key(rebuilt.pool(), "client-key-1").await?,
        store::order_by_idempotency_key(app.db.pool(), "client-key-1").await?,
    );
    assert_eq!(
        store::order_by_idempotency_key(rebuilt.pool(), "client-key-1")
            .await?
            .map(|(id, _)| id),
        Some(kept)
    );
    app.stop().await
}

/// The "deadline race": the sweep cancelled the order just before its StockReserved was
/// handled. The facts say CANCELLED, and StockReserved then changes nothing, as it did.
#[tokio::test]
async fn an_order_cancelled_at_its_deadline_stays_cancelled_when_stock_answers_late(
) -> anyhow::Result<()> {
    let db = empty_db().await?;
    let order = created(None);
    let order_id = order.order_id;
    let recorded = [
        Fact::root(OrderEvent::OrderCreated(order)),
        Fact::root(cancelled(order_id, CancelReason::Timeout)),
    ];
    facts::restore_all(&Restorer, db.pool(), &recorded).await?;

    let late = StockEvent::StockReserved(StockReserved {
        order_id,
        lines: vec![StockLine {
            sku: sku("TEA"),
            quantity: 2,
        }],
    });
    assert!(facts::handle(db.pool(), &OnStock, OnStock::DURABLE, late)
        .await?
        .is_empty());
    assert_eq!(
        order_row(&db, order_id).await?,
        ("CANCELLED".to_owned(), None, Some("timeout".to_owned()))
    );
    Ok(())
}

#[tokio::test]
async fn restoring_the_same_facts_twice_changes_nothing() -> anyhow::Result<()> {
    let db = empty_db().await?;
    let (kept, dropped) = (created(Some("once")), created(None));
    let recorded = [
        Fact::root(OrderEvent::ProductPriced(ProductPriced {
            sku: sku("TEA"),
            name: "tea".into(),
            price: cents(300),
            actor: Actor::anonymous(),
        })),
        Fact::root(OrderEvent::OrderCreated(kept.clone())),
        Fact::root(OrderEvent::OrderCreated(dropped.clone())),
        confirmed(&kept, 100),
        Fact::answer(
            cancelled(dropped.order_id, CancelReason::StockFailed),
            EventId::new_random(),
        ),
    ];
    facts::assert_restoring_twice_changes_nothing(&Restorer, db.pool(), TABLES, &recorded).await?;
    assert_eq!(
        order_row(&db, kept.order_id).await?,
        ("CONFIRMED".to_owned(), Some(100), None)
    );
    Ok(())
}

#[tokio::test]
async fn a_fact_that_contradicts_the_restored_order_fails_and_names_the_order() -> anyhow::Result<()>
{
    let db = empty_db().await?;
    let order = created(Some("taken"));
    let order_id = order.order_id;

    // An end of an order whose OrderCreated is missing.
    let err = facts::restore_all(&Restorer, db.pool(), &[confirmed(&order, 0)])
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains(&order_id.to_string()),
        "{err:#}"
    );

    // A confirmation of an order that was cancelled: a terminal order never changes.
    let ended = [
        Fact::root(OrderEvent::OrderCreated(order.clone())),
        Fact::root(cancelled(order_id, CancelReason::Timeout)),
        confirmed(&order, 0),
    ];
    let err = facts::restore_all(&Restorer, db.pool(), &ended)
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains(&order_id.to_string()) && text.contains("CANCELLED"),
        "{text}"
    );
    assert_eq!(
        order_row(&db, order_id).await?,
        ("CANCELLED".to_owned(), None, Some("timeout".to_owned()))
    );

    // Another order under an Idempotency-Key this one holds.
    let mut thief = created(Some("taken"));
    thief.customer_id = order.customer_id;
    let err = facts::restore_all(
        &Restorer,
        db.pool(),
        &[Fact::root(OrderEvent::OrderCreated(thief.clone()))],
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains(&thief.order_id.to_string()),
        "{err:#}"
    );
    Ok(())
}
