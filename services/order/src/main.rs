//! The order service binary: settings from flags and environment, then [`order_service::run`]
//! until Ctrl-C or SIGTERM.

use anyhow::Context as _;
use clap::Parser;
use jetsaga_runtime::settings::SettingsArgs;
use order_service::{Config, DEFAULTS};
use std::time::Duration;

/// The jetsaga order service.
#[derive(Debug, Parser)]
#[command(name = "order-service", version, about)]
struct Args {
    #[command(flatten)]
    settings: SettingsArgs,
    /// Seconds an order's saga may take before the order is cancelled with reason `timeout`.
    #[arg(long, env = "ORDER_DEADLINE_SECS", default_value_t = 30)]
    order_deadline_secs: u64,
    /// Milliseconds between two looks for orders past their deadline.
    #[arg(long, env = "DEADLINE_SWEEP_MS", default_value_t = 500)]
    deadline_sweep_ms: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = args
        .settings
        .runtime()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let telemetry = jetsaga_runtime::telemetry::init_service("order-service");
    let settings = args.settings.resolve(DEFAULTS);
    tracing::info!(?settings, "starting the order service");
    let config = Config {
        settings,
        order_deadline: Duration::from_secs(args.order_deadline_secs),
        deadline_sweep: Duration::from_millis(args.deadline_sweep_ms.max(1)),
    };

    let served = jetsaga_runtime::service::run_until_signal(
        config.settings.http_addr,
        |listener, shutdown| order_service::run(config, listener, shutdown),
    )
    .await;
    // Only now that the service has stopped: its last spans are flushed too.
    jetsaga_runtime::telemetry::shut_down(telemetry).await;
    served.context("the order service failed")
}
