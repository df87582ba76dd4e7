//! The payment service binary: settings from flags and environment, then [`payment_service::run`]
//! until Ctrl-C or SIGTERM.

jetsaga_runtime::service_main!(
    "payment-service",
    "The jetsaga payment service: charges and refunds customers' balances.",
    payment_service::DEFAULTS,
    payment_service::run,
);
