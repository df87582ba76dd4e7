//! The testkit's nats-server: it starts, is private to its test, and survives a crash with its
//! JetStream store.

use std::time::Duration;

use async_nats::jetstream;
use jetsaga_testkit::nats_binary::server_version;
use jetsaga_testkit::{find_nats_server, find_old_nats_server, wait_for, NatsServer};

#[tokio::test]
async fn server_accepts_connections_after_start() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;

    let client = async_nats::connect(server.url()).await?;
    client.publish("ping", "hello".into()).await?;
    client.flush().await?;

    assert!(server.pid().is_some());
    assert_eq!(server.url(), format!("nats://127.0.0.1:{}", server.port()));
    Ok(())
}

#[tokio::test]
async fn found_server_is_2_10_or_newer() -> anyhow::Result<()> {
    let version = server_version(&find_nats_server()?)?;
    assert!(version >= (2, 10, 0), "{version:?}");
    Ok(())
}

#[tokio::test]
async fn killed_server_comes_back_on_restart_with_its_streams() -> anyhow::Result<()> {
    let mut server = NatsServer::start().await?;
    let port = server.port();
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    js.create_stream(jetstream::stream::Config {
        name: "ORDERS".to_owned(),
        subjects: vec!["orders.>".to_owned()],
        ..Default::default()
    })
    .await?;
    js.publish("orders.created.1", "{}".into()).await?.await?;

    server.kill()?;
    assert_eq!(server.pid(), None);
    server.restart().await?;

    assert_eq!(server.port(), port);
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    let mut stream = js.get_stream("ORDERS").await?;
    assert_eq!(stream.info().await?.state.messages, 1);
    Ok(())
}

#[tokio::test]
async fn stopped_server_comes_back_on_restart() -> anyhow::Result<()> {
    let mut server = NatsServer::start().await?;
    server.stop().await?;
    assert_eq!(server.pid(), None);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", server.port())).is_err(),
        "a stopped server must not accept connections"
    );

    server.restart().await?;
    async_nats::connect(server.url()).await?;
    Ok(())
}

#[tokio::test]
async fn paused_server_answers_again_after_resume() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    let js = jetstream::new(async_nats::connect(server.url()).await?);
    js.query_account().await?;

    server.pause()?;
    let paused = tokio::time::timeout(Duration::from_millis(300), js.query_account()).await;
    assert!(paused.is_err(), "a paused server must not answer");

    server.resume()?;
    wait_for(
        "the server to answer again",
        Duration::from_secs(10),
        || async { js.query_account().await.ok() },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn two_servers_get_distinct_ports() -> anyhow::Result<()> {
    let (a, b) = tokio::try_join!(NatsServer::start(), NatsServer::start())?;

    assert_ne!(a.port(), b.port());
    assert_ne!(a.store_dir(), b.store_dir());
    async_nats::connect(a.url()).await?;
    async_nats::connect(b.url()).await?;
    Ok(())
}

#[tokio::test]
async fn extra_config_is_applied_and_the_store_stays_in_the_temp_dir() -> anyhow::Result<()> {
    let server = NatsServer::start_with_config(
        "jetstream { sync_interval: always }\nauthorization { user: alice, password: s3cret }",
    )
    .await?;

    let anonymous = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(server.url())
        .await;
    assert!(anonymous.is_err(), "the authorization block must apply");

    let client =
        async_nats::ConnectOptions::with_user_and_password("alice".into(), "s3cret".into())
            .connect(server.url())
            .await?;
    let js = jetstream::new(client);
    js.create_stream(jetstream::stream::Config {
        name: "STOCK".to_owned(),
        subjects: vec!["stock.>".to_owned()],
        ..Default::default()
    })
    .await?;
    assert!(server.store_dir().join("jetstream").is_dir());
    Ok(())
}

#[tokio::test]
async fn dropping_the_server_kills_it_and_removes_its_dir() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    let pid = server.pid().expect("running");
    let dir = server.store_dir().parent().expect("temp dir").to_owned();
    assert!(dir.is_dir());

    drop(server);

    assert!(!dir.exists(), "{} still exists", dir.display());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} still alive"
    );
    Ok(())
}

#[tokio::test]
async fn an_old_server_can_be_started_when_one_is_installed() -> anyhow::Result<()> {
    let Some(old) = find_old_nats_server() else {
        eprintln!("no nats-server older than 2.10 on this machine; nothing to check");
        return Ok(());
    };
    assert!(server_version(&old)? < (2, 10, 0));
    let server = NatsServer::start_binary(&old).await?;
    async_nats::connect(server.url()).await?;
    Ok(())
}
