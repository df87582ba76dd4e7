//! `jetsaga dev`: the whole system on one machine, in one command.
//!
//! It starts what is missing — its own nats-server 2.10+ on a free port unless `NATS_URL` is given,
//! PostgreSQL where it can — creates the five databases, runs the five services in this process on
//! the design's ports (their migrations run at start-up), seeds a small demo catalogue through the
//! public APIs, prints the URLs and commands to try, and on Ctrl-C stops everything in order.

use anyhow::Context as _;
use clap::Args;
use jetsaga_cli::cli::Outcome;
use jetsaga_cli::targets::Targets;
use jetsaga_contracts::Producer;
use jetsaga_runtime::Settings;
use jetsaga_testkit::NatsServer;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Where the dev nats-server keeps its store and logs (kept between runs, like the databases).
    #[arg(long, default_value = ".jetsaga/dev")]
    pub state_dir: PathBuf,
    /// A PostgreSQL URL allowed to create the four databases.
    #[arg(
        long,
        env = "PG_ADMIN_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    pub pg_admin_url: String,
    /// Do not seed the demo catalogue, customers, stock and vouchers.
    #[arg(long)]
    pub no_seed: bool,
    /// An order's saga deadline, in seconds.
    #[arg(long, env = "ORDER_DEADLINE_SECS", default_value_t = 30)]
    pub order_deadline_secs: u64,
    /// The token of the operator `dev`, the one operator every service admits to its admin
    /// routes (at least 16 characters). Default: a new random token, printed at start.
    #[arg(long, env = "JETSAGA_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Where the console (`jetsaga console`) listens; the operator `dev` signs in to it with the
    /// admin token.
    #[arg(long, default_value = jetsaga_cli::console::DEFAULT_LISTEN)]
    pub console_listen: std::net::SocketAddr,
    /// Do not start the console.
    #[arg(long)]
    pub no_console: bool,
}

/// The operator `jetsaga dev` gives every service.
pub const DEV_OPERATOR: &str = "dev";

/// The demo customers: one with money, one without (to see a payment fail).
pub const ALICE: &str = "7f1c0a4e-0000-4000-8000-000000000001";
pub const BOB: &str = "7f1c0a4e-0000-4000-8000-000000000002";

pub async fn run(args: DevArgs, targets: &Targets) -> Outcome {
    let admin_token = args
        .admin_token
        .clone()
        .unwrap_or_else(|| format!("dev-{}", uuid::Uuid::new_v4().simple()));
    // Read by the same rules as a service's ADMIN_TOKENS, before anything starts.
    let operators: jetsaga_runtime::operators::Operators = format!("{DEV_OPERATOR}={admin_token}")
        .parse()
        .context("JETSAGA_ADMIN_TOKEN (--admin-token)")?;
    let shutdown = CancellationToken::new();
    tokio::spawn(jetsaga_runtime::signal::cancel_on_signal(shutdown.clone()));

    let (nats_url, nats) = match &targets.nats_url {
        Some(url) => (url.clone(), None),
        None => {
            let dir = args.state_dir.join("nats");
            let server = NatsServer::start_in(&dir).await.context(
                "cannot start a nats-server 2.10+ (run scripts/setup-nats, or give NATS_URL)",
            )?;
            eprintln!(
                "jetsaga dev: started nats-server at {} (store and log in {})",
                server.url(),
                dir.display()
            );
            (server.url(), Some(server))
        }
    };

    let admin = connect_admin(&args.pg_admin_url).await?;
    let mut urls = Vec::new();
    for producer in Producer::ALL {
        if targets.given_database_url(producer).is_none() {
            create_database_if_missing(&admin, &format!("jetsaga_{}", producer.service())).await?;
        }
        urls.push((producer, targets.database_url(producer)));
    }
    admin.close().await;

    let mut services = tokio::task::JoinSet::new();
    for (producer, database_url) in urls {
        let defaults = jetsaga_cli::participants::of(producer).defaults;
        let mut settings = Settings::with_defaults(defaults);
        settings.admin = jetsaga_runtime::operators::AdminAccess::Operators(operators.clone());
        settings.nats_url = nats_url.clone();
        settings.database_url = database_url;
        settings.db_max_connections = 8;
        let listener = TcpListener::bind(settings.http_addr).await.with_context(|| {
            format!(
                "the {producer} service cannot listen on {} (is another jetsaga dev or service running?)",
                settings.http_addr
            )
        })?;
        let token = shutdown.clone();
        let deadline = Duration::from_secs(args.order_deadline_secs.max(1));
        let run = jetsaga_cli::participants::of(producer).run;
        services.spawn(async move {
            let result = run(jetsaga_cli::participants::DevRun {
                settings,
                listener,
                shutdown: token,
                order_deadline: deadline,
            })
            .await;
            (producer, result)
        });
    }

    let client = reqwest::Client::new();
    tokio::select! {
        ready = wait_healthy(&client) => ready?,
        Some(Ok((producer, result))) = services.join_next() => {
            shutdown.cancel();
            result.with_context(|| format!("the {producer} service stopped while starting"))?;
            anyhow::bail!("the {producer} service stopped while starting");
        }
        _ = shutdown.cancelled() => {}
    }
    if !shutdown.is_cancelled() {
        if !args.no_seed {
            seed(&client, &admin_token)
                .await
                .context("seeding the demo data through the public APIs")?;
        }
        let console = if args.no_console {
            None
        } else {
            match start_console(&args, targets, &nats_url, &operators, &shutdown).await {
                Ok(url) => Some(url),
                // The services run without it; the person is told why.
                Err(e) => {
                    eprintln!("jetsaga dev: the console did not start: {e:#}");
                    None
                }
            }
        };
        print_banner(&nats_url, &args.state_dir, &admin_token, console.as_deref());
    }

    // Run until Ctrl-C, or until a service fails (then stop the others too).
    let mut failed = None;
    while let Some(joined) = services.join_next().await {
        shutdown.cancel();
        match joined {
            Ok((producer, Err(e))) => {
                eprintln!("jetsaga dev: the {producer} service failed: {e}");
                failed = Some(producer);
            }
            Ok((_, Ok(()))) => {}
            Err(e) => eprintln!("jetsaga dev: a service task panicked: {e}"),
        }
    }
    drop(nats);
    eprintln!("jetsaga dev: stopped");
    Ok(if failed.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Starts the console in this process on the dev system, for the operator `dev`; returns its URL.
async fn start_console(
    args: &DevArgs,
    targets: &Targets,
    nats_url: &str,
    operators: &jetsaga_runtime::operators::Operators,
    shutdown: &CancellationToken,
) -> anyhow::Result<String> {
    use jetsaga_cli::console;
    let mut targets = targets.clone();
    targets.nats_url = Some(nats_url.to_owned());
    let listener = TcpListener::bind(args.console_listen)
        .await
        .with_context(|| format!("listening on {} (--console-listen)", args.console_listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    let state = console::ConsoleState::connect(
        &targets,
        console::session::Access::Tokens {
            operators: Some(operators.clone()),
            viewers: None,
        },
        console::default_service_urls(),
        console::Timing::default(),
    )
    .await?;
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) = console::serve(listener, state, shutdown).await {
            eprintln!("jetsaga dev: the console stopped: {e}");
        }
    });
    Ok(url)
}

/// Connects to PostgreSQL as an admin; when nothing listens, starts a local server where this
/// machine can (the repository's `scripts/ensure-postgres`), else says how to get one.
async fn connect_admin(url: &str) -> anyhow::Result<PgPool> {
    let connect = || {
        PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
    };
    match connect().await {
        Ok(pool) => return Ok(pool),
        Err(e) if !matches!(e, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut) => {
            return Err(e).with_context(|| {
                format!(
                    "PostgreSQL at {} refused the connection",
                    saga_kit::provision::redact(url)
                )
            })
        }
        Err(_) => {}
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/ensure-postgres");
    if script.is_file() {
        eprintln!(
            "jetsaga dev: PostgreSQL is not reachable; trying {}",
            script.display()
        );
        let status = tokio::process::Command::new(&script).status().await;
        if matches!(status, Ok(s) if s.success()) {
            if let Ok(pool) = connect().await {
                return Ok(pool);
            }
        }
    }
    anyhow::bail!(
        "PostgreSQL is not reachable at {}. Start one (Debian/Ubuntu: `apt-get install postgresql`, \
         or `docker compose up -d postgres`), or give PG_ADMIN_URL and the *_DATABASE_URL variables",
        saga_kit::provision::redact(url)
    )
}

async fn create_database_if_missing(admin: &PgPool, name: &str) -> anyhow::Result<()> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(admin)
            .await
            .with_context(|| format!("looking for database {name}"))?;
    if !exists {
        // The name is one of five constants, never user input.
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(admin)
            .await
            .with_context(|| format!("creating database {name}"))?;
        eprintln!("jetsaga dev: created database {name}");
    }
    Ok(())
}

const PORTS: [(&str, u16); 5] = [
    ("order", 8080),
    ("payment", 8081),
    ("stock", 8082),
    ("voucher", 8083),
    ("points", 8084),
];

async fn wait_healthy(client: &reqwest::Client) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    for (service, port) in PORTS {
        let url = format!("http://127.0.0.1:{port}/health");
        loop {
            let ok = client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ok {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("the {service} service is not healthy at {url} after 90 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// The demo data, through the same public APIs a user calls. Only on an empty catalogue, so a
/// second run does not add stock and credit again.
async fn seed(client: &reqwest::Client, admin_token: &str) -> anyhow::Result<()> {
    let product = client
        .get("http://127.0.0.1:8082/stock/MUG-1")
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?;
    if product
        .get("available")
        .and_then(|v| v.as_i64())
        .unwrap_or(0)
        > 0
    {
        eprintln!("jetsaga dev: demo data already there");
        return Ok(());
    }
    let send = |req: reqwest::RequestBuilder, what: String| async move {
        let resp = req
            .bearer_auth(admin_token)
            .send()
            .await
            .with_context(|| what.clone())?;
        let status = resp.status();
        if !status.is_success() && status != reqwest::StatusCode::CONFLICT {
            anyhow::bail!("{what}: {status} {}", resp.text().await.unwrap_or_default());
        }
        Ok(())
    };
    let catalogue = [
        ("MUG-1", "Mug", 1250, 100),
        ("TEE-1", "T-shirt", 1999, 100),
        ("BOOK-1", "Book", 2450, 50),
        ("CAP-1", "Cap", 1500, 50),
        ("PEN-1", "Limited pen", 199, 2),
    ];
    for (sku, name, price, stock) in catalogue {
        send(
            client
                .put(format!("http://127.0.0.1:8080/products/{sku}"))
                .json(&serde_json::json!({"name": name, "price_cents": price})),
            format!("pricing {sku}"),
        )
        .await?;
        send(
            client
                .post(format!("http://127.0.0.1:8082/stock/{sku}/adjust"))
                .json(&serde_json::json!({"delta": stock})),
            format!("stocking {sku}"),
        )
        .await?;
    }
    for (customer, credit) in [(ALICE, 20_000), (BOB, 500)] {
        send(
            client
                .post(format!("http://127.0.0.1:8081/accounts/{customer}/credit"))
                .json(&serde_json::json!({"amount_cents": credit})),
            format!("crediting {customer}"),
        )
        .await?;
    }
    send(
        client.post("http://127.0.0.1:8083/vouchers").json(
            &serde_json::json!({"code": "WELCOME5", "customer_id": ALICE, "discount_cents": 500}),
        ),
        "issuing voucher WELCOME5".into(),
    )
    .await?;
    send(
        client
            .post(format!("http://127.0.0.1:8084/points/{ALICE}/award"))
            .json(&serde_json::json!({"points": 300})),
        "awarding alice 300 points".into(),
    )
    .await?;
    eprintln!(
        "jetsaga dev: seeded 5 products with stock, 2 customers, voucher WELCOME5 and 300 points"
    );
    Ok(())
}

fn print_banner(nats_url: &str, state_dir: &Path, admin_token: &str, console: Option<&str>) {
    let console = console
        .map(|url| format!("  console  {url}     (sign in with the operator token below)\n"))
        .unwrap_or_default();
    println!(
        r#"
jetsaga is running (NATS at {nats_url}, dev state in {state}):
  order    http://127.0.0.1:8080     payment  http://127.0.0.1:8081
  stock    http://127.0.0.1:8082     voucher  http://127.0.0.1:8083
  points   http://127.0.0.1:8084
{console}
Admin routes need the operator token (set JETSAGA_ADMIN_TOKEN to choose it):
  operator {DEV_OPERATOR}, token {admin_token}
The CLI's write commands (dlq requeue|discard, reconcile --repair) sign with it too:
  export ADMIN_TOKENS={DEV_OPERATOR}={admin_token} JETSAGA_ADMIN_TOKEN={admin_token}

Demo data: products MUG-1 TEE-1 BOOK-1 CAP-1 PEN-1 (only 2 pens), customer alice {ALICE}
(200.00 credit, voucher WELCOME5, 300 points), customer bob {BOB} (5.00 credit).

Try:
  # an order that confirms (alice pays 2 mugs minus the 5.00 voucher)
  curl -s -X POST localhost:8080/orders -H 'content-type: application/json' \
    -d '{{"customer_id":"{ALICE}","items":[{{"sku":"MUG-1","quantity":2}}],"voucher_code":"WELCOME5"}}'
  # an order paid partly with 300 points (3.00); alice earns a point per full 1.00 charged
  curl -s -X POST localhost:8080/orders -H 'content-type: application/json' \
    -d '{{"customer_id":"{ALICE}","items":[{{"sku":"CAP-1","quantity":1}}],"points":300}}'
  curl -s localhost:8084/points/{ALICE}
  # an order that is cancelled with payment_failed (bob cannot pay a book)
  curl -s -X POST localhost:8080/orders -H 'content-type: application/json' \
    -d '{{"customer_id":"{BOB}","items":[{{"sku":"BOOK-1","quantity":1}}]}}'
  # an admin change, signed by the operator dev (recorded as the actor of StockAdjusted)
  curl -s -X POST localhost:8082/stock/PEN-1/adjust -H 'authorization: Bearer {admin_token}' \
    -H 'content-type: application/json' -d '{{"delta":3}}'
  # the saga of an order, across all five services
  curl -s localhost:8080/orders/<order_id>/timeline     # or: jetsaga trace <order_id>
  # who changed what (the demo data was set up by the operator dev)
  jetsaga audit

Ctrl-C stops everything."#,
        state = state_dir.display()
    );
}
