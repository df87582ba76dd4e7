//! The voucher service binary: settings from flags and environment, then [`voucher_service::run`]
//! until Ctrl-C or SIGTERM.

use anyhow::Context as _;
use clap::Parser;
use jetsaga_runtime::settings::SettingsArgs;

/// The jetsaga voucher service.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    settings: SettingsArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    jetsaga_runtime::telemetry::init();
    let settings = Args::parse().settings.resolve(voucher_service::DEFAULTS);
    tracing::info!(?settings, "starting the voucher service");
    jetsaga_runtime::service::run_until_signal(settings.http_addr, |listener, shutdown| {
        voucher_service::run(settings, listener, shutdown)
    })
    .await
    .context("the voucher service failed")
}
