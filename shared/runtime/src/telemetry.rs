//! Logging and traces for the binaries: `RUST_LOG` filter, on stderr; and, only when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set and not empty,
//! every span exported over OTLP/HTTP (protobuf) by a batch span processor.
//!
//! Without the variable the subscriber is the fmt one alone, as it always was: nothing is exported
//! and the kit makes no extra spans. A value the exporter cannot use is a warning at start-up and
//! the service runs without traces.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_http::{hyper::HyperClient, Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use std::time::Duration;
use tracing_subscriber::layer::{Layer as _, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

/// The variables that turn the exporter on; an empty value means off.
pub const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// How long one export may take (the OTLP default).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Keeps the trace exporter of the process; [`Telemetry::shutdown`] (or dropping it) flushes the
/// spans still buffered. Keep it until the service has stopped.
#[derive(Debug, Default)]
#[must_use = "dropping it stops the trace exporter"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes the buffered spans and stops the exporter. Blocks up to the export timeout.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("traces: flushing the last spans failed: {e}");
            }
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Flushes and stops the exporter off the async threads (the flush waits for the last export,
/// which this runtime sends).
pub async fn shut_down(telemetry: Telemetry) {
    if telemetry.exporting() {
        let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    }
}

/// Why traces cannot be exported.
#[derive(Debug, thiserror::Error)]
#[error("traces of {service} cannot be exported to {endpoint:?}: {source}")]
pub struct TraceExportError {
    pub service: String,
    pub endpoint: String,
    #[source]
    pub source: opentelemetry_otlp::ExporterBuildError,
}

/// Installs a fmt subscriber once with the default filter `info`; later calls do nothing. No
/// traces: for tools.
pub fn init() {
    init_with("info");
}

/// Installs a fmt subscriber once, with `default` as the filter when `RUST_LOG` is not set.
pub fn init_with(default: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(default))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Logging as [`init`], plus trace export as service `service` (e.g. `order-service`; the
/// standard `OTEL_SERVICE_NAME` wins) when an endpoint variable is set. Must run inside the tokio
/// runtime, which sends the exports. A bad endpoint is logged as a warning: the service runs
/// without traces.
pub fn init_service(service: &str) -> Telemetry {
    let Some(endpoint) = configured_endpoint() else {
        init();
        return Telemetry::default();
    };
    match tracer_provider(service, &endpoint) {
        Ok(provider) => {
            let tracer = provider.tracer(service.to_owned());
            // `RUST_LOG` filters the log lines only: the kit's spans (request, handle, publish)
            // are at `info` and are exported whatever the log level.
            let installed = tracing_subscriber::registry()
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_writer(std::io::stderr)
                        .with_filter(filter("info")),
                )
                .with(
                    tracing_opentelemetry::layer()
                        .with_tracer(tracer)
                        .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
                )
                .try_init();
            if installed.is_ok() {
                saga_kit::otel::enable();
                tracing::info!(%endpoint, "exporting traces over OTLP/HTTP");
                if let Some(other) = other_protocol() {
                    tracing::warn!(
                        protocol = %other,
                        "OTEL_EXPORTER_OTLP_PROTOCOL asks for another protocol; only http/protobuf is built in, so traces go as http/protobuf"
                    );
                }
            }
            Telemetry {
                provider: Some(provider),
            }
        }
        Err(e) => {
            init();
            tracing::warn!(error = %e, "running without traces");
            Telemetry::default()
        }
    }
}

/// The first endpoint variable set to something, if any.
pub fn configured_endpoint() -> Option<String> {
    ENDPOINT_VARS
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .map(|value| value.trim().to_owned())
        .find(|value| !value.is_empty())
}

/// The protocol `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL` asks for, when it is not ours.
fn other_protocol() -> Option<String> {
    [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]
    .iter()
    .filter_map(|name| std::env::var(name).ok())
    .map(|value| value.trim().to_owned())
    .find(|value| !value.is_empty())
    .filter(|value| value != "http/protobuf")
}

fn filter(default: &str) -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
}

fn tracer_provider(service: &str, endpoint: &str) -> Result<SdkTracerProvider, TraceExportError> {
    let client = OnTokio {
        client: HyperClient::with_default_connector(EXPORT_TIMEOUT, None),
        runtime: tokio::runtime::Handle::current(),
    };
    // The endpoint comes from the standard variables, read by the exporter itself.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_http_client(client)
        .build()
        .map_err(|source| TraceExportError {
            service: service.to_owned(),
            endpoint: endpoint.to_owned(),
            source,
        })?;
    let mut resource = Resource::builder().with_attribute(KeyValue::new(
        "service.instance.id",
        uuid::Uuid::new_v4().to_string(),
    ));
    if std::env::var("OTEL_SERVICE_NAME").is_ok_and(|name| !name.trim().is_empty()) {
        // The resource builder read it already.
    } else {
        resource = resource.with_service_name(service.to_owned());
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// The exporter's HTTP client: hyper, driven by the service's tokio runtime, whichever thread the
/// batch span processor exports from.
#[derive(Debug, Clone)]
struct OnTokio {
    client: HyperClient,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OnTokio {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        self.runtime
            .spawn(async move { client.send_bytes(request).await })
            .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test, because the endpoint variables are process-wide and tests run in parallel.
    #[tokio::test]
    async fn an_empty_endpoint_means_off_and_a_bad_one_is_an_error_that_names_it() {
        for name in ENDPOINT_VARS {
            std::env::set_var(name, "  ");
        }
        assert_eq!(configured_endpoint(), None);
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        assert_eq!(
            configured_endpoint().as_deref(),
            Some("http://127.0.0.1:4318")
        );
        std::env::set_var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "not a url at all");
        let err = tracer_provider("order-service", "not a url at all").unwrap_err();
        assert!(err.to_string().contains("not a url at all"), "{err}");
        for name in ENDPOINT_VARS {
            std::env::remove_var(name);
        }
    }
}
