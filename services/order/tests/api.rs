//! The HTTP contract of the order service, against a real PostgreSQL and nats-server.

mod common;

use common::{Answer, App, WAIT};
use jetsaga_contracts::OrderId;
use jetsaga_testkit::wait_for;
use saga_kit::envelope::keyed_event_id;
use serde_json::{json, Value};

#[tokio::test]
async fn order_is_accepted_priced_and_announced() -> anyhow::Result<()> {
    let app = App::start().await?;

    // Given two products, one set twice (the second price wins).
    let Answer { status, body } = app
        .put(
            "/products/SKU-1",
            &json!({"name": "Green tea", "price_cents": 200}).to_string(),
        )
        .await?;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"sku": "SKU-1", "name": "Green tea", "price_cents": 200})
    );
    app.put_product("SKU-1", 250).await?;
    app.put_product("SKU-2", 99).await?;

    // When a customer orders them.
    let customer = uuid::Uuid::new_v4();
    let Answer {
        status,
        body: answer,
    } = app
        .post_order(
            &json!({
                "customer_id": customer,
                "items": [{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 1}],
                "voucher_code": "WELCOME10",
            }),
            None,
        )
        .await?;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "PENDING");
    let id: OrderId = answer["order_id"].as_str().unwrap().parse()?;

    // Then it is pending, priced at the current prices, with no discount known yet.
    let order = app.order(id).await?;
    assert_eq!(order["order_id"], id.to_string());
    assert_eq!(order["customer_id"], customer.to_string());
    assert_eq!(order["status"], "PENDING");
    assert_eq!(order["total_cents"], 599);
    assert_eq!(order["discount_cents"], 0);
    assert!(order.get("cancel_reason").is_none(), "{order}");
    assert_eq!(
        order["items"],
        json!([
            {"sku": "SKU-1", "quantity": 2, "unit_price_cents": 250},
            {"sku": "SKU-2", "quantity": 1, "unit_price_cents": 99},
        ])
    );

    // And announced: the prices and OrderCreated, with the id derived from the order id.
    let outbox = app.outbox().await?;
    let types: Vec<&str> = outbox.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "jetsaga.orders.product_priced.v1",
            "jetsaga.orders.product_priced.v1",
            "jetsaga.orders.product_priced.v1",
            "jetsaga.orders.created.v1",
        ]
    );
    let (_, event_id, created) = &outbox[3];
    assert_eq!(
        *event_id,
        *keyed_event_id("order-created", &id.to_string()).as_uuid()
    );
    assert_eq!(created["total"], 599);
    assert_eq!(created["voucher_code"], "WELCOME10");
    assert_eq!(created["customer_id"], customer.to_string());
    assert_eq!(created["lines"][0]["unit_price"], 250);

    // And the relay publishes it, so the timeline shows it.
    let events = wait_for("the timeline to show OrderCreated", WAIT, || async {
        let Answer { status, body } = app.get(&format!("/orders/{id}/timeline")).await.ok()?;
        (status == 200 && body["events"].as_array()?.len() == 1).then_some(body)
    })
    .await?;
    assert_eq!(events["order_id"], id.to_string());
    let e = &events["events"][0];
    assert_eq!(e["service"], "order");
    assert_eq!(e["event"], "orders.created");
    assert_eq!(e["ce_type"], "jetsaga.orders.created.v1");
    assert_eq!(e["stream"], "ORDERS");
    assert_eq!(e["event_id"], event_id.to_string());
    assert_eq!(e["payload"]["total"], 599);
    for field in ["causation_id", "time", "stream_seq"] {
        assert!(e.get(field).is_some(), "{field} missing in {e}");
    }

    // And the accepted order is counted.
    assert_eq!(app.metric("jetsaga_orders_accepted_total").await?, 1);
    app.stop().await
}

#[tokio::test]
async fn same_idempotency_key_returns_the_same_order_and_stores_one() -> anyhow::Result<()> {
    let app = App::start().await?;
    app.put_product("A", 100).await?;
    app.put_product("B", 10).await?;
    let customer = uuid::Uuid::new_v4();
    let body = json!({"customer_id": customer, "items": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 2}]});

    let Answer {
        status: s1,
        body: first,
    } = app.post_order(&body, Some("key-1")).await?;
    let Answer {
        status: s2,
        body: second,
    } = app.post_order(&body, Some("key-1")).await?;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(first["order_id"], second["order_id"]);
    assert_eq!(second["status"], "PENDING");

    // The same request with its lines in another order is the same request.
    let reordered = json!({"customer_id": customer, "items": [{"sku": "B", "quantity": 2}, {"sku": "A", "quantity": 1}]});
    let Answer {
        status: s3,
        body: third,
    } = app.post_order(&reordered, Some("key-1")).await?;
    assert_eq!(s3, 202);
    assert_eq!(third["order_id"], first["order_id"]);

    // The same key with another request is refused.
    let other = json!({"customer_id": customer, "items": [{"sku": "A", "quantity": 5}]});
    let Answer {
        status: s4,
        body: refused,
    } = app.post_order(&other, Some("key-1")).await?;
    assert_eq!(s4, 422, "{refused}");
    assert_eq!(refused["error"], "idempotency_key_reused");

    // Racing requests with one new key all answer the one order that was stored.
    let racers = (0..8).map(|_| app.post_order(&body, Some("key-2")));
    let answers = futures::future::join_all(racers).await;
    let mut ids = std::collections::HashSet::new();
    for answer in answers {
        let Answer { status, body } = answer?;
        assert_eq!(status, 202, "{body}");
        ids.insert(body["order_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(!ids.contains(first["order_id"].as_str().unwrap()));

    // Without a key, every request is a new order.
    app.place_order(&body).await?;

    assert_eq!(app.count("orders").await?, 3);
    let created = app.emitted_of("jetsaga.orders.created.v1").await?.len();
    assert_eq!(created, 3);
    app.stop().await
}

struct Case {
    name: &'static str,
    method: reqwest::Method,
    path: String,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: String,
    status: u16,
    error: &'static str,
}

fn case(
    name: &'static str,
    method: reqwest::Method,
    path: &str,
    body: impl Into<String>,
    status: u16,
    error: &'static str,
) -> Case {
    Case {
        name,
        method,
        path: path.to_owned(),
        content_type: "application/json",
        headers: vec![],
        body: body.into(),
        status,
        error,
    }
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_stored() -> anyhow::Result<()> {
    use reqwest::Method;
    let app = App::start().await?;
    app.put_product("A", 100).await?;
    app.put_product("HUGE", i64::MAX / 2).await?;
    let customer = uuid::Uuid::new_v4().to_string();
    let order = |items: Value| json!({"customer_id": customer, "items": items}).to_string();
    let bad = 400;
    let vf = "validation_failed";

    let mut cases = vec![
        case("unknown field", Method::POST, "/orders",
            json!({"customer_id": customer, "items": [{"sku": "A", "quantity": 1}], "note": "x"}).to_string(),
            bad, "invalid_body"),
        case("unknown field in an item", Method::POST, "/orders",
            order(json!([{"sku": "A", "quantity": 1, "price": 1}])), bad, "invalid_body"),
        case("zero quantity", Method::POST, "/orders", order(json!([{"sku": "A", "quantity": 0}])), bad, vf),
        case("negative quantity", Method::POST, "/orders", order(json!([{"sku": "A", "quantity": -3}])), bad, vf),
        case("quantity above the maximum", Method::POST, "/orders",
            order(json!([{"sku": "A", "quantity": 1_000_001}])), bad, vf),
        case("quantity beyond 64 bits", Method::POST, "/orders",
            format!(r#"{{"customer_id":"{customer}","items":[{{"sku":"A","quantity":99999999999999999999999}}]}}"#), bad, "invalid_body"),
        case("fractional quantity", Method::POST, "/orders",
            order(json!([{"sku": "A", "quantity": 1.5}])), bad, "invalid_body"),
        case("empty items", Method::POST, "/orders", order(json!([])), bad, vf),
        case("too many lines", Method::POST, "/orders",
            order(Value::Array((0..101).map(|i| json!({"sku": format!("S{i}"), "quantity": 1})).collect())),
            bad, vf),
        case("duplicate sku", Method::POST, "/orders",
            order(json!([{"sku": "A", "quantity": 1}, {"sku": "A", "quantity": 2}])), bad, vf),
        case("invalid sku", Method::POST, "/orders", order(json!([{"sku": "a.b", "quantity": 1}])), bad, vf),
        case("invalid customer id", Method::POST, "/orders",
            json!({"customer_id": "bob", "items": [{"sku": "A", "quantity": 1}]}).to_string(), bad, vf),
        case("invalid voucher code", Method::POST, "/orders",
            json!({"customer_id": customer, "items": [{"sku": "A", "quantity": 1}], "voucher_code": "TEN*"}).to_string(),
            bad, vf),
        case("missing items", Method::POST, "/orders", json!({"customer_id": customer}).to_string(), bad, "invalid_body"),
        case("unknown sku", Method::POST, "/orders",
            order(json!([{"sku": "A", "quantity": 1}, {"sku": "NOPE", "quantity": 1}])),
            422, "unknown_sku"),
        case("total overflows", Method::POST, "/orders", order(json!([{"sku": "HUGE", "quantity": 3}])), bad, vf),
        case("malformed JSON", Method::POST, "/orders", "{\"customer_id\": ", bad, "invalid_json"),
        case("oversized body", Method::POST, "/orders",
            json!({"customer_id": customer, "items": [{"sku": "A", "quantity": 1}], "pad": "x".repeat(70 * 1024)}).to_string(),
            413, "payload_too_large"),
        case("malformed order id", Method::GET, "/orders/not-a-uuid", "", bad, "invalid_id"),
        case("malformed order id in the timeline", Method::GET, "/orders/123/timeline", "", bad, "invalid_id"),
        case("unknown order", Method::GET, &format!("/orders/{}", uuid::Uuid::new_v4()), "",
            404, "order_not_found"),
        case("unknown order's timeline", Method::GET, &format!("/orders/{}/timeline", uuid::Uuid::new_v4()), "",
            404, "order_not_found"),
        case("product with an invalid sku", Method::PUT, "/products/a*b",
            json!({"name": "x", "price_cents": 1}).to_string(), bad, vf),
        case("product with a zero price", Method::PUT, "/products/B",
            json!({"name": "x", "price_cents": 0}).to_string(), bad, vf),
        case("product with a negative price", Method::PUT, "/products/B",
            json!({"name": "x", "price_cents": -1}).to_string(), bad, vf),
        case("product with an empty name", Method::PUT, "/products/B",
            json!({"name": "", "price_cents": 1}).to_string(), bad, vf),
        case("product with a long name", Method::PUT, "/products/B",
            json!({"name": "n".repeat(201), "price_cents": 1}).to_string(), bad, vf),
        case("product with an unknown field", Method::PUT, "/products/B",
            json!({"name": "x", "price_cents": 1, "stock": 3}).to_string(), bad, "invalid_body"),
    ];
    let mut wrong_type = case(
        "wrong content type",
        Method::POST,
        "/orders",
        order(json!([{"sku": "A", "quantity": 1}])),
        415,
        "unsupported_media_type",
    );
    wrong_type.content_type = "text/plain";
    cases.push(wrong_type);
    let mut long_key = case(
        "oversized idempotency key",
        Method::POST,
        "/orders",
        order(json!([{"sku": "A", "quantity": 1}])),
        bad,
        vf,
    );
    long_key.headers.push(("Idempotency-Key", "k".repeat(201)));
    cases.push(long_key);

    for c in cases {
        let headers: Vec<(&str, &str)> = c.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let Answer { status, body } = app
            .request_with_headers(
                c.method.clone(),
                &c.path,
                &headers,
                Some(c.content_type),
                Some(c.body.clone().into_bytes()),
            )
            .await?;
        assert_eq!(status, c.status, "{}: {body}", c.name);
        assert!(
            body.is_object(),
            "{}: error body is not a JSON object: {body}",
            c.name
        );
        assert_eq!(body["error"], c.error, "{}: {body}", c.name);
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}: {body}",
            c.name
        );
    }

    // Nothing was stored: no order, no line, no new product, no event beyond the two prices.
    assert_eq!(app.count("orders").await?, 0);
    assert_eq!(app.count("order_lines").await?, 0);
    assert_eq!(app.count("products").await?, 2);
    assert_eq!(app.count("kit_outbox").await?, 2);
    let status = app.get("/orders").await?.status;
    assert!((400..500).contains(&status), "{status}");
    app.stop().await
}
