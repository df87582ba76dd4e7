//! `jetsaga provision` on a locked-down server: the admin provisions the streams the services
//! may not create (tests/scenarios/permissions.rs shows they may not).

use anyhow::Context as _;
use jetsaga_scenarios::system::NatsUsers;

async fn provision(nats_url: &str) -> anyhow::Result<(i32, String, String)> {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_jetsaga"))
        .args(["provision", "--wait-secs", "10"])
        .env("NATS_URL", nats_url)
        .output()
        .await
        .context("running jetsaga provision")?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[tokio::test]
async fn the_admin_provisions_the_streams_on_a_locked_down_server() -> anyhow::Result<()> {
    let users = NatsUsers::create()?;
    let nats = users.start_server().await?;

    let (code, stdout, stderr) = provision(&users.url(&nats, "admin")?).await?;
    assert_eq!(code, 0, "{stderr}");
    for stream in ["ORDERS", "VOUCHERS", "PAYMENTS", "STOCK", "DLQ"] {
        assert!(stdout.contains(&format!("{stream}: subjects")), "{stdout}");
    }
    let admin = saga_kit::provision::connect(&users.url(&nats, "admin")?, "test").await?;
    let js = async_nats::jetstream::new(admin);
    let mut payments = js.get_stream("PAYMENTS").await?;
    assert_eq!(payments.info().await?.config.num_replicas, 1);

    // Run again, it changes nothing and succeeds
    let (code, _, stderr) = provision(&users.url(&nats, "admin")?).await?;
    assert_eq!(code, 0, "{stderr}");
    Ok(())
}
