//! The `main` of a service binary, written once: settings from flags and environment, logging and
//! traces,
//! HTTP bound on the service's address, Ctrl-C or SIGTERM to stop, and the service's `run` until it
//! has shut down. A service's `main.rs` is one [`service_main!`](crate::service_main!) line.

use crate::service::{run_until_signal, ServiceError};
use crate::settings::{Defaults, Settings, SettingsArgs};
use clap::{Args as _, FromArgMatches as _};
use std::future::Future;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A service binary: its name, what it is, and its defaults.
#[derive(Debug, Clone, Copy)]
pub struct Binary {
    /// e.g. `stock-service`.
    pub name: &'static str,
    pub about: &'static str,
    pub version: &'static str,
    pub defaults: Defaults,
}

impl Binary {
    /// Parses the shared settings; exits with clap's message on bad input.
    pub fn args(&self) -> SettingsArgs {
        let command = clap::Command::new(self.name)
            .about(self.about)
            .version(self.version);
        let matches = SettingsArgs::augment_args(command).get_matches();
        SettingsArgs::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// Starts logging and runs `run` with the settings `args` give until a signal has stopped it.
pub async fn serve<F, Fut>(binary: Binary, args: SettingsArgs, run: F) -> Result<(), ServiceError>
where
    F: FnOnce(Settings, TcpListener, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), ServiceError>>,
{
    let settings = args.resolve(binary.defaults);
    let telemetry = crate::telemetry::init_service(binary.name);
    tracing::info!(?settings, service = binary.name, "starting");
    let served = run_until_signal(settings.http_addr, |listener, shutdown| {
        run(settings, listener, shutdown)
    })
    .await;
    // Only now that the service has stopped: its last spans are flushed too.
    crate::telemetry::shut_down(telemetry).await;
    served
}

/// The whole `main` of a service binary whose settings are the shared ones:
/// `jetsaga_runtime::service_main!("stock-service", "The jetsaga stock service.",
/// stock_service::DEFAULTS, stock_service::run);`
#[macro_export]
macro_rules! service_main {
    ($name:literal, $about:literal, $defaults:expr, $run:path $(,)?) => {
        fn main() -> std::process::ExitCode {
            let binary = $crate::binary::Binary {
                name: $name,
                about: $about,
                version: env!("CARGO_PKG_VERSION"),
                defaults: $defaults,
            };
            let args = binary.args();
            let runtime = match args.runtime() {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("{}: cannot start the async runtime: {e}", $name);
                    return std::process::ExitCode::FAILURE;
                }
            };
            match runtime.block_on($crate::binary::serve(binary, args, $run)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{} failed: {e}", $name);
                    std::process::ExitCode::FAILURE
                }
            }
        }
    };
}
