//! The locked-down NATS of `nats/`: each service's user may publish only its own events, read only
//! through its own durable consumers and see only its own replies, and the saga still runs end to
//! end with every service under its own user.
//!
//! Every test starts a nats-server that enforces the repository's `nats/users.conf` unchanged (with
//! fresh passwords), and the admin provisions the streams first (as `jetsaga provision` does), as a
//! deployment does.

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt as _;
use jetsaga_scenarios::checker::assert_invariants;
use jetsaga_scenarios::ledger::new_sku;
use jetsaga_scenarios::system::{nats_config_dir, NatsSetup, NatsUsers};
use jetsaga_scenarios::{Ledger, Svc, System, SystemOptions};
use jetsaga_testkit::{find_nats_server, wait_until, NatsServer};
use saga_kit::provision;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a request that the server drops for lack of permission is given before it counts as
/// unanswered. The server answers a permitted request in milliseconds.
const REFUSED_AFTER: Duration = Duration::from_secs(2);
const SETTLE: Duration = Duration::from_secs(60);

/// A locked-down server with its streams provisioned by the admin.
async fn locked_down() -> anyhow::Result<(NatsUsers, NatsServer)> {
    jetsaga_testkit::init_tracing();
    let users = NatsUsers::create()?;
    let nats = users.start_server().await?;
    users.provision_streams(&nats).await?;
    Ok((users, nats))
}

/// The errors the server sent one connection (a permissions violation is reported only this way).
struct ServerErrors(mpsc::UnboundedReceiver<String>);

impl ServerErrors {
    /// Waits for an error containing `fragment`.
    async fn expect(&mut self, fragment: &str) -> anyhow::Result<String> {
        let wait = async {
            while let Some(error) = self.0.recv().await {
                if error.contains(fragment) {
                    return Some(error);
                }
            }
            None
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .ok()
            .flatten()
            .with_context(|| format!("the server reported no error containing {fragment:?}"))
    }

    /// Every error received so far.
    fn drain(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.0.try_recv().ok()).collect()
    }
}

/// Connects as `user` the way the services do (its own inbox prefix), collecting server errors.
async fn connect_as(
    users: &NatsUsers,
    nats: &NatsServer,
    user: &str,
) -> anyhow::Result<(async_nats::Client, jetstream::Context, ServerErrors)> {
    let url = users.url(nats, user)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let client = provision::connect_options(&url, &format!("permissions-test-{user}"))
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(error) = event {
                    let _ = tx.send(error.to_string());
                }
            }
        })
        .connect(&url)
        .await
        .with_context(|| format!("connecting to NATS as {user}"))?;
    client
        .flush()
        .await
        .with_context(|| format!("NATS did not accept {user}"))?;
    let js = jetstream::ContextBuilder::new()
        .timeout(REFUSED_AFTER)
        .build(client.clone());
    Ok((client, js, ServerErrors(rx)))
}

fn event_payload(order_id: &uuid::Uuid) -> String {
    serde_json::json!({ "order_id": order_id, "amount_cents": 100 }).to_string()
}

#[tokio::test]
async fn stock_may_not_forge_a_payment_event() -> anyhow::Result<()> {
    // Given the streams, and the stock service's user
    let (users, nats) = locked_down().await?;
    let (_stock, stock_js, mut stock_errors) = connect_as(&users, &nats, "stock").await?;
    let order = uuid::Uuid::new_v4();
    let forged = format!("payments.succeeded.{order}");

    // When stock publishes a PaymentSucceeded through JetStream
    let ack = stock_js
        .publish(forged.clone(), event_payload(&order).into())
        .await
        .context("sending the publish")?
        .await;

    // Then no PubAck comes, the server reports the violation, and PAYMENTS does not hold it
    assert!(
        ack.is_err(),
        "stock's publish on {forged} was acked: {ack:?}"
    );
    let error = stock_errors
        .expect(&format!(
            "Permissions Violation for Publish to \"{forged}\""
        ))
        .await?;
    println!("the server told stock: {error}");
    let (_admin, admin_js, _) = connect_as(&users, &nats, "admin").await?;
    let mut payments = admin_js.get_stream("PAYMENTS").await?;
    assert_eq!(
        payments.info().await?.state.messages,
        0,
        "PAYMENTS holds a message after stock's forgery of order {order}"
    );
    assert!(
        payments
            .get_last_raw_message_by_subject(&forged)
            .await
            .is_err(),
        "PAYMENTS holds {forged}"
    );

    // And the payment service's user may publish that very event (the refusal is about who)
    let (_payment, payment_js, _) = connect_as(&users, &nats, "payment").await?;
    let ack = payment_js
        .publish(forged.clone(), event_payload(&order).into())
        .await?
        .await
        .with_context(|| format!("payment publishing {forged}"))?;
    assert_eq!(ack.stream, "PAYMENTS");
    // Its own publishes on its own subjects work for stock, too.
    let own = format!("stock.reserved.{order}");
    let ack = stock_js
        .publish(own.clone(), event_payload(&order).into())
        .await?
        .await
        .with_context(|| format!("stock publishing {own}"))?;
    assert_eq!(ack.stream, "STOCK");
    Ok(())
}

#[tokio::test]
async fn a_service_may_not_pull_from_another_services_consumer() -> anyhow::Result<()> {
    // Given payment's durable consumer on POINTS, created by payment, with one event waiting
    let (users, nats) = locked_down().await?;
    let (_payment, payment_js, mut payment_errors) = connect_as(&users, &nats, "payment").await?;
    let consumer = payment_js
        .get_stream("POINTS")
        .await?
        .create_consumer(pull::Config {
            durable_name: Some("payment-on-points".to_owned()),
            filter_subject: "points.reserved.*".to_owned(),
            ..Default::default()
        })
        .await
        .context("payment creating its own durable payment-on-points")?;
    let (_points, points_js, _) = connect_as(&users, &nats, "points").await?;
    let order = uuid::Uuid::new_v4();
    points_js
        .publish(
            format!("points.reserved.{order}"),
            event_payload(&order).into(),
        )
        .await?
        .await
        .context("points publishing points.reserved")?;

    // When stock asks that consumer for the next message, and for its info
    let (stock, stock_js, mut stock_errors) = connect_as(&users, &nats, "stock").await?;
    let next = "$JS.API.CONSUMER.MSG.NEXT.POINTS.payment-on-points";
    let pulled = tokio::time::timeout(
        REFUSED_AFTER,
        stock.request(next, r#"{"batch":1,"expires":1000000000}"#.into()),
    )
    .await;
    let info = stock_js
        .get_stream_no_info("POINTS")
        .await?
        .consumer_info("payment-on-points")
        .await;

    // Then both are refused, and the event is still waiting for payment, never delivered
    assert!(
        !matches!(pulled, Ok(Ok(_))),
        "stock pulled from payment-on-points: {pulled:?}"
    );
    stock_errors
        .expect(&format!("Permissions Violation for Publish to \"{next}\""))
        .await?;
    assert!(
        info.is_err(),
        "stock read payment-on-points' info: {info:?}"
    );
    stock_errors
        .expect("Permissions Violation for Publish to \"$JS.API.CONSUMER.INFO.POINTS.payment-on-points\"")
        .await?;
    let (_admin, admin_js, _) = connect_as(&users, &nats, "admin").await?;
    let state = admin_js
        .get_consumer_from_stream::<pull::Config, _, _>("payment-on-points", "POINTS")
        .await?
        .info()
        .await?
        .clone();
    assert_eq!(
        (state.num_pending, state.delivered.stream_sequence),
        (1, 0),
        "payment-on-points handed out its event"
    );

    // And stock may not make a consumer of its own on POINTS to read it either
    let spy = stock_js
        .get_stream_no_info("POINTS")
        .await?
        .create_consumer(pull::Config {
            durable_name: Some("stock-on-points".to_owned()),
            ..Default::default()
        })
        .await;
    assert!(spy.is_err(), "stock created a consumer on POINTS");
    stock_errors
        .expect(
            "Permissions Violation for Publish to \"$JS.API.CONSUMER.CREATE.POINTS.stock-on-points",
        )
        .await?;

    // While payment pulls and acks it from its own consumer, with no complaint from the server
    let mut messages = consumer.fetch().max_messages(1).messages().await?;
    let msg = tokio::time::timeout(Duration::from_secs(5), messages.next())
        .await
        .context("payment's pull timed out")?
        .context("payment's pull ended without a message")?
        .map_err(|e| anyhow::anyhow!("payment's pull failed: {e}"))?;
    assert_eq!(msg.subject.as_str(), format!("points.reserved.{order}"));
    msg.double_ack()
        .await
        .map_err(|e| anyhow::anyhow!("payment acking its message: {e}"))?;
    assert_eq!(payment_errors.drain(), Vec::<String>::new());
    Ok(())
}

#[tokio::test]
async fn a_service_sees_only_its_own_replies() -> anyhow::Result<()> {
    // Given stock's user
    let (users, nats) = locked_down().await?;
    let (stock, stock_js, mut stock_errors) = connect_as(&users, &nats, "stock").await?;

    // When it subscribes to every inbox, or to payment's, where payment's pulled events arrive
    for subject in ["_INBOX.>", "_INBOX.payment.>", "payments.>"] {
        let _sub = stock
            .subscribe(subject)
            .await
            .with_context(|| format!("sending SUB {subject}"))?;
        // Then the server refuses the subscription
        stock_errors
            .expect(&format!(
                "Permissions Violation for Subscription to \"{subject}\""
            ))
            .await?;
    }

    // While its own replies reach it under its own prefix (here: a stream's info)
    let info = stock_js.get_stream("STOCK").await;
    assert!(info.is_ok(), "stock could not read STOCK's info: {info:?}");
    assert_eq!(
        provision::inbox_prefix(&users.url(&nats, "stock")?),
        "_INBOX.stock"
    );
    Ok(())
}

#[tokio::test]
async fn a_service_user_keeps_the_streams_the_admin_provisioned() -> anyhow::Result<()> {
    // Given the streams as the admin provisioned them, and stock's user
    let (users, nats) = locked_down().await?;
    let (_stock, stock_js, mut stock_errors) = connect_as(&users, &nats, "stock").await?;

    // When stock checks them with the services' own settings, nothing needs to change
    provision::ensure_streams(
        &stock_js,
        &jetsaga_contracts::Producer::ALL,
        &provision::StreamSettings::default(),
    )
    .await?;
    assert_eq!(stock_errors.drain(), Vec::<String>::new());

    // When it asks for a week's retention (an operator's choice), the stream is kept as
    // provisioned, without even an attempt to change it
    let week = provision::StreamSettings {
        max_age: Duration::from_secs(7 * 24 * 3600),
        ..provision::StreamSettings::default()
    };
    let mut wanted = provision::stream_config("PAYMENTS", vec!["payments.>".to_owned()], &week);
    provision::ensure_stream(&stock_js, &wanted).await?;
    assert_eq!(stock_errors.drain(), Vec::<String>::new());

    // When it asks for what breaks a rule of the design (discard old), it is refused and told why
    wanted.discard = stream::DiscardPolicy::Old;
    let refused = provision::ensure_stream(&stock_js, &wanted).await;
    let message = refused
        .err()
        .context("a stream that drops old events was accepted")?
        .to_string();
    assert!(
        message.contains("PAYMENTS")
            && message.contains("discard")
            && message.contains("jetsaga provision"),
        "{message}"
    );

    // And PAYMENTS is as the admin made it
    let (_admin, admin_js, _) = connect_as(&users, &nats, "admin").await?;
    let found = admin_js
        .get_stream("PAYMENTS")
        .await?
        .cached_info()
        .config
        .clone();
    let expected = provision::stream_configs(
        &jetsaga_contracts::Producer::ALL,
        &provision::StreamSettings::default(),
    )
    .into_iter()
    .find(|c| c.name == "PAYMENTS")
    .context("the PAYMENTS stream")?;
    assert_eq!(provision::differences(&found, &expected), Vec::new());
    Ok(())
}

#[tokio::test]
async fn a_client_without_a_user_or_with_a_wrong_password_is_refused() -> anyhow::Result<()> {
    let (users, nats) = locked_down().await?;
    let attempt = |options: async_nats::ConnectOptions| {
        let url = nats.url();
        async move {
            options
                .connection_timeout(REFUSED_AFTER)
                .connect(url)
                .await
                .map(|_| ())
        }
    };
    let anonymous = attempt(async_nats::ConnectOptions::new()).await;
    assert!(anonymous.is_err(), "an anonymous client was admitted");
    let wrong = attempt(async_nats::ConnectOptions::with_user_and_password(
        "stock".to_owned(),
        "not-its-password".to_owned(),
    ))
    .await;
    assert!(wrong.is_err(), "stock with a wrong password was admitted");
    // The URL's credentials are what the services use, and they are let in.
    users.connect(&nats, "stock").await?;
    Ok(())
}

#[tokio::test]
async fn the_saga_runs_under_per_service_users() -> anyhow::Result<()> {
    // Given the five services, each connected as its own NATS user
    let sys = System::start(SystemOptions {
        nats: NatsSetup::LockedDown,
        ..SystemOptions::default()
    })
    .await?;
    if sys.is_external() {
        println!("not run against an external deployment: it starts its own locked-down NATS");
        return Ok(());
    }
    for svc in Svc::ALL {
        let url = sys.service_nats_url(svc)?;
        assert!(
            url.starts_with(&format!("nats://{}:", svc.name())),
            "{} connects as {}",
            svc.name(),
            provision::redact(&url)
        );
    }
    let api = &sys.api;
    let mut ledger = Ledger::default();
    let sku = new_sku("LOCK");
    ledger.sku(api, &sku, 1_500, 4).await?;
    let ines = ledger.customer(api, 10_000).await?;
    let code = new_sku("INES");
    ledger.voucher(api, &code, &ines, 500, None).await?;

    // When she orders with her voucher
    let order = ledger.order(api, &ines, &[(&sku, 2)], Some(&code)).await?;

    // Then the saga confirms it, every invariant holds, and the timeline reads all four streams
    let outcome = assert_invariants(api, &ledger, SETTLE).await?;
    assert_eq!(outcome.status(&order), "CONFIRMED");
    assert_eq!(api.balance(&ines).await?, 7_500);
    assert_eq!(api.voucher_status(&code).await?, "REDEEMED");
    let timeline = api.timeline(&order).await?.ok()?;
    let events: Vec<&str> = timeline["events"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["event"].as_str()).collect())
        .unwrap_or_default();
    for event in [
        "orders.created",
        "vouchers.reserved",
        "points.reserved",
        "payments.succeeded",
        "stock.reserved",
        "orders.confirmed",
        "points.earned",
    ] {
        assert!(events.contains(&event), "{event} missing from {events:?}");
    }

    // When junk arrives on PAYMENTS, stock dead-letters it and its relay copies it to the DLQ
    // stream under stock's own dead-letter subject
    let admin_url = sys.nats_url();
    let admin = provision::connect_options(admin_url, "permissions-test-admin")
        .connect(admin_url)
        .await
        .context("connecting to NATS as admin")?;
    let admin_js = jetstream::new(admin);
    let junk = format!("payments.succeeded.{}", uuid::Uuid::new_v4());
    admin_js
        .publish(junk.clone(), "not an event".into())
        .await?
        .await
        .with_context(|| format!("admin publishing junk on {junk}"))?;
    let dlq = admin_js.get_stream("DLQ").await?;
    wait_until(
        "stock's dead-letter copy of the junk on the DLQ stream",
        SETTLE,
        || async {
            dlq.get_last_raw_message_by_subject("dlq.stock.stock-on-payments")
                .await
                .is_ok_and(|m| String::from_utf8_lossy(&m.payload).contains(&junk))
        },
    )
    .await?;

    // And no service was refused anything on the way (the server reports refusals as errors),
    // nor found a stream other than it expects
    for svc in Svc::ALL {
        let log = sys.log(svc);
        let refused: Vec<&str> = log
            .lines()
            .filter(|l| {
                l.contains("Violation")
                    || l.contains("NATS server reported")
                    || l.contains("keeping it as provisioned")
            })
            .collect();
        assert!(
            refused.is_empty(),
            "{} was refused by NATS:\n{}",
            svc.name(),
            refused.join("\n")
        );
    }
    Ok(())
}

#[test]
fn the_shipped_nats_configs_are_valid() -> anyhow::Result<()> {
    let server = find_nats_server()?;
    let dir = nats_config_dir();
    for config in [
        "nats-server.conf",
        "cluster/node-1.conf",
        "cluster/node-2.conf",
        "cluster/node-3.conf",
    ] {
        let path = dir.join(config);
        let out = std::process::Command::new(&server)
            .arg("-t")
            .arg("-c")
            .arg(&path)
            .output()
            .with_context(|| format!("running {} -t", server.display()))?;
        assert!(
            out.status.success(),
            "nats/{config} is refused by nats-server: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
