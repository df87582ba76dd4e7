//! `POST /stock/{sku}/adjust` and `GET /stock/{sku}` against the real service.

mod common;

use common::StockService;
use jetsaga_contracts::events::stock::StockAdjusted;
use jetsaga_contracts::{Actor, Sku, StockEvent};
use jetsaga_servicetest::{Answer, WAIT};
use jetsaga_testkit::wait_until;
use serde_json::json;

#[tokio::test]
async fn adjustment_adds_stock_and_is_announced() -> anyhow::Result<()> {
    let svc = StockService::start().await?;

    // Given a SKU nobody has heard of,
    let Answer { status, body } = svc.get("/stock/SKU-1").await?;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "sku_not_found");

    // when an operator adds 5 units and then removes 2,
    let Answer { status, body } = svc.adjust("SKU-1", 5).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"sku": "SKU-1", "available": 5, "reserved": 0}));
    let Answer { status, body } = svc.adjust("SKU-1", -2).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"sku": "SKU-1", "available": 3, "reserved": 0}));

    // then the stock shows 3 available,
    let Answer { status, body } = svc.get("/stock/SKU-1").await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"sku": "SKU-1", "available": 3, "reserved": 0}));

    // the ledger has both adjustments, each was announced as StockAdjusted, in order,
    let ledger: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
        "SELECT adjustment_id, delta FROM adjustments ORDER BY created_at, delta DESC",
    )
    .fetch_all(svc.db.pool())
    .await?;
    assert_eq!(ledger.len(), 2);
    let emitted = svc.emitted_events().await?;
    let sku = Sku::parse("SKU-1")?;
    // each naming the operator whose token made it,
    let operator = Actor::parse(jetsaga_servicetest::OPERATOR)?;
    assert_eq!(
        emitted,
        vec![
            StockEvent::StockAdjusted(StockAdjusted {
                adjustment_id: ledger[0].0,
                sku: sku.clone(),
                delta: 5,
                actor: operator.clone(),
            }),
            StockEvent::StockAdjusted(StockAdjusted {
                adjustment_id: ledger[1].0,
                sku,
                delta: -2,
                actor: operator,
            }),
        ]
    );

    // and the relay published them to the STOCK stream.
    wait_until("both adjustments to be published", WAIT, || async {
        let mut stream = match svc.js.get_stream("STOCK").await {
            Ok(s) => s,
            Err(_) => return false,
        };
        matches!(stream.info().await, Ok(info) if info.state.messages == 2)
    })
    .await?;

    svc.stop().await
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_stored() -> anyhow::Result<()> {
    let svc = StockService::start().await?;
    svc.add_stock("SKU-1", 2).await?;
    let before = (
        svc.count("stock").await?,
        svc.count("adjustments").await?,
        svc.count("kit_outbox").await?,
    );

    let cases: [(&str, &str, u16, &str); 10] = [
        (
            "/stock/SKU-1/adjust",
            r#"{"delta": 1, "extra": 2}"#,
            400,
            "invalid_body",
        ),
        (
            "/stock/SKU-1/adjust",
            r#"{"delta": 0}"#,
            400,
            "validation_failed",
        ),
        (
            "/stock/SKU-1/adjust",
            r#"{"delta": 1000000001}"#,
            400,
            "validation_failed",
        ),
        (
            "/stock/SKU-1/adjust",
            r#"{"delta": -1000000001}"#,
            400,
            "validation_failed",
        ),
        (
            "/stock/SKU-1/adjust",
            r#"{"delta": 99999999999999999999}"#,
            400,
            "invalid_body",
        ),
        (
            "/stock/SKU-1/adjust",
            r#"{"delta": "1"}"#,
            400,
            "invalid_body",
        ),
        ("/stock/SKU-1/adjust", r#"{"delta": 1"#, 400, "invalid_json"),
        ("/stock/SKU.1/adjust", r#"{"delta": 1}"#, 400, "invalid_sku"),
        (
            "/stock/SKU-1/adjust",
            r#"{"delta": -3}"#,
            409,
            "insufficient_stock",
        ),
        (
            "/stock/NEW-SKU/adjust",
            r#"{"delta": -1}"#,
            409,
            "insufficient_stock",
        ),
    ];
    for (path, body, want_status, want_code) in cases {
        let Answer {
            status,
            body: answer,
        } = svc.post(path, body).await?;
        assert_eq!(status, want_status, "POST {path} {body} → {answer}");
        assert_eq!(answer["error"], want_code, "POST {path} {body} → {answer}");
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "POST {path} {body} → {answer}"
        );
    }
    let Answer {
        status,
        body: answer,
    } = svc.get("/stock/SKU.1").await?;
    assert_eq!((status, &answer["error"]), (400, &json!("invalid_sku")));

    let after = (
        svc.count("stock").await?,
        svc.count("adjustments").await?,
        svc.count("kit_outbox").await?,
    );
    assert_eq!(before, after, "a refused request stored something");
    assert_eq!(svc.stock("SKU-1").await?, (2, 0));
    let Answer { status, .. } = svc.get("/stock/NEW-SKU").await?;
    assert_eq!(status, 404);

    svc.stop().await
}
