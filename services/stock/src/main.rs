//! The stock service binary: settings from flags and environment, then [`stock_service::run`]
//! until Ctrl-C or SIGTERM.

use anyhow::Context as _;
use clap::Parser;
use jetsaga_runtime::settings::SettingsArgs;

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

    jetsaga_runtime::service::run_until_signal(settings.http_addr, |listener, shutdown| {
        stock_service::run(settings, listener, shutdown)
    })
    .await
    .context("the stock service failed")
}
