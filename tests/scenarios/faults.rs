//! The saga under faults: a participant paused past the deadline, a participant SIGKILLed mid-saga,
//! compensation delivered before the forward step, the same event again, and junk on the wire.

use jetsaga_contracts::events::order::{OrderCancelled, OrderCreated};
use jetsaga_contracts::events::payment::PaymentSucceeded;
use jetsaga_contracts::events::points::PointsReserved;
use jetsaga_contracts::events::voucher::VoucherReserved;
use jetsaga_contracts::{
    CancelReason, CustomerId, EventId, Money, OrderEvent, OrderId, OrderLine, PaymentEvent, Points,
    PointsEvent, Sku, VoucherCode, VoucherEvent,
};
use jetsaga_scenarios::checker::assert_invariants;
use jetsaga_scenarios::inject;
use jetsaga_scenarios::ledger::new_sku;
use jetsaga_scenarios::{Ledger, Svc, System, SystemOptions};
use jetsaga_testkit::wait_until;
use saga_kit::Envelope;
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(90);

fn skip_external(sys: &System, why: &str) -> bool {
    if sys.is_external() {
        println!("not run against an external deployment: {why}");
    }
    sys.is_external()
}

/// A system whose streams the scenario may publish onto, with a JetStream context on it; `None`
/// (said on stdout) against an external deployment.
async fn system_for_injection() -> anyhow::Result<Option<(System, async_nats::jetstream::Context)>>
{
    let sys = System::start(SystemOptions::default()).await?;
    if skip_external(&sys, "it publishes onto the streams") {
        return Ok(None);
    }
    let js = inject::jetstream(sys.nats_url()).await?;
    Ok(Some((sys, js)))
}

#[tokio::test]
async fn participant_paused_past_the_deadline_is_cancelled_then_compensated_on_return(
) -> anyhow::Result<()> {
    // Given a system whose orders must finish within 3 seconds
    let sys = System::start(SystemOptions {
        order_deadline: Duration::from_secs(3),
        ..SystemOptions::default()
    })
    .await?;
    if skip_external(&sys, "it pauses a process") {
        return Ok(());
    }
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let sku = new_sku("SLOW");
    ledger.sku(api, &sku, 2_000, 5).await?;
    let hana = ledger.customer(api, 10_000).await?;
    let code = new_sku("HANA");
    ledger.voucher(api, &code, &hana, 500, None).await?;
    // When payment is frozen while her order waits for it
    sys.pause(Svc::Payment)?;
    let order = ledger.order(api, &hana, &[(&sku, 1)], Some(&code)).await?;
    wait_until("the order to time out", Duration::from_secs(30), || async {
        api.order(&order)
            .await
            .map(|a| a.body["status"] == "CANCELLED")
            .unwrap_or(false)
    })
    .await?;
    assert_eq!(api.order(&order).await?.body["cancel_reason"], "timeout");
    // Then, once payment returns, whatever it does for the order is undone
    sys.resume(Svc::Payment)?;
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.reason(&order), "timeout");
    assert_eq!(api.balance(&hana).await?, 10_000);
    assert_eq!(api.voucher_status(&code).await?, "AVAILABLE");
    assert_eq!(api.stock(&sku).await?, (5, 0));
    Ok(())
}

#[tokio::test]
async fn participant_killed_mid_saga_restarts_and_every_saga_completes_once() -> anyhow::Result<()>
{
    let mut sys = System::start(SystemOptions::default()).await?;
    if skip_external(&sys, "it kills a process") {
        return Ok(());
    }
    let api = sys.api.clone();
    let mut ledger = Ledger::default();
    let sku = new_sku("CRASH");
    ledger.sku(&api, &sku, 1_000, 100).await?;
    let mut customers = Vec::new();
    for _ in 0..12 {
        customers.push(ledger.customer(&api, 5_000).await?);
    }
    for (round, customer) in customers.iter().enumerate() {
        ledger.order(&api, customer, &[(&sku, 2)], None).await?;
        if round == 5 {
            // SIGKILL in the middle of the burst, and back after a moment.
            sys.kill(Svc::Payment)?;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    sys.restart(Svc::Payment).await?;
    sys.kill(Svc::Stock)?;
    sys.restart(Svc::Stock).await?;
    let outcome = assert_invariants(&api, &ledger, SETTLE).await?;
    assert_eq!(outcome.confirmed, 12, "{outcome:?}");
    assert_eq!(api.stock(&sku).await?, (76, 24));
    Ok(())
}

async fn handled(sys: &System, svc: Svc, consumer: &str) -> f64 {
    let labels = format!("consumer=\"{consumer}\"");
    let applied = sys
        .api
        .metric(svc, "jetsaga_events_handled_total", &labels)
        .await
        .unwrap_or(0.0);
    let duplicate = sys
        .api
        .metric(svc, "jetsaga_events_duplicate_total", &labels)
        .await
        .unwrap_or(0.0);
    applied + duplicate
}

/// Runs `publish`, then waits until every one of `consumers` has finished one more message.
async fn each_handles_one_more<F, Fut>(
    sys: &System,
    consumers: &[(Svc, &str)],
    what: &str,
    publish: F,
) -> anyhow::Result<()>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut before = Vec::new();
    for (svc, consumer) in consumers {
        before.push(handled(sys, *svc, consumer).await);
    }
    publish().await?;
    wait_until(what, Duration::from_secs(20), || async {
        for ((svc, consumer), b) in consumers.iter().zip(&before) {
            if handled(sys, *svc, consumer).await <= *b {
                return false;
            }
        }
        true
    })
    .await
}

#[tokio::test]
async fn cancellation_delivered_before_the_forward_steps_leaves_nothing_behind(
) -> anyhow::Result<()> {
    let Some((sys, js)) = system_for_injection().await? else {
        return Ok(());
    };
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let sku = new_sku("RACE");
    ledger.sku(api, &sku, 1_000, 3).await?;
    let ivan = ledger.customer(api, 10_000).await?;
    let code = new_sku("IVAN");
    ledger.voucher(api, &code, &ivan, 200, None).await?;

    let order_id = OrderId::new_random();
    let customer_id: CustomerId = ivan.parse()?;
    let lines = vec![OrderLine {
        sku: Sku::parse(sku.clone())?,
        quantity: 1,
        unit_price: Money::from_cents(1_000)?,
    }];
    let total = Money::from_cents(1_000)?;
    let voucher_code = Some(VoucherCode::parse(code.clone())?);
    // Given the cancellation reaches every participant first
    let cancelled = OrderEvent::OrderCancelled(OrderCancelled {
        order_id,
        reason: CancelReason::Timeout,
    });
    each_handles_one_more(
        &sys,
        &[
            (Svc::Voucher, "voucher-on-orders"),
            (Svc::Points, "points-on-orders"),
            (Svc::Payment, "payment-on-orders"),
            (Svc::Stock, "stock-on-orders"),
        ],
        "all four participants to record the cancellation",
        || async {
            let env = Envelope::root(EventId::new_random(), &cancelled);
            inject::publish_envelope(&js, &env, "c-1").await?;
            Ok(())
        },
    )
    .await?;
    // When the forward steps arrive late
    let created = OrderEvent::OrderCreated(OrderCreated {
        order_id,
        customer_id,
        lines: lines.clone(),
        total,
        voucher_code: voucher_code.clone(),
        points: None,
        deadline: time::OffsetDateTime::now_utc() + time::Duration::minutes(1),
        idempotency_key: None,
    });
    let reserved = VoucherEvent::VoucherReserved(VoucherReserved {
        order_id,
        customer_id,
        voucher_code: voucher_code.clone(),
        lines: lines.clone(),
        total,
        discount: Money::from_cents(200)?,
        points: None,
    });
    let points = PointsEvent::PointsReserved(PointsReserved {
        order_id,
        customer_id,
        voucher_code,
        lines: lines.clone(),
        total,
        discount: Money::from_cents(200)?,
        points: Points::ZERO,
    });
    let paid = PaymentEvent::PaymentSucceeded(PaymentSucceeded {
        order_id,
        payment_id: uuid::Uuid::new_v4(),
        customer_id,
        amount: Money::from_cents(800)?,
        lines,
    });
    each_handles_one_more(
        &sys,
        &[
            (Svc::Voucher, "voucher-on-orders"),
            (Svc::Points, "points-on-vouchers"),
            (Svc::Payment, "payment-on-points"),
            (Svc::Stock, "stock-on-payments"),
        ],
        "all four late forward steps to be handled",
        || async {
            let late = [
                (Envelope::root(EventId::new_random(), &created), "f-1"),
                (Envelope::root(EventId::new_random(), &reserved), "f-2"),
                (Envelope::root(EventId::new_random(), &points), "f-3"),
                (Envelope::root(EventId::new_random(), &paid), "f-4"),
            ];
            for (env, msg_id) in &late {
                inject::publish_envelope(&js, env, msg_id).await?;
            }
            Ok(())
        },
    )
    .await?;
    // Then nothing was charged, reserved or held, and no participant emitted anything for it
    assert_eq!(api.balance(&ivan).await?, 10_000);
    assert_eq!(api.stock(&sku).await?, (3, 0));
    assert_eq!(api.voucher_status(&code).await?, "AVAILABLE");
    let saga = saga_kit::trace::read_saga(
        &js,
        &jetsaga_contracts::Producer::ALL,
        &order_id.to_string(),
    )
    .await?;
    let names: Vec<&str> = saga.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names.len(), 5, "participants reacted: {names:?}");
    assert_invariants(api, &ledger, SETTLE).await?;
    Ok(())
}

#[tokio::test]
async fn the_same_events_published_again_under_new_msg_ids_have_no_second_effect(
) -> anyhow::Result<()> {
    let Some((sys, js)) = system_for_injection().await? else {
        return Ok(());
    };
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let sku = new_sku("TWICE");
    ledger.sku(api, &sku, 1_500, 4).await?;
    let jon = ledger.customer(api, 9_000).await?;
    let code = new_sku("JON");
    ledger.voucher(api, &code, &jon, 500, None).await?;
    let order = ledger.order(api, &jon, &[(&sku, 2)], Some(&code)).await?;
    assert_invariants(api, &ledger, SETTLE).await?;
    // Every event of the saga is published once more, as a replay long after the dedupe window.
    let timeline = api.timeline(&order).await?.ok()?;
    let events = timeline["events"].as_array().cloned().unwrap_or_default();
    assert!(events.len() >= 5);
    let before = handled(&sys, Svc::Stock, "stock-on-payments").await;
    for e in &events {
        let stream = e["stream"].as_str().unwrap_or_default();
        let seq = e["stream_seq"].as_u64().unwrap_or_default();
        inject::republish(&js, stream, seq).await?;
    }
    wait_until(
        "stock to see the repeated PaymentSucceeded",
        Duration::from_secs(20),
        || async {
            sys.api
                .metric(
                    Svc::Stock,
                    "jetsaga_events_duplicate_total",
                    "consumer=\"stock-on-payments\"",
                )
                .await
                .unwrap_or(0.0)
                >= 1.0
        },
    )
    .await?;
    assert!(handled(&sys, Svc::Stock, "stock-on-payments").await > before);
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.status(&order), "CONFIRMED");
    assert_eq!(api.balance(&jon).await?, 9_000 - 2_500);
    assert_eq!(api.stock(&sku).await?, (2, 2));
    Ok(())
}

#[tokio::test]
async fn junk_on_an_input_subject_is_dead_lettered_and_sagas_keep_completing() -> anyhow::Result<()>
{
    let Some((sys, js)) = system_for_injection().await? else {
        return Ok(());
    };
    let api = &sys.api;
    let target = OrderId::new_random();
    inject::publish_junk(
        &js,
        &format!("payments.succeeded.{target}"),
        b"\x00\xffnot an event".to_vec(),
    )
    .await?;
    inject::publish_junk(
        &js,
        &format!("orders.created.{target}"),
        b"{\"order_id\": 42}".to_vec(),
    )
    .await?;
    let mut ledger = Ledger::default();
    let sku = new_sku("AFTER");
    ledger.sku(api, &sku, 700, 5).await?;
    let kim = ledger.customer(api, 5_000).await?;
    let order = ledger.order(api, &kim, &[(&sku, 1)], None).await?;
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.status(&order), "CONFIRMED");
    wait_until(
        "the junk to be dead-lettered",
        Duration::from_secs(20),
        || async {
            let stock = sys
                .api
                .metric(Svc::Stock, "jetsaga_dead_letters_total", "")
                .await
                .unwrap_or(0.0);
            let voucher = sys
                .api
                .metric(Svc::Voucher, "jetsaga_dead_letters_total", "")
                .await
                .unwrap_or(0.0);
            stock >= 1.0 && voucher >= 1.0
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn sagas_started_while_the_network_to_nats_is_cut_complete_once_it_heals(
) -> anyhow::Result<()> {
    use jetsaga_scenarios::netcut::Cut;
    // Given a system whose services reach NATS through a link the test can cut
    let sys = System::start(SystemOptions {
        netcut: true,
        ..SystemOptions::default()
    })
    .await?;
    if skip_external(&sys, "it cuts the network") {
        return Ok(());
    }
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let sku = new_sku("CUT");
    ledger.sku(api, &sku, 1_000, 50).await?;
    let ida = ledger.customer(api, 100_000).await?;
    // When the link drops everything, then refuses connections, while orders keep coming
    sys.cut_nats(Cut::Drop)?;
    for _ in 0..3 {
        ledger.order(api, &ida, &[(&sku, 1)], None).await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    sys.cut_nats(Cut::Reject)?;
    for _ in 0..3 {
        ledger.order(api, &ida, &[(&sku, 1)], None).await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Then, once it heals, every order completes and every invariant holds
    sys.heal_nats();
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.cancelled_total(), 0);
    Ok(())
}

/// Tests run side by side, each picking free ports for its services; a port let go can be taken by
/// another test's process before the service binds it. The harness must then not take that
/// process's `/health` for the service's: it moves the service to a new port.
#[tokio::test]
async fn a_service_restarted_while_another_process_holds_its_port_moves_to_a_free_one(
) -> anyhow::Result<()> {
    restarted_onto_a_taken_port_moves(Svc::Stock, SystemOptions::default()).await
}

/// The order service's `main` returns an `anyhow` error, which with `RUST_BACKTRACE` set (as CI
/// sets it) prints dozens of frames after the bind failure. The harness read only the log's last
/// lines, found no "in use" there, and failed the test instead of moving the service.
#[tokio::test]
async fn a_service_that_prints_a_backtrace_when_its_port_is_taken_moves_to_a_free_one(
) -> anyhow::Result<()> {
    let options = SystemOptions {
        service_env: vec![("RUST_BACKTRACE".into(), "1".into())],
        ..SystemOptions::default()
    };
    restarted_onto_a_taken_port_moves(Svc::Order, options).await
}

/// Kills `svc`, has another process take its port and answer `/health` as `svc` would, restarts
/// `svc`, and checks that it moved to another port and answers there itself.
async fn restarted_onto_a_taken_port_moves(svc: Svc, options: SystemOptions) -> anyhow::Result<()> {
    let mut sys = System::start(options).await?;
    if skip_external(&sys, "it restarts a process") {
        return Ok(());
    }
    let sku = new_sku("PORT");
    let mut ledger = Ledger::default();
    ledger.sku(&sys.api.clone(), &sku, 1_000, 7).await?;
    let squatted = sys.api.base(svc).to_owned();
    let port: u16 = squatted
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a service's base ends with its port");
    sys.kill(svc)?;
    // Another process takes the port and answers `/health` as a ready service would.
    let squatter = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let name = svc.name();
    let impostor = axum::Router::new().route(
        "/health",
        axum::routing::get(move || async move {
            axum::Json(serde_json::json!({"service": name, "status": "ready"}))
        }),
    );
    let serving = tokio::spawn(async move { axum::serve(squatter, impostor).await });

    sys.restart(svc).await?;

    assert_ne!(
        sys.api.base(svc),
        squatted,
        "the {name} service stayed on the taken port"
    );
    assert_eq!(
        sys.api.stock(&sku).await?,
        (7, 0),
        "the stock service answers"
    );
    let health = reqwest::get(format!("{}/health", sys.api.base(svc))).await?;
    assert_eq!(health.status(), 200, "the {name} service itself answers");
    serving.abort();
    Ok(())
}
