//! `POST /vouchers` and `GET /vouchers/{code}` against a real database and nats-server.

mod common;

use common::{TestService, ISSUED};
use jetsaga_contracts::CustomerId;
use jetsaga_servicetest::WAIT;
use serde_json::json;

#[tokio::test]
async fn issued_voucher_is_available_and_announced() -> anyhow::Result<()> {
    let svc = TestService::start().await?;
    let customer = CustomerId::new_random();

    let body = json!({
        "code": "WELCOME10",
        "customer_id": customer,
        "discount_cents": 1000,
        "expires_at": "2099-12-31T23:59:59Z",
    });
    let a = svc.post("/vouchers", &body.to_string()).await?;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body, json!({"code": "WELCOME10", "status": "AVAILABLE"}));

    let a = svc.get("/vouchers/WELCOME10").await?;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["code"], "WELCOME10");
    assert_eq!(a.body["status"], "AVAILABLE");
    assert_eq!(a.body["customer_id"], json!(customer));
    assert_eq!(a.body["discount_cents"], 1000);

    let issued = svc.emitted_of(ISSUED).await?;
    assert_eq!(
        issued,
        vec![json!({
            "code": "WELCOME10",
            "customer_id": customer,
            "discount": 1000,
            "expires_at": "2099-12-31T23:59:59Z",
            "actor": jetsaga_servicetest::OPERATOR,
        })]
    );

    // The relay publishes it to the VOUCHERS stream.
    jetsaga_testkit::wait_until("VoucherIssued to be published", WAIT, || async {
        sqlx::query_scalar::<_, bool>("SELECT bool_and(published_at IS NOT NULL) FROM kit_outbox")
            .fetch_one(svc.db.pool())
            .await
            .unwrap_or(false)
    })
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
    let a = svc.get("/vouchers/NOPE").await?;
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (404, Some("voucher_not_found"))
    );
    let a = svc.get("/vouchers/a.b").await?;
    assert_eq!(a.status, 400);
    // The old helper failed on a body that was not JSON; the shared one keeps it as a string.
    assert!(a.body["error"].is_string(), "{}", a.body);

    svc.stop().await
}

#[tokio::test]
async fn existing_code_is_refused_with_409() -> anyhow::Result<()> {
    let svc = TestService::start().await?;
    let customer = CustomerId::new_random();
    svc.issue_ok("ONCE", customer, 700, None).await?;

    let again = json!({
        "code": "ONCE",
        "customer_id": CustomerId::new_random(),
        "discount_cents": 9999,
    });
    let a = svc.post("/vouchers", &again.to_string()).await?;
    assert_eq!(a.status, 409, "{}", a.body);
    assert_eq!(a.body["error"], "voucher_exists");
    assert!(a.body["message"].as_str().unwrap_or("").contains("ONCE"));

    // The first voucher is untouched and announced once.
    let a = svc.get("/vouchers/ONCE").await?;
    assert_eq!(a.body["customer_id"], json!(customer));
    assert_eq!(a.body["discount_cents"], 700);
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
        let a = svc.post("/vouchers", &body).await?;
        assert_eq!(a.status, 400, "{what}: {}", a.body);
        assert!(a.body["error"].is_string(), "{what}: {}", a.body);
        assert!(a.body["message"].is_string(), "{what}: {}", a.body);
    }

    let vouchers = svc.count("vouchers").await?;
    let events = svc.count("kit_outbox").await?;
    assert_eq!((vouchers, events), (0, 0));

    svc.stop().await
}

/// The service serves its own OpenAPI document, the one `docs/api/voucher.json` holds, and what it
/// answers for a voucher matches the document's schema of that answer.
#[tokio::test]
async fn the_service_serves_its_openapi_document() -> anyhow::Result<()> {
    use utoipa::OpenApi as _;
    let svc = TestService::start().await?;
    let served = svc.get("/openapi.json").await?;
    assert_eq!(served.status, 200);
    assert_eq!(
        served.body,
        serde_json::to_value(voucher_service::api::ApiDoc::openapi())?
    );
    let view = &served.body["components"]["schemas"]["VoucherView"];
    let required: Vec<&str> = view["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .collect();
    svc.issue_ok("DOC", CustomerId::new_random(), 100, None)
        .await?;
    let answer = svc.get("/vouchers/DOC").await?;
    for field in required {
        assert!(
            answer.body.get(field).is_some(),
            "{field} missing in {}",
            answer.body
        );
    }
    svc.stop().await
}
