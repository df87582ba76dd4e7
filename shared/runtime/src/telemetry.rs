//! Logging for the binaries: `RUST_LOG` filter, on stderr.

/// Installs a fmt subscriber once with the default filter `info`; later calls do nothing.
pub fn init() {
    init_with("info");
}

/// Installs a fmt subscriber once, with `default` as the filter when `RUST_LOG` is not set.
pub fn init_with(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
