//! The saga's paths, given/when/then, each ending with the shared invariant checker.

use jetsaga_scenarios::checker::assert_invariants;
use jetsaga_scenarios::ledger::{new_id, new_sku};
use jetsaga_scenarios::{Ledger, System, SystemOptions};
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn happy_path_without_voucher_confirms_charges_once_and_holds_stock() -> anyhow::Result<()> {
    // Given a priced SKU with stock and a customer with money
    let sys = System::start(SystemOptions::default()).await?;
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let sku = new_sku("MUG");
    ledger.sku(api, &sku, 1_250, 10).await?;
    let alice = ledger.customer(api, 10_000).await?;
    // When she orders two
    let order = ledger.order(api, &alice, &[(&sku, 2)], None).await?;
    // Then the order is confirmed, she paid 25.00 once, and two units are held
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.status(&order), "CONFIRMED");
    assert_eq!(api.balance(&alice).await?, 7_500);
    assert_eq!(api.stock(&sku).await?, (8, 2));
    let timeline = api.timeline(&order).await?.ok()?;
    let events: Vec<&str> = timeline["events"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["event"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        events,
        [
            "orders.created",
            "vouchers.reserved",
            "points.reserved",
            "payments.succeeded",
            "stock.reserved",
            "orders.confirmed",
            "points.earned"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn happy_path_with_voucher_discounts_and_redeems_it() -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let sku = new_sku("LAMP");
    ledger.sku(api, &sku, 4_000, 3).await?;
    let bob = ledger.customer(api, 5_000).await?;
    let code = new_sku("WELCOME");
    ledger.voucher(api, &code, &bob, 1_000, None).await?;
    let order = ledger.order(api, &bob, &[(&sku, 1)], Some(&code)).await?;
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.status(&order), "CONFIRMED");
    assert_eq!(outcome.orders[&order]["discount_cents"], 1_000);
    assert_eq!(api.balance(&bob).await?, 2_000);
    assert_eq!(api.voucher_status(&code).await?, "REDEEMED");
    Ok(())
}

#[tokio::test]
async fn each_voucher_rejection_cancels_the_order_and_charges_nothing() -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let sku = new_sku("BOOK");
    ledger.sku(api, &sku, 1_000, 20).await?;
    let carol = ledger.customer(api, 100_000).await?;
    let dave = ledger.customer(api, 100_000).await?;
    let expired = new_sku("OLD");
    ledger
        .voucher(api, &expired, &carol, 100, Some("2020-01-01T00:00:00Z"))
        .await?;
    let daves = new_sku("DAVES");
    ledger.voucher(api, &daves, &dave, 100, None).await?;
    let used = new_sku("ONCE");
    ledger.voucher(api, &used, &carol, 100, None).await?;
    let first_use = ledger.order(api, &carol, &[(&sku, 1)], Some(&used)).await?;
    assert_invariants(api, &ledger, SETTLE).await?;

    let unknown = ledger
        .order(api, &carol, &[(&sku, 1)], Some(&new_sku("NOPE")))
        .await?;
    let late = ledger
        .order(api, &carol, &[(&sku, 1)], Some(&expired))
        .await?;
    let foreign = ledger
        .order(api, &carol, &[(&sku, 1)], Some(&daves))
        .await?;
    let again = ledger.order(api, &carol, &[(&sku, 1)], Some(&used)).await?;

    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.status(&first_use), "CONFIRMED");
    for order in [&unknown, &late, &foreign, &again] {
        assert_eq!(outcome.status(order), "CANCELLED", "{order}");
        assert_eq!(outcome.reason(order), "voucher_rejected", "{order}");
    }
    assert_eq!(api.balance(&carol).await?, 100_000 - 900);
    assert_eq!(api.voucher_status(&daves).await?, "AVAILABLE");
    Ok(())
}

#[tokio::test]
async fn insufficient_funds_cancels_with_payment_failed_and_releases_the_voucher(
) -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let sku = new_sku("TV");
    ledger.sku(api, &sku, 50_000, 2).await?;
    let erin = ledger.customer(api, 10_000).await?;
    let code = new_sku("TENOFF");
    ledger.voucher(api, &code, &erin, 1_000, None).await?;
    let order = ledger.order(api, &erin, &[(&sku, 1)], Some(&code)).await?;
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.status(&order), "CANCELLED");
    assert_eq!(outcome.reason(&order), "payment_failed");
    assert_eq!(api.balance(&erin).await?, 10_000);
    assert_eq!(api.voucher_status(&code).await?, "AVAILABLE");
    assert_eq!(api.stock(&sku).await?, (2, 0));
    Ok(())
}

#[tokio::test]
async fn second_line_out_of_stock_refunds_and_releases_everything() -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let plenty = new_sku("PEN");
    let short = new_sku("INK");
    ledger.sku(api, &plenty, 300, 10).await?;
    ledger.sku(api, &short, 700, 1).await?;
    let frank = ledger.customer(api, 20_000).await?;
    let code = new_sku("FRANK5");
    ledger.voucher(api, &code, &frank, 500, None).await?;
    let order = ledger
        .order(api, &frank, &[(&plenty, 2), (&short, 2)], Some(&code))
        .await?;
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.status(&order), "CANCELLED");
    assert_eq!(outcome.reason(&order), "stock_failed");
    // The charge went through and came back; the voucher and the first line were released.
    assert_eq!(api.balance(&frank).await?, 20_000);
    assert_eq!(api.voucher_status(&code).await?, "AVAILABLE");
    assert_eq!(api.stock(&plenty).await?, (10, 0));
    assert_eq!(api.stock(&short).await?, (1, 0));
    let timeline = api.timeline(&order).await?.ok()?;
    let names: Vec<&str> = timeline["events"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["event"].as_str()).collect())
        .unwrap_or_default();
    assert!(names.contains(&"payments.refunded"), "{names:?}");
    assert!(names.contains(&"vouchers.released"), "{names:?}");
    Ok(())
}

#[tokio::test]
async fn twenty_concurrent_orders_for_the_last_five_units_confirm_exactly_five(
) -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let sku = new_sku("LAST");
    ledger.sku(api, &sku, 1_000, 5).await?;
    let mut customers = Vec::new();
    for _ in 0..20 {
        customers.push(ledger.customer(api, 5_000).await?);
    }
    let items = [(sku.as_str(), 1)];
    let placed = futures::future::join_all(
        customers
            .iter()
            .map(|c| api.place_order(c, &items, None, None)),
    )
    .await;
    for (customer, answer) in customers.iter().zip(placed) {
        let answer = answer?;
        assert_eq!(answer.status, 202, "{}", answer.body);
        let id = answer.body["order_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        ledger.record_order(&id, customer, &[(sku.as_str(), 1)], None);
    }
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.confirmed, 5);
    assert_eq!(outcome.cancelled.get("stock_failed"), Some(&15));
    assert_eq!(api.stock(&sku).await?, (0, 5));
    Ok(())
}

#[tokio::test]
async fn same_idempotency_key_returns_the_same_order_and_charges_once() -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let sku = new_sku("KEY");
    ledger.sku(api, &sku, 900, 5).await?;
    let gina = ledger.customer(api, 10_000).await?;
    let key = new_id();
    let first = api
        .place_order(&gina, &[(&sku, 1)], None, Some(&key))
        .await?;
    let second = api
        .place_order(&gina, &[(&sku, 1)], None, Some(&key))
        .await?;
    assert_eq!(first.status, 202);
    assert_eq!(second.status, 202);
    let id = first.body["order_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(second.body["order_id"].as_str(), Some(id.as_str()));
    // The same key with another body is a client bug, not a new order.
    let other = api
        .place_order(&gina, &[(&sku, 2)], None, Some(&key))
        .await?;
    assert_eq!(other.status, 422, "{}", other.body);
    ledger.record_order(&id, &gina, &[(&sku, 1)], None);
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.status(&id), "CONFIRMED");
    assert_eq!(api.balance(&gina).await?, 9_100);
    Ok(())
}
