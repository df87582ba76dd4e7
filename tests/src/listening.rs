//! Which process listens on a port, read from `/proc` (Linux).
//!
//! A test picks a free port, lets it go and starts a service on it; between the two another test's
//! process can take the same port. A `/health` that answers is then not proof that the service we
//! started answers: the harness asks the kernel whose socket listens there.

use std::collections::HashSet;
use std::fs;

/// Whether process `pid` holds a socket listening on TCP port `port` (IPv4 or IPv6, any address).
/// False when `/proc` cannot tell (no such process, another OS).
pub fn listens_on(pid: u32, port: u16) -> bool {
    let owned = socket_inodes(pid);
    if owned.is_empty() {
        return false;
    }
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        fs::read_to_string(table)
            .map(|text| listening_inodes(&text, port).any(|inode| owned.contains(&inode)))
            .unwrap_or(false)
    })
}

/// Whether a process's log says it stopped because its port was in use: a process that cannot
/// bind says so in its last lines, before the backtrace its error may end with (an `anyhow` error
/// returned from `main` with `RUST_BACKTRACE` set, as in CI, prints dozens of frames after it).
pub fn says_port_in_use(log: &str) -> bool {
    let lines: Vec<&str> = log.lines().collect();
    let end = lines
        .iter()
        .rposition(|l| l.trim_end() == "Stack backtrace:")
        .filter(|&b| {
            lines[b + 1..]
                .iter()
                .all(|l| l.is_empty() || l.starts_with(' '))
        })
        .unwrap_or(lines.len());
    lines[..end]
        .iter()
        .rev()
        .take(20)
        .any(|l| l.contains("in use"))
}

/// The inodes of the sockets among `pid`'s open files.
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    fds.filter_map(|fd| fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// The inodes of the sockets that a `/proc/net/tcp` table lists as listening on `port`.
fn listening_inodes(table: &str, port: u16) -> impl Iterator<Item = u64> + '_ {
    const LISTEN: &str = "0A";
    table.lines().skip(1).filter_map(move |line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local = fields.get(1)?;
        let (_, local_port) = local.rsplit_once(':')?;
        let listening = fields.get(3)? == &LISTEN;
        (listening && u16::from_str_radix(local_port, 16).ok()? == port)
            .then(|| fields.get(9)?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0000000000000000 100 0 0 10 0";

    #[test]
    fn only_the_listening_socket_of_the_port_is_read() {
        let found: Vec<u64> = listening_inodes(TABLE, 0x1F90).collect();
        assert_eq!(found, vec![4242]);
    }

    #[test]
    fn a_log_ending_in_a_bind_failure_says_the_port_was_in_use() {
        let log = "starting\nstock-service failed: cannot listen for HTTP on 127.0.0.1:4100: \
                   Address already in use (os error 98)\n";
        assert!(says_port_in_use(log));
        assert!(!says_port_in_use("starting\nready\n"));
    }

    #[test]
    fn a_bind_failure_followed_by_a_long_backtrace_says_the_port_was_in_use() {
        let mut log = String::from(
            "Error: the order service failed\n\nCaused by:\n    0: cannot listen for HTTP on \
             127.0.0.1:4100: Address already in use (os error 98)\n    1: Address already in use \
             (os error 98)\n\nStack backtrace:\n",
        );
        for frame in 0..40 {
            log.push_str(&format!(
                "  {frame}: tokio::runtime::block_on\n             at /src/x.rs:1:1\n"
            ));
        }
        assert!(says_port_in_use(&log));
    }

    #[test]
    fn a_backtrace_after_another_failure_does_not_say_the_port_was_in_use() {
        let log = "Error: the order service failed\n\nCaused by:\n    migrations failed\n\n\
                   Stack backtrace:\n   0: main\n             at /src/main.rs:1:1\n";
        assert!(!says_port_in_use(log));
    }

    #[test]
    fn this_process_listens_on_a_port_it_bound_and_not_on_one_it_let_go() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        assert!(listens_on(std::process::id(), port));
        drop(held);
        assert!(!listens_on(std::process::id(), port));
    }
}
