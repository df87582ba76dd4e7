//! A scrape of `/metrics` while the database does not answer: it ends (each read has a timeout),
//! says the database is down, and leaves the gauges it could not read as they were.

use jetsaga_runtime::scrape::{refresh, Scrape};
use jetsaga_runtime::{Defaults, Runtime, Settings};
use jetsaga_testkit::NatsServer;
use saga_kit::Metrics;
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::time::Duration;

const DEFAULTS: Defaults = Defaults {
    http_addr: "127.0.0.1:0",
    database: "jetsaga_scrape_test",
};

#[tokio::test]
async fn a_scrape_while_the_database_does_not_answer_says_so_and_keeps_the_other_gauges(
) -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let client = nats.connect().await?;
    // A "database" that takes the connection and never answers: the scrape's own timeout ends the
    // read (the pool would wait 30 s).
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!(
        "postgres://postgres@{}/jetsaga_scrape_test",
        silent.local_addr()?
    );
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(30))
        .connect_lazy(&url)?;
    let rt = Runtime {
        service: "order",
        pool,
        js: async_nats::jetstream::new(client.clone()),
        client,
        metrics: Arc::new(Metrics::new()),
        settings: Settings::with_defaults(DEFAULTS),
        scrape: Arc::new(Scrape::default()),
    };
    let kit = rt.metrics.kit();
    kit.database_up.set(1);
    kit.outbox_backlog.set(5);
    let hook_ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ran = hook_ran.clone();
    rt.scrape.add_hook(move |_rt| {
        let ran = ran.clone();
        async move { ran.store(true, std::sync::atomic::Ordering::SeqCst) }
    });

    refresh(&rt).await;

    assert_eq!(kit.database_up.get(), 0);
    assert_eq!(kit.nats_up.get(), 1);
    assert_eq!(
        kit.outbox_backlog.get(),
        5,
        "a failed read leaves the gauge as it was"
    );
    assert!(hook_ran.load(std::sync::atomic::Ordering::SeqCst));
    Ok(())
}
