//! A real nats-server process per test: free port, own JetStream store, killed on drop.
//!
//! The process is a [`std::process::Child`], so [`NatsServer::kill`] and `Drop` work without a
//! tokio runtime. Readiness is observed, never assumed: a start waits until the server's own log
//! says "Server is ready" *and* its port answers with an `INFO` line. The log check matters when
//! tests run in parallel: another test's server may have taken the port between our probe and our
//! bind, and then the port answers although our server is about to exit with "address already in
//! use". Such a start is retried on a new port.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt as _;
use tokio::time::{sleep, timeout, Instant};

pub use crate::nats_binary::{
    find_nats_server, find_old_nats_server, parse_server_version, server_version,
};
use crate::port::free_port;

/// How long a start may take before it fails.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `restart` keeps retrying while the old port is still taken.
const RESTART_BIND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `stop` waits for the process to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How many fresh ports a start tries when the port was taken by someone else.
const START_ATTEMPTS: u32 = 5;
const POLL: Duration = Duration::from_millis(20);
/// How many lines of log a failure message shows.
const TAIL_LINES: usize = 30;

/// A real nats-server process on a free 127.0.0.1 port, with JetStream on and its own store
/// directory inside a temp dir (`<tmp>/jetsaga-nats-<uuid>`).
///
/// Dropping it kills the process (if alive) and removes the temp dir.
#[derive(Debug)]
pub struct NatsServer {
    binary: PathBuf,
    /// The temp dir holding the config, the logs and the store; removed on drop.
    dir: PathBuf,
    store_dir: PathBuf,
    config_file: PathBuf,
    extra_config: String,
    port: u16,
    /// `None` once stopped or killed.
    child: Option<Child>,
    /// Counts starts, to give each run its own log files.
    generation: u32,
    /// Keep `dir` on drop (a store that outlives the process, for `jetsaga dev`).
    keep_dir: bool,
}

/// Why one attempt to start did not give a ready server.
enum StartFailure {
    /// The port was taken: try another (or the same one again, later).
    PortTaken(String),
    /// Anything else: give up.
    Fatal(anyhow::Error),
}

impl NatsServer {
    /// Starts the nats-server found by [`find_nats_server`] (2.10+) with JetStream on, and waits
    /// until it accepts connections.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with_config("").await
    }

    /// Like [`start`](Self::start), with `extra` appended to the server's config file
    /// (nats-server `-c` syntax), e.g. `jetstream { sync_interval: always }` or an
    /// `authorization { users = [...] }` block.
    ///
    /// The store dir is set at the config's top level (`store_dir: ..`), so a
    /// `jetstream { .. }` block in `extra` keeps the store in this server's temp dir; `extra`
    /// must not set `store_dir` itself. The log file is given with `-l` on the command line.
    pub async fn start_with_config(extra: &str) -> anyhow::Result<Self> {
        let binary = find_nats_server()?;
        Self::launch(binary, extra).await
    }

    /// Like [`start`](Self::start), but keeps its config, logs and store in `dir`, which is
    /// created when missing and kept on drop: streams survive from one run to the next.
    pub async fn start_in(dir: &Path) -> anyhow::Result<Self> {
        let binary = find_nats_server()?;
        Self::launch_in(binary, dir.to_owned(), "", true).await
    }

    /// `nodes` servers forming one JetStream cluster on free ports (each with its own store), for
    /// replicated streams; they are ready for clients when this returns, and elect a JetStream
    /// leader within seconds.
    pub async fn start_cluster(nodes: usize) -> anyhow::Result<Vec<Self>> {
        let binary = find_nats_server()?;
        let route_ports: Vec<u16> = (0..nodes)
            .map(|_| free_port())
            .collect::<anyhow::Result<_>>()?;
        let routes: Vec<String> = route_ports
            .iter()
            .map(|p| format!("nats-route://127.0.0.1:{p}"))
            .collect();
        let cluster = uuid::Uuid::new_v4().simple().to_string();
        let mut servers = Vec::with_capacity(nodes);
        for (i, port) in route_ports.iter().enumerate() {
            let extra = format!(
                "server_name: n{i}-{cluster}\n\
                 cluster {{\n  name: c{cluster}\n  listen: \"127.0.0.1:{port}\"\n  routes: [{}]\n}}\n",
                routes.join(", ")
            );
            servers.push(Self::launch(binary.clone(), &extra).await?);
        }
        Ok(servers)
    }

    /// Starts a specific binary, e.g. an old 2.9 server for a refusal test, with JetStream on.
    pub async fn start_binary(binary: &Path) -> anyhow::Result<Self> {
        Self::launch(binary.to_owned(), "").await
    }

    /// The client URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port; it stays the same across [`restart`](Self::restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store dir (the server keeps its data in `<store_dir>/jetstream`).
    pub fn store_dir(&self) -> &Path {
        &self.store_dir
    }

    /// The process id, `None` once stopped or killed.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Connects a plain client (no reconnect tuning) to this server.
    pub async fn connect(&self) -> anyhow::Result<async_nats::Client> {
        async_nats::connect(self.url())
            .await
            .with_context(|| format!("connecting to nats-server at {}", self.url()))
    }

    /// The last lines of the current run's log and stderr, for failure messages.
    pub fn log_tail(&self) -> String {
        self.tail()
    }

    /// Stops the server gracefully: SIGTERM (and SIGCONT, in case it is paused), then waits for
    /// the process to exit. If it has not exited after 10 s it is killed and an error returned.
    /// Does nothing when the server is not running.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(child) = self.child.as_mut() else {
            return Ok(());
        };
        let pid = pid_of(child);
        // A process that already exited is fine; ESRCH is not an error here.
        let _ = signal::kill(pid, Signal::SIGTERM);
        let _ = signal::kill(pid, Signal::SIGCONT);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if child
                .try_wait()
                .context("waiting for nats-server")?
                .is_some()
            {
                self.child = None;
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                bail!(
                    "nats-server (pid {pid}) did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed it.\n{}",
                    self.tail()
                );
            }
            sleep(POLL).await;
        }
    }

    /// Kills the server with SIGKILL (a crash: no flush, no goodbye) and reaps it.
    /// Does nothing when the server is not running.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            let pid = child.id();
            child
                .kill()
                .with_context(|| format!("sending SIGKILL to nats-server (pid {pid})"))?;
            child
                .wait()
                .with_context(|| format!("waiting for nats-server (pid {pid}) to exit"))?;
        }
        Ok(())
    }

    /// Freezes the server with SIGSTOP: its connections stay open but nothing is answered.
    ///
    /// Returns once every thread of the process is stopped (as seen in `/proc`), because a
    /// signal is delivered asynchronously: without the wait, a busy machine lets the server
    /// answer a request sent right after `pause()`.
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal(Signal::SIGSTOP)?;
        let pid = self.pid().context("nats-server is not running")?;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !all_threads_stopped(pid) {
            if std::time::Instant::now() >= deadline {
                bail!("nats-server (pid {pid}) did not stop within 5s of SIGSTOP");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Thaws a server frozen by [`pause`](Self::pause) (SIGCONT).
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal(Signal::SIGCONT)
    }

    /// Starts the server again on the same port with the same store dir and config, and waits
    /// until it is ready. A server still running is stopped first. While the port is still
    /// taken (e.g. by a socket in TIME_WAIT) it retries for a few seconds.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await?;
        let deadline = Instant::now() + RESTART_BIND_TIMEOUT;
        loop {
            match self.try_start().await {
                Ok(()) => return Ok(()),
                Err(StartFailure::PortTaken(tail)) if Instant::now() < deadline => {
                    tracing::debug!(port = self.port, "port still taken, retrying restart\n{tail}");
                    sleep(Duration::from_millis(100)).await;
                }
                Err(StartFailure::PortTaken(tail)) => bail!(
                    "could not restart nats-server on port {}: the port stayed taken for {RESTART_BIND_TIMEOUT:?}\n{tail}",
                    self.port
                ),
                Err(StartFailure::Fatal(e)) => return Err(e),
            }
        }
    }

    async fn launch(binary: PathBuf, extra: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("jetsaga-nats-{}", uuid::Uuid::new_v4()));
        Self::launch_in(binary, dir, extra, false).await
    }

    async fn launch_in(
        binary: PathBuf,
        dir: PathBuf,
        extra: &str,
        keep_dir: bool,
    ) -> anyhow::Result<Self> {
        let store_dir = dir.join("store");
        fs::create_dir_all(&store_dir)
            .with_context(|| format!("creating nats-server temp dir {}", dir.display()))?;
        let mut server = NatsServer {
            binary,
            config_file: dir.join("nats-server.conf"),
            dir,
            store_dir,
            extra_config: extra.to_owned(),
            port: 0,
            child: None,
            generation: 0,
            keep_dir,
        };
        // On error `server` is dropped here, which removes the temp dir.
        for attempt in 1..=START_ATTEMPTS {
            server.port = free_port()?;
            server.write_config()?;
            match server.try_start().await {
                Ok(()) => return Ok(server),
                Err(StartFailure::PortTaken(tail)) => {
                    tracing::debug!(attempt, port = server.port, "port taken, retrying\n{tail}");
                }
                Err(StartFailure::Fatal(e)) => return Err(e),
            }
        }
        Err(anyhow!(
            "nats-server ({}) found its port taken {START_ATTEMPTS} times in a row\n{}",
            server.binary.display(),
            server.tail()
        ))
    }

    /// The config: listen address, store dir and JetStream on, then `extra`.
    ///
    /// `store_dir` is given at the top level, not inside `jetstream { .. }`: a later
    /// `jetstream { .. }` block in `extra` replaces an earlier one as a whole, and would silently
    /// move the store to the server's default dir, shared by every test on the machine. A
    /// `store_dir` in `extra` is refused by the server as a duplicate, which is loud.
    fn write_config(&self) -> anyhow::Result<()> {
        let text = format!(
            "# Written by jetsaga-testkit.\n\
             listen: \"127.0.0.1:{port}\"\n\
             store_dir: {store:?}\n\
             jetstream: enabled\n\
             \n\
             {extra}\n",
            port = self.port,
            store = self.store_dir.display().to_string(),
            extra = self.extra_config,
        );
        fs::write(&self.config_file, text)
            .with_context(|| format!("writing {}", self.config_file.display()))
    }

    fn log_file(&self) -> PathBuf {
        self.dir
            .join(format!("nats-server.{}.log", self.generation))
    }

    fn stderr_file(&self) -> PathBuf {
        self.dir
            .join(format!("nats-server.{}.stderr", self.generation))
    }

    /// One attempt: spawn the process, then wait until it is ready or gone.
    async fn try_start(&mut self) -> Result<(), StartFailure> {
        self.generation += 1;
        let stderr = File::create(self.stderr_file())
            .context("creating the nats-server stderr file")
            .map_err(StartFailure::Fatal)?;
        let stdout = stderr
            .try_clone()
            .context("cloning the nats-server stderr file")
            .map_err(StartFailure::Fatal)?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config_file)
            .arg("-l")
            .arg(self.log_file())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("spawning {}", self.binary.display()))
            .map_err(StartFailure::Fatal)?;
        self.child = Some(child);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<(), StartFailure> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let Some(child) = self.child.as_mut() else {
                return Err(StartFailure::Fatal(anyhow!("nats-server is not running")));
            };
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return Err(self.exited_early(status));
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(StartFailure::Fatal(
                        anyhow!(e).context("waiting for nats-server"),
                    ))
                }
            }
            if self.log_says_ready() && answers_info(self.port).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let tail = self.tail();
                if let Some(mut child) = self.child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                return Err(StartFailure::Fatal(anyhow!(
                    "nats-server ({}) was not ready on port {} within {READY_TIMEOUT:?}\n{tail}",
                    self.binary.display(),
                    self.port
                )));
            }
            sleep(POLL).await;
        }
    }

    fn exited_early(&self, status: ExitStatus) -> StartFailure {
        let tail = self.tail();
        if tail.contains("address already in use") {
            StartFailure::PortTaken(tail)
        } else {
            StartFailure::Fatal(anyhow!(
                "nats-server ({}) exited during start-up ({status})\n{tail}",
                self.binary.display()
            ))
        }
    }

    fn log_says_ready(&self) -> bool {
        fs::read_to_string(self.log_file()).is_ok_and(|log| log.contains("Server is ready"))
    }

    fn tail(&self) -> String {
        let mut out = String::new();
        for (label, path) in [("log", self.log_file()), ("stderr", self.stderr_file())] {
            let text = fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(TAIL_LINES);
            let _ = writeln!(out, "--- nats-server {label} ({}) ---", path.display());
            for line in &lines[start..] {
                let _ = writeln!(out, "{line}");
            }
        }
        out
    }

    fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        let child = self.child.as_ref().context("nats-server is not running")?;
        signal::kill(pid_of(child), signal)
            .with_context(|| format!("sending {signal} to nats-server (pid {})", child.id()))
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL also ends a paused (SIGSTOPped) process.
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.keep_dir {
            return;
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            if e.kind() != ErrorKind::NotFound {
                eprintln!(
                    "jetsaga-testkit: could not remove nats-server temp dir {}: {e}",
                    self.dir.display()
                );
            }
        }
    }
}

/// True when something on the port accepts a connection and greets with `INFO`.
async fn answers_info(port: u16) -> bool {
    let probe = async {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let mut greeting = [0u8; 4];
        stream.read_exact(&mut greeting).await.ok()?;
        Some(&greeting == b"INFO")
    };
    timeout(Duration::from_millis(500), probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// True when every thread of `pid` is in state `T` (stopped) or `t` (traced), or when `/proc`
/// cannot tell (then there is nothing to wait for).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|task| {
        // The state follows the command name, which is in parentheses and may contain spaces.
        fs::read_to_string(task.path().join("stat")).map_or(true, |stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                .is_none_or(|state| matches!(state, 'T' | 't'))
        })
    })
}

fn pid_of(child: &Child) -> Pid {
    // Linux pids fit in i32 (pid_max is at most 2^22).
    Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX))
}
