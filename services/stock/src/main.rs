//! The stock service binary: settings from flags and environment, then [`stock_service::run`]
//! until Ctrl-C or SIGTERM.

use anyhow::Context as _;
use clap::Parser;
use jetsaga_runtime::settings::SettingsArgs;
use tokio_util::sync::CancellationToken;

/// The jetsaga stock service.
#[derive(Debug, Parser)]
#[command(name = "stock-service", version, about)]
struct Args {
    #[command(flatten)]
    settings: SettingsArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    jetsaga_runtime::telemetry::init();
    let settings = Args::parse().settings.resolve(stock_service::DEFAULTS);
    tracing::info!(?settings, "starting the stock service");

    let shutdown = CancellationToken::new();
    tokio::spawn(jetsaga_runtime::signal::cancel_on_signal(shutdown.clone()));

    let listener = tokio::net::TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("binding HTTP to {}", settings.http_addr))?;
    stock_service::run(settings, listener, shutdown)
        .await
        .context("the stock service failed")
}
