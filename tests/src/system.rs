//! The four services as OS processes, each with its own database, on one nats-server.

use crate::api::Api;
use anyhow::Context;
use jetsaga_testkit::{wait_until, NatsServer, TestDb};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One of the four services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Svc {
    Order,
    Voucher,
    Payment,
    Stock,
}

impl Svc {
    pub const ALL: [Svc; 4] = [Svc::Order, Svc::Voucher, Svc::Payment, Svc::Stock];

    pub fn name(self) -> &'static str {
        match self {
            Svc::Order => "order",
            Svc::Voucher => "voucher",
            Svc::Payment => "payment",
            Svc::Stock => "stock",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How to start the system.
#[derive(Debug, Clone)]
pub struct SystemOptions {
    /// An order's saga deadline.
    pub order_deadline: Duration,
    /// How long NATS waits for an ack before redelivering (short, so a killed process's messages
    /// come back quickly).
    pub ack_wait: Duration,
}

impl Default for SystemOptions {
    fn default() -> Self {
        SystemOptions {
            order_deadline: Duration::from_secs(30),
            ack_wait: Duration::from_secs(3),
        }
    }
}

struct Proc {
    port: u16,
    db: Option<TestDb>,
    child: Option<Child>,
    log: PathBuf,
}

/// A running system. Dropping it kills the processes, the server and drops the databases.
#[allow(missing_debug_implementations)]
pub struct System {
    pub nats: Option<NatsServer>,
    pub api: Api,
    nats_url: String,
    procs: Vec<Proc>,
    options: SystemOptions,
    dir: PathBuf,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The directory of the built service binaries: next to the test executable's `deps/` folder.
fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("JETSAGA_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("test executable has no parent directory")?;
    Ok(dir.to_path_buf())
}

impl System {
    /// Whether the scenarios run against an already running deployment.
    pub fn external() -> Option<Api> {
        let get = |name: &str| std::env::var(name).ok();
        Some(Api::new(
            &get("JETSAGA_ORDER_URL")?,
            &get("JETSAGA_PAYMENT_URL")?,
            &get("JETSAGA_STOCK_URL")?,
            &get("JETSAGA_VOUCHER_URL")?,
        ))
    }

    /// Starts nats-server, four databases and the four services, and waits until all are healthy.
    pub async fn start(options: SystemOptions) -> anyhow::Result<System> {
        jetsaga_testkit::init_tracing();
        if let Some(api) = Self::external() {
            let nats_url =
                std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
            return Ok(System {
                nats: None,
                api: api.with_nats(&nats_url),
                nats_url,
                procs: Vec::new(),
                options,
                dir: std::env::temp_dir(),
            });
        }
        let nats = NatsServer::start().await?;
        let dir =
            std::env::temp_dir().join(format!("jetsaga-system-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let mut procs = Vec::new();
        for svc in Svc::ALL {
            let db = TestDb::create(svc.name()).await?;
            procs.push(Proc {
                port: free_port()?,
                db: Some(db),
                child: None,
                log: dir.join(format!("{}.log", svc.name())),
            });
        }
        let url = |i: usize| format!("http://127.0.0.1:{}", procs[i].port);
        let api = Api::new(&url(0), &url(2), &url(3), &url(1)).with_nats(&nats.url());
        let mut system = System {
            nats_url: nats.url(),
            nats: Some(nats),
            api,
            procs,
            options,
            dir,
        };
        for svc in Svc::ALL {
            system.spawn(svc)?;
        }
        for svc in Svc::ALL {
            system.wait_healthy(svc).await?;
        }
        Ok(system)
    }

    pub fn is_external(&self) -> bool {
        self.procs.is_empty()
    }

    pub fn nats_url(&self) -> &str {
        &self.nats_url
    }

    fn spawn(&mut self, svc: Svc) -> anyhow::Result<()> {
        let bin = bin_dir()?.join(format!("{}-service", svc.name()));
        anyhow::ensure!(
            bin.exists(),
            "{} is not built: run `cargo build --workspace --bins` (scripts/test does)",
            bin.display()
        );
        let options = self.options.clone();
        let nats_url = self.nats_url.clone();
        let p = &mut self.procs[svc.index()];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p.log)?;
        let db_url = p.db.as_ref().map(|d| d.url()).unwrap_or_default();
        let child = Command::new(&bin)
            .env("HTTP_ADDR", format!("127.0.0.1:{}", p.port))
            .env("DATABASE_URL", db_url)
            .env("NATS_URL", nats_url)
            .env(
                "ACK_WAIT_SECS",
                options.ack_wait.as_secs().max(1).to_string(),
            )
            .env("MAX_DELIVER", "20")
            .env("DB_MAX_CONNECTIONS", "8")
            .env(
                "ORDER_DEADLINE_SECS",
                options.order_deadline.as_secs().max(1).to_string(),
            )
            .env("DEADLINE_SWEEP_MS", "200")
            .env(
                "RUST_LOG",
                std::env::var("SERVICE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        p.child = Some(child);
        Ok(())
    }

    /// Waits until the service answers `/health` with 200.
    pub async fn wait_healthy(&mut self, svc: Svc) -> anyhow::Result<()> {
        let url = format!("{}/health", self.api.base(svc));
        let client = reqwest::Client::new();
        let result = wait_until(
            &format!("{} to be healthy", svc.name()),
            Duration::from_secs(30),
            || async {
                client
                    .get(&url)
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false)
            },
        )
        .await;
        result
            .map_err(|e| anyhow::anyhow!("{e}\n--- {} log ---\n{}", svc.name(), self.log_tail(svc)))
    }

    pub fn log_tail(&self, svc: Svc) -> String {
        let text = std::fs::read_to_string(&self.procs[svc.index()].log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn pid(&self, svc: Svc) -> anyhow::Result<Pid> {
        let child = self.procs[svc.index()]
            .child
            .as_ref()
            .context("service is not running")?;
        Ok(Pid::from_raw(i32::try_from(child.id())?))
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self, svc: Svc) -> anyhow::Result<()> {
        if let Some(mut child) = self.procs[svc.index()].child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGSTOP: the process stays, but does nothing (and acks nothing).
    pub fn pause(&self, svc: Svc) -> anyhow::Result<()> {
        kill(self.pid(svc)?, Signal::SIGSTOP)?;
        Ok(())
    }

    /// SIGCONT after [`System::pause`].
    pub fn resume(&self, svc: Svc) -> anyhow::Result<()> {
        kill(self.pid(svc)?, Signal::SIGCONT)?;
        Ok(())
    }

    /// Starts a killed service again and waits until it is healthy.
    pub async fn restart(&mut self, svc: Svc) -> anyhow::Result<()> {
        self.kill(svc)?;
        self.spawn(svc)?;
        self.wait_healthy(svc).await
    }

    /// The URL of a service's database, for tools that connect on their own (the `jetsaga` CLI).
    pub fn database_url(&self, svc: Svc) -> anyhow::Result<String> {
        Ok(self.procs[svc.index()]
            .db
            .as_ref()
            .context("external deployment: no database access")?
            .url())
    }

    /// A PostgreSQL pool on a service's database, for assertions the API cannot make.
    pub async fn db(&self, svc: Svc) -> anyhow::Result<sqlx::PgPool> {
        self.procs[svc.index()]
            .db
            .as_ref()
            .context("external deployment: no database access")?
            .connect()
            .await
    }
}

impl Drop for System {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for svc in Svc::ALL {
                if !self.procs.is_empty() {
                    eprintln!("--- {} log (tail) ---\n{}", svc.name(), self.log_tail(svc));
                }
            }
        }
        for p in &mut self.procs {
            if let Some(mut child) = p.child.take() {
                let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGCONT);
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // Databases drop after their processes are gone; the store dir of NATS goes with it.
        for p in &mut self.procs {
            p.db.take();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
