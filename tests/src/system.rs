//! The five services as OS processes, each with its own database, on one nats-server: an open one
//! by default, or one locked down with the users and permissions of `nats/users.conf`.

use crate::api::Api;
use crate::listening;
use anyhow::Context;
use jetsaga_testkit::{free_port, NatsServer, TestDb};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One of the five services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Svc {
    Order,
    Voucher,
    Payment,
    Stock,
    Points,
}

impl Svc {
    pub const ALL: [Svc; 5] = [
        Svc::Order,
        Svc::Voucher,
        Svc::Payment,
        Svc::Stock,
        Svc::Points,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Svc::Order => "order",
            Svc::Voucher => "voucher",
            Svc::Payment => "payment",
            Svc::Stock => "stock",
            Svc::Points => "points",
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

/// The operator the harness's services admit (`ADMIN_TOKENS`), named in its admin events.
pub const OPERATOR: &str = "scenarios";

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
    /// Processes per service, sharing its database and durable consumers.
    pub instances: usize,
    /// JetStream writes every message to disk before acking it (`sync_interval: always`).
    pub durable: bool,
    /// Extra environment for every service process (e.g. `CONSUMER_CONCURRENCY`), after the
    /// harness's own settings.
    pub service_env: Vec<(String, String)>,
    /// Services reach NATS through a proxy the test can cut ([`System::cut_nats`]).
    pub netcut: bool,
    /// PostgreSQL commits of the services return before their WAL is flushed
    /// (`synchronous_commit=off`): faster, and a database crash may lose the last commits.
    pub async_commit: bool,
    /// NATS is a 3-node cluster and the streams have 3 replicas ([`System::nats`] is the first
    /// node, [`System::nats_peers`] the others). Not with `netcut` or `LockedDown`.
    pub cluster: bool,
}

impl Default for SystemOptions {
    fn default() -> Self {
        SystemOptions {
            order_deadline: Duration::from_secs(30),
            ack_wait: Duration::from_secs(3),
            nats: NatsSetup::Open,
            instances: 1,
            durable: false,
            service_env: Vec::new(),
            netcut: false,
            cluster: false,
            async_commit: false,
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
    pub const ALL: [&'static str; 6] = ["admin", "order", "voucher", "points", "payment", "stock"];

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
        saga_kit::provision::ensure_streams(
            &js,
            &jetsaga_contracts::Producer::ALL,
            &saga_kit::provision::StreamSettings::default(),
        )
        .await
        .context("provisioning the streams as admin")
    }
}

impl Drop for NatsUsers {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One service process: instance `instance` of `svc`.
struct Proc {
    svc: Svc,
    instance: usize,
    port: u16,
    child: Option<Child>,
    log: PathBuf,
}

/// A running system. Dropping it kills the processes, the server and drops the databases.
#[allow(missing_debug_implementations)]
pub struct System {
    pub nats: Option<NatsServer>,
    /// Its admin calls carry the token of the operator [`OPERATOR`] every service of this
    /// system admits (a new one per system): [`Api::operator_token`].
    pub api: Api,
    /// The URL tests and tools use: the admin's when locked down.
    nats_url: String,
    /// The users when locked down; declared after `nats`, so the server stops before its
    /// config goes.
    users: Option<NatsUsers>,
    /// The second and third node of a cluster.
    pub nats_peers: Vec<NatsServer>,
    /// The proxy between the services and NATS, when the options ask for one.
    netcut: Option<crate::netcut::NetCut>,
    /// Instance 0 of each service first, in [`Svc::ALL`] order, then the further instances.
    procs: Vec<Proc>,
    /// One database per service, in [`Svc::ALL`] order; dropped after the processes.
    dbs: Vec<TestDb>,
    options: SystemOptions,
    /// The folder of the processes' logs, which this system made and removes when dropped. None
    /// against a running deployment: there it owns no folder, and must remove none.
    dir: Option<PathBuf>,
}

/// How many times an instance is moved to a new port when another process took its own.
const PORT_MOVES: usize = 3;

/// Whether `/health` on `port` answers 200 as `svc`.
async fn answers_health(client: &reqwest::Client, svc: Svc, port: u16) -> bool {
    let answer = client
        .get(format!("http://127.0.0.1:{port}/health"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    let Ok(answer) = answer else {
        return false;
    };
    if !answer.status().is_success() {
        return false;
    }
    answer
        .json::<serde_json::Value>()
        .await
        .is_ok_and(|body| body["service"] == svc.name())
}

/// The directory of the built service binaries: `JETSAGA_BIN_DIR`, or beside this executable
/// (the `jetsaga` CLI), or next to the test executable's `deps/` folder.
fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("JETSAGA_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe()?;
    let here = exe.parent().context("executable has no parent directory")?;
    if here.join("order-service").exists() {
        return Ok(here.to_path_buf());
    }
    let dir = here
        .parent()
        .context("test executable has no parent directory")?;
    Ok(dir.to_path_buf())
}

/// Creates the streams with 3 replicas once the cluster has a JetStream leader (a few seconds
/// after its nodes start).
async fn provision_replicated(nats_url: &str) -> anyhow::Result<()> {
    let client = saga_kit::provision::connect(nats_url, "scenario-provision").await?;
    let js = async_nats::jetstream::new(client);
    let settings = saga_kit::provision::StreamSettings {
        replicas: 3,
        ..saga_kit::provision::StreamSettings::default()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match saga_kit::provision::ensure_streams(&js, &jetsaga_contracts::Producer::ALL, &settings)
            .await
        {
            Ok(()) => return Ok(()),
            // No JetStream leader yet.
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e).context("creating R3 streams on the 3-node cluster"),
        }
    }
}

/// A binary of the workspace (a service, or the `jetsaga` CLI), built beside the tests.
pub fn workspace_binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = bin_dir()?.join(name);
    anyhow::ensure!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` (scripts/test does)",
        path.display()
    );
    Ok(path)
}

impl System {
    /// Whether the scenarios run against an already running deployment.
    /// Its admin calls carry `JETSAGA_ADMIN_TOKEN`, an operator's token of that deployment.
    pub fn external() -> Option<Api> {
        let get = |name: &str| std::env::var(name).ok();
        let api = Api::new(
            &get("JETSAGA_ORDER_URL")?,
            &get("JETSAGA_PAYMENT_URL")?,
            &get("JETSAGA_STOCK_URL")?,
            &get("JETSAGA_VOUCHER_URL")?,
            &get("JETSAGA_POINTS_URL")?,
        );
        Some(match get("JETSAGA_ADMIN_TOKEN") {
            Some(token) => api.with_operator_token(&token),
            None => api,
        })
    }

    /// Starts nats-server, five databases and the five services, and waits until all are healthy.
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
                nats_peers: Vec::new(),
                netcut: None,
                procs: Vec::new(),
                dbs: Vec::new(),
                options,
                dir: None,
            });
        }
        anyhow::ensure!(
            !(options.cluster && (options.netcut || options.nats == NatsSetup::LockedDown)),
            "a cluster system has neither a cuttable link nor locked-down users"
        );
        let mut nats_peers = Vec::new();
        let (nats, users) = match options.nats {
            NatsSetup::Open if options.cluster => {
                let mut nodes = NatsServer::start_cluster(3).await?;
                nats_peers = nodes.split_off(1);
                (nodes.remove(0), None)
            }
            NatsSetup::Open if options.durable => (
                NatsServer::start_with_config("jetstream { sync_interval: always }").await?,
                None,
            ),
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
            None => std::iter::once(&nats)
                .chain(&nats_peers)
                .map(NatsServer::url)
                .collect::<Vec<_>>()
                .join(","),
        };
        if options.cluster {
            provision_replicated(&nats_url).await?;
        }
        let dir =
            std::env::temp_dir().join(format!("jetsaga-system-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let mut dbs = Vec::new();
        let mut procs = Vec::new();
        for svc in Svc::ALL {
            dbs.push(TestDb::create(svc.name()).await?);
        }
        for instance in 0..options.instances.max(1) {
            for svc in Svc::ALL {
                procs.push(Proc {
                    svc,
                    instance,
                    port: free_port()?,
                    child: None,
                    log: dir.join(format!("{}-{instance}.log", svc.name())),
                });
            }
        }
        let url = |i: usize| format!("http://127.0.0.1:{}", procs[i].port);
        let operator_token = format!("op-{}", uuid::Uuid::new_v4().simple());
        let api = Api::new(&url(0), &url(2), &url(3), &url(1), &url(4))
            .with_nats(&nats_url)
            .with_operator_token(&operator_token);
        let netcut = if options.netcut {
            Some(crate::netcut::NetCut::start(([127, 0, 0, 1], nats.port()).into()).await?)
        } else {
            None
        };
        let mut system = System {
            nats_url,
            nats: Some(nats),
            users,
            nats_peers,
            netcut,
            api,
            procs,
            dbs,
            options,
            dir: Some(dir),
        };
        for i in 0..system.procs.len() {
            system.spawn_proc(i)?;
        }
        for i in 0..system.procs.len() {
            system.settle_proc(i).await?;
        }
        Ok(system)
    }

    pub fn is_external(&self) -> bool {
        self.procs.is_empty()
    }

    pub fn nats_url(&self) -> &str {
        &self.nats_url
    }

    /// The NATS URL a service connects with: its own user's when locked down, through the proxy
    /// when it can be cut.
    pub fn service_nats_url(&self, svc: Svc) -> anyhow::Result<String> {
        match (&self.users, &self.nats, &self.netcut) {
            (Some(users), Some(nats), _) => users.url(nats, svc.name()),
            (None, _, Some(cut)) => Ok(format!("nats://{}", cut.addr())),
            _ => Ok(self.nats_url.clone()),
        }
    }

    /// Cuts the services off NATS (the test itself still reaches it).
    pub fn cut_nats(&self, how: crate::netcut::Cut) -> anyhow::Result<()> {
        self.netcut
            .as_ref()
            .context("the system was started without `netcut`")?
            .cut(how);
        Ok(())
    }

    /// Ends a [`System::cut_nats`].
    pub fn heal_nats(&self) {
        if let Some(cut) = &self.netcut {
            cut.heal();
        }
    }

    /// The index in `procs` of an instance.
    fn proc_index(&self, svc: Svc, instance: usize) -> anyhow::Result<usize> {
        self.procs
            .iter()
            .position(|p| p.svc == svc && p.instance == instance)
            .with_context(|| format!("{} has no instance {instance}", svc.name()))
    }

    fn spawn_proc(&mut self, i: usize) -> anyhow::Result<()> {
        let svc = self.procs[i].svc;
        let bin = workspace_binary(&format!("{}-service", svc.name()))?;
        let options = self.options.clone();
        let nats_url = self.service_nats_url(svc)?;
        let mut db_url = self
            .dbs
            .get(svc.index())
            .map(|d| d.url())
            .unwrap_or_default();
        if options.async_commit {
            let sep = if db_url.contains('?') { '&' } else { '?' };
            db_url.push_str(&format!("{sep}options=-c%20synchronous_commit%3Doff"));
        }
        let p = &mut self.procs[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p.log)?;
        let operator_token = self
            .api
            .operator_token()
            .context("a started system's API carries its operator token")?;
        let mut command = Command::new(&bin);
        command
            .env("HTTP_ADDR", format!("127.0.0.1:{}", p.port))
            .env("DATABASE_URL", db_url)
            .env("NATS_URL", nats_url)
            .env(
                "ACK_WAIT_SECS",
                options.ack_wait.as_secs().max(1).to_string(),
            )
            // Two systems run at once beside other tests, within PostgreSQL's 100 connections.
            .env("DB_MAX_CONNECTIONS", "5")
            .env(
                "ORDER_DEADLINE_SECS",
                options.order_deadline.as_secs().max(1).to_string(),
            )
            .env("DEADLINE_SWEEP_MS", "200")
            .env("ADMIN_TOKENS", format!("{OPERATOR}={operator_token}"))
            .env(
                "RUST_LOG",
                std::env::var("SERVICE_LOG").unwrap_or_else(|_| "warn".into()),
            );
        if options.cluster {
            command.env("STREAM_REPLICAS", "3");
        }
        for (name, value) in &options.service_env {
            command.env(name, value);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        p.child = Some(child);
        Ok(())
    }

    /// Waits until the service (instance 0) answers `/health` with 200.
    pub async fn wait_healthy(&mut self, svc: Svc) -> anyhow::Result<()> {
        let i = self.proc_index(svc, 0)?;
        self.settle_proc(i).await
    }

    /// Waits until the instance just spawned at `i` is healthy. One that could not listen on its
    /// port, because another process took the port after it was picked, is started again on a new
    /// port (and the API follows it).
    async fn settle_proc(&mut self, i: usize) -> anyhow::Result<()> {
        let mut moves = 0;
        loop {
            match self.wait_healthy_proc(i).await {
                Err(e) if moves < PORT_MOVES && self.lost_its_port(i) => {
                    moves += 1;
                    let p = &mut self.procs[i];
                    let taken = p.port;
                    p.port = free_port()?;
                    eprintln!(
                        "{} instance {}: port {taken} was taken by another process; moving to {} ({e:#})",
                        p.svc.name(),
                        p.instance,
                        p.port
                    );
                    if p.instance == 0 {
                        let (svc, base) = (p.svc, format!("http://127.0.0.1:{}", p.port));
                        self.api.set_base(svc, &base);
                    }
                    self.spawn_proc(i)?;
                }
                other => return other,
            }
        }
    }

    fn not_healthy(&self, i: usize, why: String) -> anyhow::Error {
        let p = &self.procs[i];
        // This instance's own log: instance 0's says nothing about why instance 1 exited.
        let log = read_log(&p.log);
        anyhow::anyhow!(
            "{} instance {} is not healthy: {why}\n--- {} instance {} log ---\n{}",
            p.svc.name(),
            p.instance,
            p.svc.name(),
            p.instance,
            last_lines(&log)
        )
    }

    /// Whether the instance at `i` exited because its port was in use.
    fn lost_its_port(&self, i: usize) -> bool {
        let p = &self.procs[i];
        p.child.is_none() && listening::says_port_in_use(&read_log(&p.log))
    }

    /// Waits until the instance at `i` is healthy: its own process listens on its port and answers
    /// `/health` with 200 as the service it is. A `/health` of another process that took the port
    /// does not count. An instance that exits meanwhile is an error at once.
    async fn wait_healthy_proc(&mut self, i: usize) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let (svc, instance, port) = (
            self.procs[i].svc,
            self.procs[i].instance,
            self.procs[i].port,
        );
        loop {
            let child = self.procs[i].child.as_mut().ok_or_else(|| {
                anyhow::anyhow!("{} instance {instance} is not running", svc.name())
            })?;
            if let Some(status) = child.try_wait()? {
                self.procs[i].child = None;
                return Err(self.not_healthy(i, format!("it exited while starting ({status})")));
            }
            let pid = child.id();
            if listening::listens_on(pid, port) && answers_health(&client, svc, port).await {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(
                    self.not_healthy(i, format!("it did not answer on port {port} within 30 s"))
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The base URL of every instance of a service, e.g. to spread load over them.
    pub fn bases(&self, svc: Svc) -> Vec<String> {
        if self.procs.is_empty() {
            return vec![self.api.base(svc).to_owned()];
        }
        self.procs
            .iter()
            .filter(|p| p.svc == svc)
            .map(|p| format!("http://127.0.0.1:{}", p.port))
            .collect()
    }

    /// Every running process of the system with a name (`order-0`, `nats-server`), for CPU
    /// accounting.
    pub fn pids(&self) -> Vec<(String, u32)> {
        let mut pids: Vec<(String, u32)> = self
            .procs
            .iter()
            .filter_map(|p| {
                p.child
                    .as_ref()
                    .map(|c| (format!("{}-{}", p.svc.name(), p.instance), c.id()))
            })
            .collect();
        if let Some(pid) = self.nats.as_ref().and_then(NatsServer::pid) {
            pids.push(("nats-server".to_owned(), pid));
        }
        for (i, peer) in self.nats_peers.iter().enumerate() {
            if let Some(pid) = peer.pid() {
                pids.push((format!("nats-server-{}", i + 2), pid));
            }
        }
        pids
    }

    pub fn log_tail(&self, svc: Svc) -> String {
        last_lines(&self.log(svc))
    }

    /// Everything instance 0 of a service has logged so far, across restarts (empty when
    /// external).
    pub fn log(&self, svc: Svc) -> String {
        self.proc_index(svc, 0)
            .map(|i| read_log(&self.procs[i].log))
            .unwrap_or_default()
    }

    fn pid(&self, svc: Svc, instance: usize) -> anyhow::Result<Pid> {
        let child = self.procs[self.proc_index(svc, instance)?]
            .child
            .as_ref()
            .with_context(|| format!("{} instance {instance} is not running", svc.name()))?;
        Ok(Pid::from_raw(i32::try_from(child.id())?))
    }

    /// SIGKILL, as a crash (instance 0).
    pub fn kill(&mut self, svc: Svc) -> anyhow::Result<()> {
        self.kill_instance(svc, 0)
    }

    /// SIGKILL of one instance.
    pub fn kill_instance(&mut self, svc: Svc, instance: usize) -> anyhow::Result<()> {
        let i = self.proc_index(svc, instance)?;
        if let Some(mut child) = self.procs[i].child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGCONT);
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGSTOP: the process stays, but does nothing (and acks nothing).
    pub fn pause(&self, svc: Svc) -> anyhow::Result<()> {
        self.pause_instance(svc, 0)
    }

    pub fn pause_instance(&self, svc: Svc, instance: usize) -> anyhow::Result<()> {
        kill(self.pid(svc, instance)?, Signal::SIGSTOP)?;
        Ok(())
    }

    /// SIGCONT after [`System::pause`].
    pub fn resume(&self, svc: Svc) -> anyhow::Result<()> {
        self.resume_instance(svc, 0)
    }

    pub fn resume_instance(&self, svc: Svc, instance: usize) -> anyhow::Result<()> {
        kill(self.pid(svc, instance)?, Signal::SIGCONT)?;
        Ok(())
    }

    /// Starts a killed service again and waits until it is healthy.
    pub async fn restart(&mut self, svc: Svc) -> anyhow::Result<()> {
        self.restart_instance(svc, 0).await
    }

    /// Starts one (killed) instance again and waits until it is healthy.
    pub async fn restart_instance(&mut self, svc: Svc, instance: usize) -> anyhow::Result<()> {
        self.kill_instance(svc, instance)?;
        let i = self.proc_index(svc, instance)?;
        self.spawn_proc(i)?;
        self.settle_proc(i).await
    }

    /// How many instances of a service the system runs (0 when external).
    pub fn instance_count(&self, svc: Svc) -> usize {
        self.procs.iter().filter(|p| p.svc == svc).count()
    }

    /// SIGTERM of one instance, as a deploy stops it, then waits up to `grace` for it to exit and
    /// returns how it exited. One still running after `grace` is killed, and that is an error: a
    /// graceful stop that does not end is a defect of its own.
    pub async fn stop_instance(
        &mut self,
        svc: Svc,
        instance: usize,
        grace: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let i = self.proc_index(svc, instance)?;
        let pid = self.pid(svc, instance)?;
        // A paused process would not act on the signal.
        let _ = kill(pid, Signal::SIGCONT);
        kill(pid, Signal::SIGTERM)?;
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let child = self.procs[i]
                .child
                .as_mut()
                .context("the instance vanished while stopping")?;
            if let Some(status) = child.try_wait()? {
                self.procs[i].child = None;
                return Ok(status);
            }
            if tokio::time::Instant::now() >= deadline {
                self.kill_instance(svc, instance)?;
                anyhow::bail!(
                    "{} instance {instance} did not exit within {grace:?} of SIGTERM; killed it",
                    svc.name()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A graceful restart of one instance, as a rolling deploy does it: [`System::stop_instance`],
    /// then the same instance started again, and waits until it is healthy. Returns how the old
    /// process exited.
    pub async fn restart_instance_gracefully(
        &mut self,
        svc: Svc,
        instance: usize,
        grace: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let status = self.stop_instance(svc, instance, grace).await?;
        let i = self.proc_index(svc, instance)?;
        self.spawn_proc(i)?;
        self.settle_proc(i).await?;
        Ok(status)
    }

    /// The URL of a service's database, for tools that connect on their own (the `jetsaga` CLI).
    pub fn database_url(&self, svc: Svc) -> anyhow::Result<String> {
        Ok(self
            .dbs
            .get(svc.index())
            .context("external deployment: no database access")?
            .url())
    }

    /// A PostgreSQL pool on a service's database, for assertions the API cannot make.
    pub async fn db(&self, svc: Svc) -> anyhow::Result<sqlx::PgPool> {
        self.dbs
            .get(svc.index())
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
        self.dbs.clear();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A service's log as text, whatever bytes it holds: `read_to_string` gives nothing at all for a
/// log with one invalid UTF-8 byte, which would show a failed start an empty log and hide that
/// its port was taken. Empty when there is no log.
fn read_log(path: &Path) -> String {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// The last 40 lines of a log, for an error message; when the process ended with an `Error:`
/// report (its causes and backtrace after it), the 10 lines before it and the report, so a
/// backtrace does not push the error out. An earlier run's report, with a later run logged after
/// it (the log is appended across restarts), is not the one shown.
fn last_lines(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let part_of_the_report = |l: &&str| l.is_empty() || l.starts_with(' ') || l.ends_with(':');
    let report = lines
        .iter()
        .rposition(|l| l.starts_with("Error: "))
        .filter(|&error| lines[error + 1..].iter().all(part_of_the_report));
    let from = match report {
        Some(error) => error.saturating_sub(10),
        None => lines.len().saturating_sub(40),
    };
    lines[from..lines.len().min(from + 40)].join("\n")
}

#[cfg(test)]
mod tests {
    use super::last_lines;

    #[test]
    fn a_failed_start_shows_the_error_and_not_the_tail_of_its_backtrace() {
        let mut log = String::from("a warning\nError: cannot bind\n\nStack backtrace:\n");
        for frame in 0..60 {
            log.push_str(&format!("  {frame}: main\n"));
        }
        let shown = last_lines(&log);
        assert!(
            shown.starts_with("a warning\nError: cannot bind"),
            "{shown}"
        );
        assert_eq!(shown.lines().count(), 40);
    }

    #[test]
    fn an_earlier_runs_error_is_not_shown_for_the_run_logged_after_it() {
        let mut log = String::from("Error: cannot bind\n\nCaused by:\n    in use\n");
        for line in 0..50 {
            log.push_str(&format!("the next run, line {line}\n"));
        }
        log.push_str("voucher-service failed: migrations failed\n");
        let shown = last_lines(&log);
        assert!(
            shown.ends_with("voucher-service failed: migrations failed"),
            "{shown}"
        );
    }

    #[test]
    fn a_log_without_an_error_shows_its_last_40_lines() {
        let log: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let shown = last_lines(&log);
        assert!(
            shown.starts_with("line 60\n") && shown.ends_with("line 99"),
            "{shown}"
        );
    }
}
