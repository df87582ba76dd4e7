//! The voucher service binary: settings from flags and environment, then [`voucher_service::run`]
//! until Ctrl-C or SIGTERM.

jetsaga_runtime::service_main!(
    "voucher-service",
    "The jetsaga voucher service: reserves, releases and redeems vouchers.",
    voucher_service::DEFAULTS,
    voucher_service::run,
);
