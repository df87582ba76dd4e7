//! The payment service's own events applied again as recorded facts
//! ([`payment_service::restore`]): a database rebuilt from what the service said holds what the
//! service held; each fact is applied as it happened, once, with the barrier its handler left.

mod common;

use common::{cents, order_cancelled, points_reserved, PaymentService};
use jetsaga_contracts::events::payment::{
    AccountCredited, PaymentFailed, PaymentRefunded, PaymentSucceeded,
};
use jetsaga_contracts::{Actor, CustomerId, EventId, OrderId, PaymentEvent};
use jetsaga_servicetest::facts::{self, Fact};
use jetsaga_testkit::TestDb;
use payment_service::consumers::{OnOrders, OnPoints};
use payment_service::domain::payment_id_for;
use payment_service::handlers::BRANCH;
use payment_service::restore::Restorer;
use payment_service::state::TABLES;
use saga_kit::barrier::{self, Gate};

async fn empty_db() -> anyhow::Result<TestDb> {
    facts::fresh_db("payment_restore", &payment_service::MIGRATIONS).await
}

fn credited(customer_id: CustomerId, amount: i64) -> Fact<PaymentEvent> {
    Fact::root(PaymentEvent::AccountCredited(AccountCredited {
        credit_id: uuid::Uuid::new_v4(),
        customer_id,
        amount: cents(amount),
        actor: Actor::anonymous(),
    }))
}

fn succeeded(order_id: OrderId, customer_id: CustomerId, amount: i64) -> Fact<PaymentEvent> {
    Fact::answer(
        PaymentEvent::PaymentSucceeded(PaymentSucceeded {
            order_id,
            payment_id: payment_id_for(order_id),
            customer_id,
            amount: cents(amount),
            lines: vec![],
        }),
        EventId::new_random(),
    )
}

fn refunded(order_id: OrderId, customer_id: CustomerId, amount: i64) -> PaymentEvent {
    PaymentEvent::PaymentRefunded(PaymentRefunded {
        order_id,
        payment_id: payment_id_for(order_id),
        customer_id,
        amount: cents(amount),
    })
}

/// The balance of a customer, `None` without an account.
async fn balance(db: &TestDb, customer: CustomerId) -> anyhow::Result<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT balance_cents FROM accounts WHERE customer_id = $1")
            .bind(customer.as_uuid())
            .fetch_optional(db.pool())
            .await?,
    )
}

#[tokio::test]
async fn a_database_rebuilt_from_what_the_service_said_holds_what_it_held() -> anyhow::Result<()> {
    let svc = PaymentService::start().await?;
    let (rich, poor, never_credited) = (
        CustomerId::new_random(),
        CustomerId::new_random(),
        CustomerId::new_random(),
    );
    svc.credit(rich, 1_000).await?;
    svc.credit(poor, 100).await?;
    let [charged, failed, free, refunded, free_refunded] =
        std::array::from_fn(|_| OrderId::new_random());
    svc.inject(&points_reserved(charged, rich, 600, 100))
        .await?;
    svc.inject(&points_reserved(failed, poor, 400, 0)).await?;
    // Paid in full by its voucher: charged 0, and no account is opened.
    svc.inject(&points_reserved(free, never_credited, 200, 200))
        .await?;
    svc.inject(&points_reserved(refunded, rich, 200, 0)).await?;
    svc.inject(&points_reserved(free_refunded, never_credited, 50, 50))
        .await?;
    svc.wait_applied(OnPoints::DURABLE, 5).await?;
    svc.inject(&order_cancelled(refunded)).await?;
    // A refund of 0 opens the account with a balance of 0, as the handler does.
    svc.inject(&order_cancelled(free_refunded)).await?;
    svc.wait_applied(OnOrders::DURABLE, 2).await?;

    let rebuilt = empty_db().await?;
    facts::assert_rebuilt_from_facts(
        &Restorer,
        svc.db.pool(),
        rebuilt.pool(),
        TABLES,
        9,
        "2 credits, 4 charges, 1 failure, 2 refunds",
    )
    .await?;
    assert_eq!(balance(&rebuilt, never_credited).await?, Some(0));
    svc.stop().await
}

/// The "top-up during a saga": the charge was committed after a credit that came in while
/// the saga ran. The facts keep that order, so the charge is restored as it happened.
#[tokio::test]
async fn a_charge_committed_after_a_top_up_is_restored_charged() -> anyhow::Result<()> {
    let db = empty_db().await?;
    let (customer, order) = (CustomerId::new_random(), OrderId::new_random());
    let recorded = [
        credited(customer, 300),
        credited(customer, 500),
        succeeded(order, customer, 800),
    ];
    facts::restore_all(&Restorer, db.pool(), &recorded).await?;

    assert_eq!(balance(&db, customer).await?, Some(0));
    let status: String = sqlx::query_scalar("SELECT status FROM payments WHERE order_id = $1")
        .bind(order.as_uuid())
        .fetch_one(db.pool())
        .await?;
    assert_eq!(status, "CHARGED");
    Ok(())
}

#[tokio::test]
async fn restoring_the_same_facts_twice_changes_nothing() -> anyhow::Result<()> {
    let db = empty_db().await?;
    let customer = CustomerId::new_random();
    let [kept, given_back, failed] = std::array::from_fn(|_| OrderId::new_random());
    let recorded = [
        credited(customer, 1_000),
        succeeded(kept, customer, 300),
        succeeded(given_back, customer, 500),
        Fact::answer(
            PaymentEvent::PaymentFailed(PaymentFailed {
                order_id: failed,
                customer_id: customer,
                amount: cents(5_000),
            }),
            EventId::new_random(),
        ),
        Fact::answer(refunded(given_back, customer, 500), EventId::new_random()),
    ];
    facts::assert_restoring_twice_changes_nothing(&Restorer, db.pool(), TABLES, &recorded).await?;
    assert_eq!(balance(&db, customer).await?, Some(700));
    Ok(())
}

#[tokio::test]
async fn restored_refund_leaves_the_barrier_so_a_late_points_reserved_charges_nothing(
) -> anyhow::Result<()> {
    let db = empty_db().await?;
    let (customer, order) = (CustomerId::new_random(), OrderId::new_random());
    let recorded = [
        credited(customer, 1_000),
        succeeded(order, customer, 500),
        Fact::answer(refunded(order, customer, 500), EventId::new_random()),
    ];
    facts::restore_all(&Restorer, db.pool(), &recorded).await?;
    assert_eq!(balance(&db, customer).await?, Some(1_000));
    let mut conn = db.pool().acquire().await?;
    let gate =
        barrier::forward(&mut conn, &order.to_string(), BRANCH, EventId::new_random()).await?;
    assert_eq!(gate, Gate::Hanging);

    // The voucher step's answer again under another id, and the cancellation again: neither
    // charges nor refunds anything.
    let late = points_reserved(order, customer, 500, 0);
    assert!(facts::handle(db.pool(), &OnPoints, OnPoints::DURABLE, late)
        .await?
        .is_empty());
    let again = order_cancelled(order);
    assert!(
        facts::handle(db.pool(), &OnOrders, OnOrders::DURABLE, again)
            .await?
            .is_empty()
    );
    assert_eq!(balance(&db, customer).await?, Some(1_000));
    Ok(())
}

/// A refund a reconcile repair made is a root event; it restores as the handler's does, and a
/// cancellation still on its way then finds the compensation done.
#[tokio::test]
async fn a_repairs_refund_is_restored_like_the_handlers() -> anyhow::Result<()> {
    let db = empty_db().await?;
    let (customer, order) = (CustomerId::new_random(), OrderId::new_random());
    let recorded = [
        credited(customer, 1_000),
        succeeded(order, customer, 400),
        Fact::root(refunded(order, customer, 400)),
    ];
    facts::restore_all(&Restorer, db.pool(), &recorded).await?;
    assert_eq!(balance(&db, customer).await?, Some(1_000));

    let late = order_cancelled(order);
    assert!(facts::handle(db.pool(), &OnOrders, OnOrders::DURABLE, late)
        .await?
        .is_empty());
    assert_eq!(balance(&db, customer).await?, Some(1_000));
    Ok(())
}

#[tokio::test]
async fn a_fact_whose_earlier_fact_is_missing_fails_and_names_the_order() -> anyhow::Result<()> {
    let db = empty_db().await?;
    let (customer, order) = (CustomerId::new_random(), OrderId::new_random());

    // A charge the restored balance cannot cover: a credit is missing.
    let short = [credited(customer, 100), succeeded(order, customer, 500)];
    let err = facts::restore_all(&Restorer, db.pool(), &short)
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains(&order.to_string()), "{text}");
    assert_eq!(
        balance(&db, customer).await?,
        Some(100),
        "nothing was charged"
    );

    // A refund of a charge that was never restored.
    let never_charged = [Fact::answer(
        refunded(order, customer, 500),
        EventId::new_random(),
    )];
    let err = facts::restore_all(&Restorer, db.pool(), &never_charged)
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains(&order.to_string()), "{text}");
    assert_eq!(balance(&db, customer).await?, Some(100));
    Ok(())
}
