//! Ports for the processes a test starts.

use anyhow::Context as _;
use std::net::{Ipv4Addr, TcpListener};
use std::ops::Range;

/// Where ports are picked when the kernel's range for outgoing connections leaves room below it.
const LOWEST: u16 = 10_000;

/// A port that was free a moment ago: bound, read and released. Another process can take it
/// before the caller binds it; whoever starts a process on it must tell that case apart (see
/// `jetsaga_scenarios::listening`) and pick again.
///
/// It is picked at random below the kernel's range for outgoing connections
/// (`net.ipv4.ip_local_port_range`), not by binding port 0: the port 0 gives is one of that
/// range, which every connection the tests' services open to PostgreSQL and NATS draws its own
/// local port from, so one of them could take it before the service listened on it.
pub fn free_port() -> anyhow::Result<u16> {
    if let Some(range) = below_outgoing(&outgoing_range()) {
        for _ in 0..64 {
            let port = pick(&range);
            if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Ok(port);
            }
        }
    }
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The kernel's range for outgoing connections' local ports (Linux's default when unreadable).
fn outgoing_range() -> Range<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut bounds = text.split_whitespace().map(str::parse::<u16>);
            Some(bounds.next()?.ok()?..bounds.next()?.ok()?.saturating_add(1))
        })
        .unwrap_or(32_768..61_000)
}

/// The ports from [`LOWEST`] up to the outgoing range, when there are at least a thousand.
fn below_outgoing(outgoing: &Range<u16>) -> Option<Range<u16>> {
    (outgoing.start >= LOWEST + 1_000).then_some(LOWEST..outgoing.start)
}

fn pick(range: &Range<u16>) -> u16 {
    let width = u128::from(range.end - range.start);
    let offset = uuid::Uuid::new_v4().as_u128() % width;
    range.start + u16::try_from(offset).expect("an offset below a u16 width")
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

    #[test]
    fn a_free_port_is_not_one_an_outgoing_connection_could_be_given() {
        let outgoing = outgoing_range();
        for _ in 0..20 {
            let port = free_port().unwrap();
            if below_outgoing(&outgoing).is_some() {
                assert!(!outgoing.contains(&port), "{port} is in {outgoing:?}");
            }
        }
    }

    #[test]
    fn ports_are_picked_below_the_outgoing_range_only_when_it_leaves_room() {
        assert_eq!(below_outgoing(&(32_768..61_000)), Some(10_000..32_768));
        assert_eq!(below_outgoing(&(10_500..65_535)), None);
        assert!((0..100).all(|_| (10_000..10_002).contains(&pick(&(10_000..10_002)))));
    }
}
