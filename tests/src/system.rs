//! The four services as OS processes, each with its own database, on one nats-server: an open one
//! by default, or one locked down with the users and permissions of `nats/users.conf`.

use crate::api::Api;
use anyhow::Context;
use jetsaga_testkit::{wait_until, NatsServer, TestDb};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
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

/// Which nats-server the system runs on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NatsSetup {
    /// No users: every process may do everything, and each service provisions the streams.
    #[default]
    Open,
    /// The users and permissions of `nats/users.conf` ([`NatsUsers`]): each service connects as
    /// its own user, and the admin provisions the streams (as `jetsaga provision` does) before the
    /// services start. [`System::nats_url`] is then the admin's URL.
    LockedDown,
}

/// How to start the system.
#[derive(Debug, Clone)]
pub struct SystemOptions {
    /// An order's saga deadline.
    pub order_deadline: Duration,
    /// How long NATS waits for an ack before redelivering (short, so a killed process's messages
    /// come back quickly).
    pub ack_wait: Duration,
    /// Which nats-server the services connect to.
    pub nats: NatsSetup,
}

impl Default for SystemOptions {
    fn default() -> Self {
        SystemOptions {
            order_deadline: Duration::from_secs(30),
            ack_wait: Duration::from_secs(3),
            nats: NatsSetup::Open,
        }
    }
}

/// The repository's `nats/` directory: the server config and its users.
pub fn nats_config_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../nats");
    dir.canonicalize().unwrap_or(dir)
}

/// The NATS users of `nats/users.conf` with fresh passwords, for one locked-down nats-server.
///
/// `users.conf` is copied unchanged into a temp dir next to a `passwords.conf` of random
/// passwords (the file `users.conf` includes), so the server enforces exactly the repository's
/// permissions. The temp dir is removed on drop.
#[derive(Debug)]
pub struct NatsUsers {
    dir: PathBuf,
    passwords: Vec<(&'static str, String)>,
}

impl NatsUsers {
    /// Every user `nats/users.conf` defines.
    pub const ALL: [&'static str; 5] = ["admin", "order", "voucher", "payment", "stock"];

    /// Copies `users.conf` and writes fresh passwords beside it.
    pub fn create() -> anyhow::Result<NatsUsers> {
        let dir =
            std::env::temp_dir().join(format!("jetsaga-users-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // From here on, drop removes the dir.
        let mut users = NatsUsers {
            dir,
            passwords: Vec::new(),
        };
        let source = nats_config_dir().join("users.conf");
        std::fs::copy(&source, users.dir.join("users.conf"))
            .with_context(|| format!("copying {}", source.display()))?;
        let mut passwords = String::from("# Written by jetsaga-scenarios: fresh passwords.\n");
        for user in Self::ALL {
            let password = uuid::Uuid::new_v4().simple().to_string();
            passwords.push_str(&format!(
                "JETSAGA_NATS_{}_PASSWORD: \"{password}\"\n",
                user.to_uppercase()
            ));
            users.passwords.push((user, password));
        }
        std::fs::write(users.dir.join("passwords.conf"), passwords)
            .with_context(|| format!("writing passwords.conf in {}", users.dir.display()))?;
        Ok(users)
    }

    /// Starts a nats-server (JetStream on, own port and store) that admits only these users.
    pub async fn start_server(&self) -> anyhow::Result<NatsServer> {
        // An include is relative to the including file. The testkit writes its config into a dir
        // of its own directly in the temp dir (`<tmp>/jetsaga-nats-<uuid>`), beside this one.
        let name = self
            .dir
            .file_name()
            .and_then(|n| n.to_str())
            .context("the users dir has no name")?;
        NatsServer::start_with_config(&format!("include \"../{name}/users.conf\"\n")).await
    }

    /// The URL of `server` with `user`'s credentials.
    pub fn url(&self, server: &NatsServer, user: &str) -> anyhow::Result<String> {
        let password = self
            .passwords
            .iter()
            .find(|(u, _)| *u == user)
            .map(|(_, p)| p)
            .with_context(|| format!("nats/users.conf has no user {user}"))?;
        Ok(format!(
            "nats://{user}:{password}@127.0.0.1:{}",
            server.port()
        ))
    }

    /// A client connected as `user`, the way the services connect
    /// ([`saga_kit::provision::connect_options`]: the URL's credentials, the user's own inbox).
    pub async fn connect(
        &self,
        server: &NatsServer,
        user: &str,
    ) -> anyhow::Result<async_nats::Client> {
        let url = self.url(server, user)?;
        let client = saga_kit::provision::connect_options(&url, &format!("scenario-{user}"))
            .connect(&url)
            .await
            .with_context(|| format!("connecting to NATS as {user}"))?;
        tokio::time::timeout(Duration::from_secs(10), client.flush())
            .await
            .map_err(anyhow::Error::from)
            .and_then(|flushed| flushed.map_err(anyhow::Error::from))
            .with_context(|| {
                format!(
                    "NATS did not admit {user} within 10 s\n{}",
                    server.log_tail()
                )
            })?;
        Ok(client)
    }

    /// Provisions the streams as the admin, as `jetsaga provision` does in a deployment.
    pub async fn provision_streams(&self, server: &NatsServer) -> anyhow::Result<()> {
        let js = async_nats::jetstream::new(self.connect(server, "admin").await?);
        saga_kit::provision::ensure_streams(&js, &saga_kit::provision::StreamSettings::default())
            .await
            .context("provisioning the streams as admin")
    }
}

impl Drop for NatsUsers {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
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
    /// The URL tests and tools use: the admin's when locked down.
    nats_url: String,
    /// The users when locked down; declared after `nats`, so the server stops before its
    /// config goes.
    users: Option<NatsUsers>,
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
                users: None,
                procs: Vec::new(),
                options,
                dir: std::env::temp_dir(),
            });
        }
        let (nats, users) = match options.nats {
            NatsSetup::Open => (NatsServer::start().await?, None),
            NatsSetup::LockedDown => {
                let users = NatsUsers::create()?;
                let nats = users.start_server().await?;
                users.provision_streams(&nats).await?;
                (nats, Some(users))
            }
        };
        let nats_url = match &users {
            Some(users) => users.url(&nats, "admin")?,
            None => nats.url(),
        };
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
        let api = Api::new(&url(0), &url(2), &url(3), &url(1));
        let api = api.with_nats(&nats_url);
        let mut system = System {
            nats_url,
            nats: Some(nats),
            users,
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

    /// The NATS URL a service connects with: its own user's when locked down.
    pub fn service_nats_url(&self, svc: Svc) -> anyhow::Result<String> {
        match (&self.users, &self.nats) {
            (Some(users), Some(nats)) => users.url(nats, svc.name()),
            _ => Ok(self.nats_url.clone()),
        }
    }

    fn spawn(&mut self, svc: Svc) -> anyhow::Result<()> {
        let bin = bin_dir()?.join(format!("{}-service", svc.name()));
        anyhow::ensure!(
            bin.exists(),
            "{} is not built: run `cargo build --workspace --bins` (scripts/test does)",
            bin.display()
        );
        let options = self.options.clone();
        let nats_url = self.service_nats_url(svc)?;
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
        let text = self.log(svc);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Everything a service has logged so far, across restarts (empty when external).
    pub fn log(&self, svc: Svc) -> String {
        self.procs
            .get(svc.index())
            .and_then(|p| std::fs::read_to_string(&p.log).ok())
            .unwrap_or_default()
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
