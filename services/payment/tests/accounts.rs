//! The account API: credits, balances, and input that is refused before anything is stored.

mod common;

use common::{PaymentService, CREDITED};
use jetsaga_contracts::CustomerId;

#[tokio::test]
async fn credit_raises_the_balance_and_is_announced() -> anyhow::Result<()> {
    let svc = PaymentService::start().await?;
    let customer = CustomerId::new_random();

    // When two credits arrive
    let first = svc
        .post(
            &format!("/accounts/{customer}/credit"),
            r#"{"amount_cents":500}"#,
        )
        .await?;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(
        first.body,
        serde_json::json!({"customer_id": customer.to_string(), "balance_cents": 500})
    );
    assert_eq!(svc.credit(customer, 250).await?, 750);

    // Then the balance is their sum, each is in the ledger and each is announced.
    let got = svc.get(&format!("/accounts/{customer}")).await?;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.body,
        serde_json::json!({"customer_id": customer.to_string(), "balance_cents": 750})
    );
    let ledger: Vec<i64> = sqlx::query_scalar(
        "SELECT amount_cents FROM credits WHERE customer_id = $1 ORDER BY created_at, amount_cents DESC",
    )
    .bind(customer.as_uuid())
    .fetch_all(svc.db.pool())
    .await?;
    assert_eq!(ledger, vec![500, 250]);
    let credited = svc.emitted_of(CREDITED).await?;
    assert_eq!(credited.len(), 2);
    let mut amounts: Vec<i64> = credited
        .iter()
        .map(|e| {
            assert_eq!(e["customer_id"], customer.to_string());
            e["amount"].as_i64().unwrap_or_default()
        })
        .collect();
    amounts.sort_unstable();
    assert_eq!(amounts, vec![250, 500]);
    // The announcement carries the ledger's credit ids.
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT credit_id FROM credits")
        .fetch_all(svc.db.pool())
        .await?;
    for e in &credited {
        let id: uuid::Uuid = e["credit_id"].as_str().unwrap_or_default().parse()?;
        assert!(ids.contains(&id), "{id} not in the ledger");
    }
    // The relay publishes both to the PAYMENTS stream.
    svc.wait_published(2).await?;
    svc.stop().await
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_stored() -> anyhow::Result<()> {
    let svc = PaymentService::start().await?;
    let customer = CustomerId::new_random();
    let path = format!("/accounts/{customer}/credit");

    let cases: &[(&str, &str, &str)] = &[
        (
            path.as_str(),
            r#"{"amount_cents":5,"currency":"EUR"}"#,
            "invalid_body",
        ),
        (path.as_str(), r#"{"amount_cents":0}"#, "validation_failed"),
        (path.as_str(), r#"{"amount_cents":-5}"#, "validation_failed"),
        (
            path.as_str(),
            r#"{"amount_cents":9223372036854775808}"#,
            "invalid_body",
        ),
        (path.as_str(), r#"{"amount_cents":1.5}"#, "invalid_body"),
        (path.as_str(), r#"{"amount_cents":"5"}"#, "invalid_body"),
        (path.as_str(), r#"{}"#, "invalid_body"),
        (path.as_str(), r#"{"amount_cents":"#, "invalid_json"),
        (
            "/accounts/not-a-uuid/credit",
            r#"{"amount_cents":5}"#,
            "invalid_id",
        ),
    ];
    for (path, body, code) in cases {
        let a = svc.post(path, body).await?;
        assert_eq!(a.status, 400, "{body} on {path}: {a:?}");
        assert_eq!(a.body["error"], *code, "{body} on {path}: {a:?}");
        assert!(a.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let a = svc.get("/accounts/not-a-uuid").await?;
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (400, Some("invalid_id"))
    );

    // A credit that would overflow the balance is refused and leaves the balance as it was.
    let rich = CustomerId::new_random();
    assert_eq!(svc.credit(rich, i64::MAX).await?, i64::MAX);
    let a = svc
        .post(&format!("/accounts/{rich}/credit"), r#"{"amount_cents":1}"#)
        .await?;
    assert_eq!(a.status, 409, "{a:?}");
    assert_eq!(a.body["error"], "balance_overflow");
    assert_eq!(svc.balance(rich).await?, i64::MAX);

    // Nothing but the one good credit was stored or announced.
    assert_eq!(svc.balance(customer).await?, 0);
    let (accounts, credits) = (svc.count("accounts").await?, svc.count("credits").await?);
    assert_eq!((accounts, credits), (1, 1));
    assert_eq!(svc.emitted().await?.len(), 1);
    svc.stop().await
}

#[tokio::test]
async fn unknown_account_has_zero_balance() -> anyhow::Result<()> {
    let svc = PaymentService::start().await?;
    let customer = CustomerId::new_random();
    let a = svc.get(&format!("/accounts/{customer}")).await?;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        a.body,
        serde_json::json!({"customer_id": customer.to_string(), "balance_cents": 0})
    );
    // Reading does not open an account.
    assert_eq!(svc.count("accounts").await?, 0);
    svc.stop().await
}
