//! The payment service binary: settings from flags and environment, Ctrl-C/SIGTERM, then
//! [`payment_service::run`].

use anyhow::Context as _;
use clap::Parser;
use jetsaga_runtime::settings::SettingsArgs;

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

    jetsaga_runtime::service::run_until_signal(settings.http_addr, |listener, shutdown| {
        payment_service::run(settings, listener, shutdown)
    })
    .await
    .context("the payment service failed")
}
