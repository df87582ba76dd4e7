//! Bad input over the public API: refused with a 4xx and `{"error","message"}`, and nothing stored.

use jetsaga_scenarios::api::Answer;
use jetsaga_scenarios::ledger::{new_id, new_sku};
use jetsaga_scenarios::{Ledger, Svc, System, SystemOptions};
use reqwest::Method;

fn assert_refused(what: &str, answer: &Answer) {
    assert!(
        (400..500).contains(&answer.status),
        "{what}: expected a 4xx, got {} {}",
        answer.status,
        answer.body
    );
    assert!(
        answer.body["error"].is_string(),
        "{what}: no error code in {}",
        answer.body
    );
    assert!(
        answer.body["message"].is_string(),
        "{what}: no message in {}",
        answer.body
    );
}

#[tokio::test]
async fn every_bad_input_is_refused_with_a_4xx_and_stores_nothing() -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let sku = new_sku("OK");
    ledger.sku(api, &sku, 1_000, 10).await?;
    let customer = ledger.customer(api, 10_000).await?;
    let json = Some("application/json");
    let order =
        |body: String| api.send_raw(Svc::Order, Method::POST, "/orders", json, body.into_bytes());
    let line = |q: &str| {
        format!(r#"{{"customer_id":"{customer}","items":[{{"sku":"{sku}","quantity":{q}}}]}}"#)
    };

    let cases: Vec<(&str, Answer)> = vec![
        ("zero quantity", order(line("0")).await?),
        ("negative quantity", order(line("-1")).await?),
        ("overflowing quantity", order(line("99999999999999999999")).await?),
        ("fractional quantity", order(line("1.5")).await?),
        ("empty order", order(format!(r#"{{"customer_id":"{customer}","items":[]}}"#)).await?),
        ("unknown sku", order(format!(r#"{{"customer_id":"{customer}","items":[{{"sku":"{}","quantity":1}}]}}"#, new_sku("NONE"))).await?),
        ("unknown field", order(format!(r#"{{"customer_id":"{customer}","items":[{{"sku":"{sku}","quantity":1}}],"gift":true}}"#)).await?),
        ("malformed customer id", order(format!(r#"{{"customer_id":"bob","items":[{{"sku":"{sku}","quantity":1}}]}}"#)).await?),
        ("malformed JSON", order("{\"customer_id\":".to_owned()).await?),
        ("body over the limit", order(format!(r#"{{"customer_id":"{customer}","items":[],"pad":"{}"}}"#, "x".repeat(100_000))).await?),
        ("wrong content type", api.send_raw(Svc::Order, Method::POST, "/orders", Some("text/plain"), line("1").into_bytes()).await?),
        ("malformed order id", api.get(Svc::Order, "/orders/not-a-uuid").await?),
        ("zero price", api.send_raw(Svc::Order, Method::PUT, &format!("/products/{}", new_sku("P")), json, br#"{"name":"x","price_cents":0}"#.to_vec()).await?),
        ("negative price", api.send_raw(Svc::Order, Method::PUT, &format!("/products/{}", new_sku("P")), json, br#"{"name":"x","price_cents":-5}"#.to_vec()).await?),
        ("sku with a dot", api.send_raw(Svc::Order, Method::PUT, "/products/a.b", json, br#"{"name":"x","price_cents":5}"#.to_vec()).await?),
        ("zero credit", api.send_raw(Svc::Payment, Method::POST, &format!("/accounts/{customer}/credit"), json, br#"{"amount_cents":0}"#.to_vec()).await?),
        ("negative credit", api.send_raw(Svc::Payment, Method::POST, &format!("/accounts/{customer}/credit"), json, br#"{"amount_cents":-100}"#.to_vec()).await?),
        ("overflowing credit", api.send_raw(Svc::Payment, Method::POST, &format!("/accounts/{customer}/credit"), json, br#"{"amount_cents":9223372036854775807}"#.to_vec()).await?),
        ("malformed account id", api.send_raw(Svc::Payment, Method::POST, "/accounts/42/credit", json, br#"{"amount_cents":100}"#.to_vec()).await?),
        ("zero stock delta", api.send_raw(Svc::Stock, Method::POST, &format!("/stock/{sku}/adjust"), json, br#"{"delta":0}"#.to_vec()).await?),
        ("stock below zero", api.send_raw(Svc::Stock, Method::POST, &format!("/stock/{sku}/adjust"), json, br#"{"delta":-11}"#.to_vec()).await?),
        ("stock unknown field", api.send_raw(Svc::Stock, Method::POST, &format!("/stock/{sku}/adjust"), json, br#"{"delta":1,"why":"x"}"#.to_vec()).await?),
        ("zero discount", api.send_raw(Svc::Voucher, Method::POST, "/vouchers", json, format!(r#"{{"code":"{}","customer_id":"{customer}","discount_cents":0}}"#, new_sku("V")).into_bytes()).await?),
        ("voucher code with a dot", api.send_raw(Svc::Voucher, Method::POST, "/vouchers", json, format!(r#"{{"code":"a.b","customer_id":"{customer}","discount_cents":10}}"#).into_bytes()).await?),
        ("bad expiry", api.send_raw(Svc::Voucher, Method::POST, "/vouchers", json, format!(r#"{{"code":"{}","customer_id":"{customer}","discount_cents":10,"expires_at":"tomorrow"}}"#, new_sku("V")).into_bytes()).await?),
    ];
    for (what, answer) in &cases {
        assert_refused(what, answer);
    }
    // Nothing was stored: balances, stock and vouchers are as the ledger left them.
    assert_eq!(api.balance(&customer).await?, 10_000);
    assert_eq!(api.stock(&sku).await?, (10, 0));
    assert_eq!(api.get(Svc::Stock, "/stock/a.b").await?.status, 400);
    let unknown = new_id();
    assert_eq!(api.balance(&unknown).await?, 0);
    Ok(())
}
