//! Operators sign their changes: the admin routes take an operator's token from `ADMIN_TOKENS`,
//! refuse everyone else with 401 before anything is stored, and record the operator's name as the
//! `actor` of the change's event, so the streams are the audit log. A service with no operators
//! configured does not start.

use jetsaga_contracts::{
    EventSet, OrderEvent, PaymentEvent, PointsEvent, Producer, StockEvent, VoucherEvent,
};
use jetsaga_scenarios::api::Answer;
use jetsaga_scenarios::ledger::{new_id, new_sku};
use jetsaga_scenarios::system::{workspace_binary, OPERATOR};
use jetsaga_scenarios::{Api, Svc, System, SystemOptions};
use reqwest::Method;
use std::time::Duration;

/// The five admin changes, each with a fresh key, through `api`.
async fn every_admin_change(api: &Api) -> anyhow::Result<Vec<(&'static str, Answer)>> {
    let (sku, customer, code) = (new_sku("OPS"), new_id(), format!("OPS{}", &new_id()[..8]));
    Ok(vec![
        ("PUT /products", api.put_product(&sku, "Mug", 1250).await?),
        ("POST /credit", api.credit(&customer, 500).await?),
        ("POST /adjust", api.adjust(&sku, 5).await?),
        (
            "POST /vouchers",
            api.issue_voucher(&code, &customer, 100, None).await?,
        ),
        ("POST /award", api.award_points(&customer, 50).await?),
    ])
}

/// The actors of a producer's admin events, read from its stream once the relay has published them.
async fn actors<E: EventSet>(
    sys: &System,
    producer: Producer,
    actor: impl Fn(&E) -> Option<String>,
) -> anyhow::Result<Vec<String>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let found: Vec<String> = stream_events(sys, producer)
            .await
            .unwrap_or_default()
            .iter()
            .filter_map(|(t, p)| E::from_payload(t, p).ok())
            .filter_map(|e| actor(&e))
            .collect();
        if !found.is_empty() {
            return Ok(found);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no admin event of {} in {} after 20 s",
            producer.service(),
            producer.stream()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every event in a producer's stream, as (ce-type, payload).
async fn stream_events(sys: &System, producer: Producer) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let js = async_nats::jetstream::new(async_nats::connect(sys.nats_url()).await?);
    let mut stream = js.get_stream(producer.stream()).await?;
    let last = stream.info().await?.state.last_sequence;
    let mut events = Vec::new();
    for seq in 1..=last {
        let Ok(message) = stream.get_raw_message(seq).await else {
            continue;
        };
        let ce_type = message
            .headers
            .get("ce-type")
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        events.push((ce_type, message.payload.to_vec()));
    }
    Ok(events)
}

async fn outbox_rows(sys: &System, svc: Svc) -> anyhow::Result<i64> {
    let pool = sqlx::PgPool::connect(&sys.database_url(svc)?).await?;
    let rows = sqlx::query_scalar("SELECT count(*) FROM kit_outbox")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    Ok(rows)
}

#[tokio::test]
async fn an_admin_change_without_an_operators_token_is_refused_with_401_and_stores_nothing(
) -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;

    // Given a system whose services admit one operator, when anyone without the token tries each
    // admin change, and someone with a wrong token, and someone with a token in the wrong scheme,
    let anyone = sys.api.without_operator();
    let wrong = sys
        .api
        .without_operator()
        .with_operator_token("not-the-operators-token-0000");
    let mut refused = every_admin_change(&anyone).await?;
    refused.extend(every_admin_change(&wrong).await?);
    let basic = anyone
        .send_raw(
            Svc::Payment,
            Method::POST,
            &format!("/accounts/{}/credit", new_id()),
            Some("application/json"),
            br#"{"amount_cents": 100}"#.to_vec(),
        )
        .await?;
    refused.push(("POST /credit with no header at all", basic));

    // then each is refused with 401 and the error body,
    for (what, answer) in &refused {
        assert_eq!(answer.status, 401, "{what}: {}", answer.body);
        assert_eq!(answer.body["error"], "unauthorized", "{what}");
        assert!(answer.body["message"].is_string(), "{what}");
    }
    // and nothing was stored: no outbox row in any service,
    for svc in [
        Svc::Order,
        Svc::Payment,
        Svc::Stock,
        Svc::Voucher,
        Svc::Points,
    ] {
        assert_eq!(outbox_rows(&sys, svc).await?, 0, "{svc:?} stored an event");
    }
    // while the customer's route and the read routes need no token.
    let order = anyone
        .place_order(&new_id(), &[("NO-SUCH-SKU", 1)], None, None)
        .await?;
    assert_eq!(order.status, 422, "POST /orders: {}", order.body);
    let stock = anyone.get(Svc::Stock, "/stock/NO-SUCH-SKU").await?;
    assert_eq!(stock.status, 404, "GET /stock: {}", stock.body);
    Ok(())
}

#[tokio::test]
async fn each_admin_event_names_the_operator_whose_token_made_it() -> anyhow::Result<()> {
    let sys = System::start(SystemOptions::default()).await?;

    // Given an operator's token, when the operator makes each admin change,
    for (what, answer) in every_admin_change(&sys.api).await? {
        assert!(
            (200..300).contains(&answer.status),
            "{what}: {}",
            answer.body
        );
    }

    // then each change's event, in its owner's stream, carries the operator's name.
    let order = actors::<OrderEvent>(&sys, Producer::ORDER, |e| match e {
        OrderEvent::ProductPriced(p) => Some(p.actor.to_string()),
        _ => None,
    })
    .await?;
    let payment = actors::<PaymentEvent>(&sys, Producer::PAYMENT, |e| match e {
        PaymentEvent::AccountCredited(c) => Some(c.actor.to_string()),
        _ => None,
    })
    .await?;
    let stock = actors::<StockEvent>(&sys, Producer::STOCK, |e| match e {
        StockEvent::StockAdjusted(a) => Some(a.actor.to_string()),
        _ => None,
    })
    .await?;
    let voucher = actors::<VoucherEvent>(&sys, Producer::VOUCHER, |e| match e {
        VoucherEvent::VoucherIssued(i) => Some(i.actor.to_string()),
        _ => None,
    })
    .await?;
    let points = actors::<PointsEvent>(&sys, Producer::POINTS, |e| match e {
        PointsEvent::PointsAwarded(a) => Some(a.actor.to_string()),
        _ => None,
    })
    .await?;
    for (what, found) in [
        ("PointsAwarded", points),
        ("ProductPriced", order),
        ("AccountCredited", payment),
        ("StockAdjusted", stock),
        ("VoucherIssued", voucher),
    ] {
        assert_eq!(found, [OPERATOR], "{what}");
    }
    Ok(())
}

#[tokio::test]
async fn a_service_with_no_operators_configured_refuses_to_start_and_says_how_to_fix_it(
) -> anyhow::Result<()> {
    // Given a service binary with neither ADMIN_TOKENS nor --insecure-admin, or with a token too
    // short to be a credential,
    let binary = workspace_binary("payment-service")?;
    let secret = "short-secret";
    for (case, tokens) in [
        ("no ADMIN_TOKENS", None),
        ("a short token", Some(format!("alice={secret}"))),
    ] {
        let mut command = tokio::process::Command::new(&binary);
        command
            .env_remove("ADMIN_TOKENS")
            .env_remove("INSECURE_ADMIN")
            .env("HTTP_ADDR", "127.0.0.1:0")
            .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
            .env("NATS_URL", "nats://127.0.0.1:1")
            .kill_on_drop(true);
        if let Some(tokens) = &tokens {
            command.env("ADMIN_TOKENS", tokens);
        }
        // when it starts,
        let out = tokio::time::timeout(Duration::from_secs(30), command.output()).await??;
        let stderr = String::from_utf8_lossy(&out.stderr);
        // then it exits with an error before connecting anywhere, naming the setting and not
        // printing the token.
        assert!(!out.status.success(), "{case}: it started");
        assert!(stderr.contains("ADMIN_TOKENS"), "{case}: {stderr}");
        assert!(
            !stderr.contains(secret),
            "{case}: the token was printed: {stderr}"
        );
        assert!(
            !stderr.contains("PostgreSQL not reachable"),
            "{case}: it tried the database first: {stderr}"
        );
    }
    Ok(())
}
