//! Ports for the processes a test starts.

use anyhow::Context as _;
use std::net::{Ipv4Addr, TcpListener};

/// A port that was free a moment ago: bind port 0, read the port, release it. Another process
/// can take it before the caller binds it; whoever starts a process on it must tell that case
/// apart (see `jetsaga_scenarios::listening`) and pick again.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_port_is_a_real_port_and_can_be_bound() {
        let port = free_port().unwrap();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }
}
