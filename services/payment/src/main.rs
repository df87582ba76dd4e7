//! The payment service binary: settings from flags and environment, Ctrl-C/SIGTERM, then
//! [`payment_service::run`].

use anyhow::Context as _;
use clap::Parser;
use jetsaga_runtime::settings::SettingsArgs;
use tokio_util::sync::CancellationToken;

/// The jetsaga payment service.
#[derive(Debug, Parser)]
#[command(name = "payment-service", version, about)]
struct Args {
    #[command(flatten)]
    settings: SettingsArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    jetsaga_runtime::telemetry::init();
    let args = Args::parse();
    let settings = args.settings.resolve(payment_service::DEFAULTS);
    tracing::info!(?settings, "starting payment service");

    let shutdown = CancellationToken::new();
    tokio::spawn(jetsaga_runtime::signal::cancel_on_signal(shutdown.clone()));

    let listener = tokio::net::TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("binding HTTP to {}", settings.http_addr))?;
    payment_service::run(settings, listener, shutdown)
        .await
        .context("payment service failed")?;
    Ok(())
}
