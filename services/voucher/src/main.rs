//! The voucher service binary: settings from flags and environment, then [`voucher_service::run`]
//! until Ctrl-C or SIGTERM.

use anyhow::Context as _;
use clap::Parser;
use jetsaga_runtime::settings::SettingsArgs;
use tokio_util::sync::CancellationToken;

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
    let shutdown = CancellationToken::new();
    tokio::spawn(jetsaga_runtime::signal::cancel_on_signal(shutdown.clone()));
    let listener = tokio::net::TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("binding {}", settings.http_addr))?;
    voucher_service::run(settings, listener, shutdown)
        .await
        .context("the voucher service failed")
}
