//! The stock service binary: settings from flags and environment, then [`stock_service::run`]
//! until Ctrl-C or SIGTERM.

jetsaga_runtime::service_main!(
    "stock-service",
    "The jetsaga stock service: holds and releases the units of paid orders.",
    stock_service::DEFAULTS,
    stock_service::run,
);
