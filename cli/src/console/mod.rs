//! `jetsaga console`: the operator's tools in a browser, for signed-in operators (可回放 · 可对账 ·
//! 可补偿, looked at instead of read). It serves an embedded web application and a JSON API over
//! the same mechanisms as the CLI: the sagas from the order database, a saga's timeline from the
//! streams ([`crate::trace`]), the dead letters ([`crate::dlq`]), a reconcile and its repair
//! ([`crate::reconcile`]), health ([`crate::stats`]) and the audit ([`crate::audit`]).
//!
//! It reads the databases with read-only connections ([`Targets::read_only_pool`]); only the
//! write actions (requeue, discard, repair) open a writing connection, through the CLI's own code,
//! and each is recorded under the signed-in operator's name, as the CLI records its signer.
//!
//! Architecture Invariant: the console has no write path of its own. Every change it makes is a
//! call into the function the CLI's write command calls.
//!
//! ## Layout
//! - this file: the settings ([`ConsoleArgs`]), the shared state, the router, [`serve`].
//! - [`error`]: the error kinds and their `{"error","message"}` answers.
//! - [`session`]: operators and viewers, sign-in, the session cookie, the role extractors.
//! - [`assets`]: the embedded browser application and the security headers.
//! - [`sagas`]: the sagas list, paged by key, and the outcomes per minute.
//! - [`saga`]: one saga: the order, its steps with headers and payloads, the reconciler's verdict.
//! - [`dead_letters`]: dead letters grouped by consumer and failure; requeue and discard.
//! - [`failure`]: the failure a dead letter names, without its ids and counts (the grouping).
//! - [`reconcile`]: the check for a business date, and the repair after a confirmation.
//! - [`health`]: per service: database, NATS, instances, lag, backlog, parked, dead letters.
//! - [`audit`]: the admin changes and operator actions over a time range.
//! - [`live`]: server-sent events when the figures change.
//! - [`params`]: what a request gives, read the same way on every page.

pub mod assets;
pub mod audit;
pub mod dead_letters;
pub mod error;
pub mod failure;
pub mod health;
pub mod live;
pub mod params;
pub mod reconcile;
pub mod saga;
pub mod sagas;
pub mod session;

use crate::cli::Outcome;
use crate::reconcile::check::Sources;
use crate::targets::Targets;
use anyhow::Context as _;
use axum::routing::{get, post};
use axum::Router;
use clap::Args;
use jetsaga_contracts::Producer;
use jetsaga_runtime::operators::Operators;
use session::{Access, Sessions};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The console's default address, from the design's contract table.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8090";

/// `jetsaga console`.
#[derive(Debug, Clone, Args)]
pub struct ConsoleArgs {
    /// Where the console listens (HTTP).
    #[arg(long, env = "CONSOLE_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// The operators, who may look and act (`name=token,...`, as the services' ADMIN_TOKENS).
    #[arg(long = "admin-tokens", env = "ADMIN_TOKENS", hide_env_values = true)]
    pub admin_tokens: Option<String>,
    /// The viewers, who may only look (`name=token,...`).
    #[arg(long = "viewer-tokens", env = "VIEWER_TOKENS", hide_env_values = true)]
    pub viewer_tokens: Option<String>,
    /// No operators and no viewers (a development machine): everyone is the operator
    /// `anonymous`. Without this, the console refuses to start with neither list.
    #[arg(long, env = "INSECURE_ADMIN")]
    pub insecure_admin: bool,
    /// A service instance whose /health the health page asks, as `<service>=<base URL>`
    /// (repeat it, or separate with commas). Default: each service on the design's address.
    #[arg(
        long = "service-url",
        env = "CONSOLE_SERVICE_URLS",
        value_delimiter = ',',
        value_name = "SERVICE=URL"
    )]
    pub service_urls: Vec<ServiceUrl>,
    /// The reconciler's slack: a PENDING order is stuck this many seconds after its deadline
    /// (`jetsaga reconcile --slack-secs`).
    #[arg(
        long,
        env = "CONSOLE_SLACK_SECS",
        value_name = "SECS",
        default_value_t = crate::reconcile::DEFAULT_SLACK_SECS
    )]
    pub slack_secs: u32,
    /// The reconciler's settle time: an order that ended less than this many seconds ago is not
    /// judged yet (`jetsaga reconcile --settle-secs`).
    #[arg(
        long,
        env = "CONSOLE_SETTLE_SECS",
        value_name = "SECS",
        default_value_t = crate::reconcile::DEFAULT_SETTLE_SECS
    )]
    pub settle_secs: u32,
}

/// How the reconciler judges time, on the reconcile page and in a saga's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub slack: time::Duration,
    pub settle: time::Duration,
}

/// `jetsaga reconcile`'s defaults.
impl Default for Timing {
    fn default() -> Self {
        Timing::of_secs(
            crate::reconcile::DEFAULT_SLACK_SECS,
            crate::reconcile::DEFAULT_SETTLE_SECS,
        )
    }
}

impl Timing {
    /// `slack` and `settle` given in seconds, as the settings are.
    pub fn of_secs(slack: u32, settle: u32) -> Timing {
        Timing {
            slack: time::Duration::seconds(i64::from(slack)),
            settle: time::Duration::seconds(i64::from(settle)),
        }
    }

    /// The reconciler's options for a check of `day` (every order when `None`).
    pub fn options(
        self,
        day: Option<crate::reconcile::check::BusinessDay>,
    ) -> crate::reconcile::check::Options {
        crate::reconcile::check::Options {
            day,
            slack: self.slack,
            settle: self.settle,
            progress: false,
        }
    }
}

/// One service instance's base URL, e.g. `payment=http://127.0.0.1:8081`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUrl {
    pub producer: Producer,
    pub base: String,
}

impl std::str::FromStr for ServiceUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (service, base) = s.split_once('=').ok_or_else(|| {
            format!("`{s}` is not <service>=<url>, e.g. payment=http://127.0.0.1:8081")
        })?;
        let producer = Producer::from_service(service.trim()).ok_or_else(|| {
            format!("`{service}` is not a service (order, voucher, points, payment, stock)")
        })?;
        let base = base.trim().trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!("`{base}` is not an http:// or https:// URL"));
        }
        Ok(ServiceUrl {
            producer,
            base: base.to_owned(),
        })
    }
}

/// Why the console cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "the console needs its operators: set ADMIN_TOKENS (operators, who may act) and/or \
         VIEWER_TOKENS (viewers, who may look), as name=token,...; on a development machine \
         without operators, pass --insecure-admin"
    )]
    NoOperators,
    #[error("--insecure-admin opens the console to everyone; it cannot be combined with ADMIN_TOKENS or VIEWER_TOKENS")]
    InsecureWithTokens,
    #[error("{list}: {source}")]
    BadTokens {
        list: &'static str,
        #[source]
        source: jetsaga_runtime::operators::OperatorsError,
    },
    #[error("an operator and a viewer have the same token ({0})")]
    SharedToken(String),
}

impl ConsoleArgs {
    /// Who may sign in, from the settings.
    pub fn access(&self) -> Result<Access, StartError> {
        let parse = |list: &'static str, text: &Option<String>| {
            text.as_deref()
                .filter(|t| !t.trim().is_empty())
                .map(|t| {
                    t.parse::<Operators>()
                        .map_err(|source| StartError::BadTokens { list, source })
                })
                .transpose()
        };
        let operators = parse("ADMIN_TOKENS", &self.admin_tokens)?;
        let viewers = parse("VIEWER_TOKENS", &self.viewer_tokens)?;
        match (operators, viewers, self.insecure_admin) {
            (None, None, true) => Ok(Access::Insecure),
            (None, None, false) => Err(StartError::NoOperators),
            (_, _, true) => Err(StartError::InsecureWithTokens),
            (operators, viewers, false) => {
                // A token that is both would make its holder's role depend on the list order.
                if let (Some(o), Some(v)) = (&operators, &viewers) {
                    if let Some(name) = o.sharing_a_token_with(v) {
                        return Err(StartError::SharedToken(name.to_string()));
                    }
                }
                Ok(Access::Tokens { operators, viewers })
            }
        }
    }

    /// The reconciler's timing from the settings.
    pub fn timing(&self) -> Timing {
        Timing::of_secs(self.slack_secs, self.settle_secs)
    }

    /// The service instances to ask for health: those given, else the design's addresses.
    pub fn service_urls(&self) -> Vec<ServiceUrl> {
        if self.service_urls.is_empty() {
            default_service_urls()
        } else {
            self.service_urls.clone()
        }
    }
}

/// Each service on the design's address (what `jetsaga dev` runs).
pub fn default_service_urls() -> Vec<ServiceUrl> {
    crate::participants::ALL
        .iter()
        .map(|p| ServiceUrl {
            producer: p.producer,
            base: format!("http://{}", p.defaults.http_addr),
        })
        .collect()
}

/// What every request shares: the connections, who may sign in, and who has.
#[derive(Debug)]
pub struct ConsoleState {
    /// Where the system is; write actions open their connections from it, as the CLI does.
    pub targets: Targets,
    /// Read-only pools on the five databases.
    pub sources: Sources,
    /// NATS, for the streams (a saga's timeline, the audit, consumer lag).
    pub js: async_nats::jetstream::Context,
    pub access: Access,
    pub sessions: Sessions,
    pub service_urls: Vec<ServiceUrl>,
    pub timing: Timing,
    pub http: reqwest::Client,
}

/// The state as the routes hold it.
pub type Shared = Arc<ConsoleState>;

impl ConsoleState {
    /// Connects to the databases (read-only) and NATS.
    pub async fn connect(
        targets: &Targets,
        access: Access,
        service_urls: Vec<ServiceUrl>,
        timing: Timing,
    ) -> anyhow::Result<Shared> {
        let sources = Sources::connect(targets).await?;
        let js = targets.nats().await?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(2))
            .build()
            .context("building the HTTP client for the services' health")?;
        Ok(Arc::new(ConsoleState {
            targets: targets.clone(),
            sources,
            js,
            access,
            sessions: Sessions::default(),
            service_urls,
            timing,
            http,
        }))
    }
}

/// Every route of the console.
pub fn router(state: Shared) -> Router {
    let api = Router::new()
        .route(
            "/session",
            post(session::sign_in)
                .get(session::current)
                .delete(session::sign_out),
        )
        .route("/sagas", get(sagas::list))
        .route("/sagas/{order_id}", get(saga::show))
        .route("/outcomes", get(sagas::outcomes))
        .route("/dead-letters", get(dead_letters::list))
        .route("/dead-letters/requeue", post(dead_letters::requeue))
        .route("/dead-letters/discard", post(dead_letters::discard))
        .route("/reconcile", post(reconcile::check))
        .route("/reconcile/repair", post(reconcile::repair))
        .route("/health", get(health::show))
        .route("/audit", get(audit::list))
        .route("/live", get(live::stream))
        .fallback(not_found);
    Router::new()
        .route("/", get(assets::index))
        .route("/index.html", get(assets::index))
        .route("/app.js", get(assets::app_js))
        .route("/app.css", get(assets::app_css))
        .nest("/api", api)
        .layer(axum::middleware::map_response(assets::secure))
        .with_state(state)
}

/// An unknown API route: 404 in the console's error body (after the session check, so an
/// unknown route tells nothing to someone not signed in).
async fn not_found(_: session::Signed) -> error::ConsoleError {
    error::ConsoleError::not_found("not_found", "no such console route")
}

/// Serves the console on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    state: Shared,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// `jetsaga console`: checks the settings, connects, listens, and serves until interrupted.
pub async fn run(args: ConsoleArgs, targets: &Targets) -> Outcome {
    let access = args.access()?;
    let listener = TcpListener::bind(args.listen).await.with_context(|| {
        format!(
            "the console cannot listen on {} (is another console running? --listen)",
            args.listen
        )
    })?;
    let state = ConsoleState::connect(targets, access, args.service_urls(), args.timing()).await?;
    let url = format!("http://{}", listener.local_addr()?);
    match &state.access {
        Access::Insecure => eprintln!(
            "jetsaga console: WARNING --insecure-admin: everyone who reaches {url} is an operator"
        ),
        Access::Tokens { operators, viewers } => eprintln!(
            "jetsaga console: operators {:?}, viewers {:?}",
            operators.as_ref().map(|o| o.names()).unwrap_or_default(),
            viewers.as_ref().map(|v| v.names()).unwrap_or_default()
        ),
    }
    println!("jetsaga console: {url}");
    serve(listener, state, CancellationToken::new()).await?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(admin: Option<&str>, viewer: Option<&str>, insecure: bool) -> ConsoleArgs {
        ConsoleArgs {
            listen: DEFAULT_LISTEN.parse().unwrap(),
            admin_tokens: admin.map(str::to_owned),
            viewer_tokens: viewer.map(str::to_owned),
            insecure_admin: insecure,
            service_urls: Vec::new(),
            slack_secs: 30,
            settle_secs: 10,
        }
    }

    #[test]
    fn the_console_starts_only_with_operators_or_insecure_by_choice() {
        assert!(matches!(
            args(None, None, false).access(),
            Err(StartError::NoOperators)
        ));
        assert!(matches!(
            args(None, None, true).access(),
            Ok(Access::Insecure)
        ));
        assert!(matches!(
            args(Some("alice=alice-token-0123456789"), None, true).access(),
            Err(StartError::InsecureWithTokens)
        ));
        assert!(matches!(
            args(Some("alice=short"), None, false).access(),
            Err(StartError::BadTokens { .. })
        ));
        assert!(matches!(
            args(
                Some("alice=same-token-0123456789"),
                Some("victor=same-token-0123456789"),
                false
            )
            .access(),
            Err(StartError::SharedToken(_))
        ));
        assert!(args(None, Some("victor=victor-token-0123456789"), false)
            .access()
            .is_ok());
    }

    #[test]
    fn a_service_url_names_a_service_and_an_http_base() {
        let u: ServiceUrl = "payment=http://127.0.0.1:8081/".parse().unwrap();
        assert_eq!(u.producer, Producer::PAYMENT);
        assert_eq!(u.base, "http://127.0.0.1:8081");
        assert!("bank=http://x".parse::<ServiceUrl>().is_err());
        assert!("payment=ftp://x".parse::<ServiceUrl>().is_err());
        assert!("payment".parse::<ServiceUrl>().is_err());
    }
}
