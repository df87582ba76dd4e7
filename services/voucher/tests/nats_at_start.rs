//! A service started while its NATS is down (a node that rebooted with its services, compose
//! starting everything at once) waits for NATS instead of exiting.

use jetsaga_runtime::operators::AdminAccess;
use jetsaga_runtime::Settings;
use jetsaga_testkit::{wait_until, NatsServer, TestDb};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_service_started_fifteen_seconds_before_nats_waits_for_it() -> anyhow::Result<()> {
    jetsaga_testkit::init_tracing();
    let mut nats = NatsServer::start().await?;
    nats.stop().await?;
    let db = TestDb::create("voucher").await?;
    let mut settings = Settings::with_defaults(voucher_service::DEFAULTS);
    settings.database_url = db.url();
    settings.nats_url = nats.url();
    settings.db_max_connections = 8;
    settings.admin = AdminAccess::Insecure;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let health = format!("http://{}/health", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let service = tokio::spawn(voucher_service::run(settings, listener, shutdown.clone()));

    // Longer than one connect waits for the server to answer (10 s).
    tokio::time::sleep(Duration::from_secs(15)).await;
    if service.is_finished() {
        anyhow::bail!("the service gave up on NATS: {:?}", service.await?);
    }
    nats.restart().await?;
    wait_until(
        "the service ready once NATS is",
        Duration::from_secs(60),
        || async {
            reqwest::get(&health)
                .await
                .is_ok_and(|r| r.status().is_success())
        },
    )
    .await?;

    shutdown.cancel();
    service.await??;
    Ok(())
}
