//! Log output for tests.

use tracing_subscriber::EnvFilter;

/// Installs a `tracing` fmt subscriber that writes through the test harness (so output is
/// captured per test) and filters with `RUST_LOG`, by default `warn`.
///
/// Idempotent: every test may call it; only the first call in a process installs anything.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
