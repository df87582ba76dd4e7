//! `POST /vouchers` and `GET /vouchers/{code}` against a real database and nats-server.

mod common;

use common::{TestService, ISSUED};
use jetsaga_contracts::CustomerId;
use serde_json::json;

#[tokio::test]
async fn issued_voucher_is_available_and_announced() -> anyhow::Result<()> {
    let svc = TestService::start().await?;
    let customer = CustomerId::new_random();

    let (status, body) = svc
        .issue(json!({
            "code": "WELCOME10",
            "customer_id": customer,
            "discount_cents": 1000,
            "expires_at": "2099-12-31T23:59:59Z",
        }))
        .await?;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body, json!({"code": "WELCOME10", "status": "AVAILABLE"}));

    let (status, body) = svc.get("WELCOME10").await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["code"], "WELCOME10");
    assert_eq!(body["status"], "AVAILABLE");
    assert_eq!(body["customer_id"], json!(customer));
    assert_eq!(body["discount_cents"], 1000);

    let issued = svc.emitted_of(ISSUED).await?;
    assert_eq!(
        issued,
        vec![json!({
            "code": "WELCOME10",
            "customer_id": customer,
            "discount": 1000,
            "expires_at": "2099-12-31T23:59:59Z",
        })]
    );

    // The relay publishes it to the VOUCHERS stream.
    jetsaga_testkit::wait_until(
        "VoucherIssued to be published",
        common::PATIENCE,
        || async {
            sqlx::query_scalar::<_, bool>(
                "SELECT bool_and(published_at IS NOT NULL) FROM kit_outbox",
            )
            .fetch_one(svc.db.pool())
            .await
            .unwrap_or(false)
        },
    )
    .await?;
    let stream = svc.js.get_stream("VOUCHERS").await?;
    let msg = stream
        .get_last_raw_message_by_subject("vouchers.issued.WELCOME10")
        .await?;
    assert_eq!(
        msg.headers.get("ce-type").map(|v| v.as_str().to_owned()),
        Some(ISSUED.to_owned())
    );

    // An expired voucher reads as EXPIRED; unknown and invalid codes are told apart.
    svc.issue_ok("OLD", customer, 500, Some("2001-01-01T00:00:00Z"))
        .await?;
    assert_eq!(svc.status("OLD").await?, "EXPIRED");
    let (status, body) = svc.get("NOPE").await?;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("voucher_not_found"))
    );
    let (status, _) = svc.get("a.b").await?;
    assert_eq!(status, 400);

    svc.stop().await
}

#[tokio::test]
async fn existing_code_is_refused_with_409() -> anyhow::Result<()> {
    let svc = TestService::start().await?;
    let customer = CustomerId::new_random();
    svc.issue_ok("ONCE", customer, 700, None).await?;

    let (status, body) = svc
        .issue(json!({
            "code": "ONCE",
            "customer_id": CustomerId::new_random(),
            "discount_cents": 9999,
        }))
        .await?;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "voucher_exists");
    assert!(body["message"].as_str().unwrap_or("").contains("ONCE"));

    // The first voucher is untouched and announced once.
    let (_, body) = svc.get("ONCE").await?;
    assert_eq!(body["customer_id"], json!(customer));
    assert_eq!(body["discount_cents"], 700);
    assert_eq!(svc.emitted_of(ISSUED).await?.len(), 1);

    svc.stop().await
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_stored() -> anyhow::Result<()> {
    let svc = TestService::start().await?;
    let customer = CustomerId::new_random().to_string();
    let cases = [
        ("unknown field", json!({"code": "A1", "customer_id": customer, "discount_cents": 100, "colour": "red"}).to_string()),
        ("zero discount", json!({"code": "A1", "customer_id": customer, "discount_cents": 0}).to_string()),
        ("negative discount", json!({"code": "A1", "customer_id": customer, "discount_cents": -100}).to_string()),
        ("overflowing discount", format!(r#"{{"code":"A1","customer_id":"{customer}","discount_cents":99999999999999999999}}"#)),
        ("code with a dot", json!({"code": "A.1", "customer_id": customer, "discount_cents": 100}).to_string()),
        ("empty code", json!({"code": "", "customer_id": customer, "discount_cents": 100}).to_string()),
        ("bad customer id", json!({"code": "A1", "customer_id": "not-a-uuid", "discount_cents": 100}).to_string()),
        ("bad expires_at", json!({"code": "A1", "customer_id": customer, "discount_cents": 100, "expires_at": "next tuesday"}).to_string()),
        ("missing discount", json!({"code": "A1", "customer_id": customer}).to_string()),
        ("malformed JSON", r#"{"code": "A1", "customer_id": "#.to_owned()),
    ];
    for (what, body) in cases {
        let (status, answer) = svc.issue_raw(body).await?;
        assert_eq!(status, 400, "{what}: {answer}");
        assert!(answer["error"].is_string(), "{what}: {answer}");
        assert!(answer["message"].is_string(), "{what}: {answer}");
    }

    let vouchers: i64 = sqlx::query_scalar("SELECT count(*) FROM vouchers")
        .fetch_one(svc.db.pool())
        .await?;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM kit_outbox")
        .fetch_one(svc.db.pool())
        .await?;
    assert_eq!((vouchers, events), (0, 0));

    svc.stop().await
}
