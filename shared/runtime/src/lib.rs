//! # jetsaga-runtime
//!
//! Everything a service process needs around the saga kit, written once so the five services hold
//! only their domain: typed settings, the HTTP error body and JSON extractor, `/health` and
//! `/metrics`, and a [`Service`] that connects, migrates, provisions, runs the relay and the
//! consumers, serves HTTP and shuts down in the right order.
//!
//! ## Layout
//! - [`settings`]: [`Settings`], from flags and environment, with per-service defaults.
//! - [`api_error`]: [`ApiError`], the `{"error","message"}` body with a 4xx status.
//! - [`json`]: [`Json`], a JSON extractor whose every rejection is an [`ApiError`].
//! - [`openapi`]: the error body's schema and `GET /openapi.json`.
//! - [`operators`]: `ADMIN_TOKENS`, and the [`operators::Operator`] an admin route takes.
//! - [`ops`]: the `/health` and `/metrics` routes.
//! - [`scrape`]: the gauges `/metrics` reads when scraped, and the hooks a service adds.
//! - [`service`]: [`Service`]: start-up, tasks and graceful shutdown.
//! - [`binary`]: a service binary's whole `main` ([`service_main!`]).
//! - [`signal`]: graceful shutdown on Ctrl-C or SIGTERM.
//! - [`telemetry`]: logging set-up for binaries, and trace export over OTLP when configured.
//! - [`trim`]: the kit's tables trimmed of rows the streams no longer need, every day.
//! - [`http_trace`]: one span per API request, continuing an incoming `traceparent`.

pub mod api_error;
pub mod binary;
pub mod http_trace;
pub mod json;
pub mod openapi;
pub mod operators;
pub mod ops;
pub mod scrape;
pub mod service;
pub mod settings;
pub mod signal;
pub mod telemetry;
pub mod trim;

pub use api_error::ApiError;
pub use json::Json;
pub use service::{Runtime, Service, ServiceError};
pub use settings::{Defaults, Settings};
