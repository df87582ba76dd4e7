//! The points service binary: settings from flags and environment, then [`points_service::run`]
//! until Ctrl-C or SIGTERM.

jetsaga_runtime::service_main!(
    "points-service",
    "The jetsaga points service: holds, releases, spends and awards loyalty points.",
    points_service::DEFAULTS,
    points_service::run,
);
