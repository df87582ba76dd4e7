//! A TCP proxy between the services and nats-server that a test can cut, for the test's own port
//! only and without root: `Drop` stops forwarding (packets go nowhere, connections hang, as with
//! an iptables DROP), `Reject` closes every connection and refuses new ones (as with a REJECT);
//! `heal` forwards again.

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Forwards.
    Open,
    /// Forwards nothing; connections stay open and hang.
    Drop,
    /// Closes every connection and refuses new ones.
    Reject,
}

/// The proxy; dropping it stops it.
#[derive(Debug)]
pub struct NetCut {
    addr: SocketAddr,
    mode: Arc<watch::Sender<Cut>>,
    stop: CancellationToken,
}

impl NetCut {
    /// Listens on a free 127.0.0.1 port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<NetCut> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, _) = watch::channel(Cut::Open);
        let mode = Arc::new(mode);
        let stop = CancellationToken::new();
        let (m, s) = (mode.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (client, _) = tokio::select! {
                    _ = s.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(_) => continue,
                    },
                };
                tokio::spawn(forward(client, upstream, m.subscribe(), s.clone()));
            }
        });
        Ok(NetCut { addr, mode, stop })
    }

    /// The address services connect to instead of the server's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn cut(&self, how: Cut) {
        self.mode.send_replace(how);
    }

    pub fn heal(&self) {
        self.mode.send_replace(Cut::Open);
    }
}

impl Drop for NetCut {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn wait_open(mode: &mut watch::Receiver<Cut>) -> bool {
    loop {
        match *mode.borrow_and_update() {
            Cut::Open => return true,
            Cut::Reject => return false,
            Cut::Drop => {}
        }
        if mode.changed().await.is_err() {
            return false;
        }
    }
}

async fn forward(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Cut>,
    stop: CancellationToken,
) {
    // A connection made while cut waits (Drop) or is closed (Reject).
    if !wait_open(&mut mode).await {
        let _ = client.shutdown().await;
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let mut from_client = vec![0u8; 64 * 1024];
    let mut from_server = vec![0u8; 64 * 1024];
    loop {
        if !wait_open(&mut mode).await {
            let _ = client.shutdown().await;
            let _ = server.shutdown().await;
            return;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            n = client.read(&mut from_client) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if server.write_all(&from_client[..n]).await.is_err() {
                        return;
                    }
                }
            },
            n = server.read(&mut from_server) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if client.write_all(&from_server[..n]).await.is_err() {
                        return;
                    }
                }
            },
        }
    }
}
