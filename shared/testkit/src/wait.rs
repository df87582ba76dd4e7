//! Waiting for a condition instead of sleeping a fixed time.
//!
//! Tests poll the state they expect (a row, a stream message, a status) every 20 ms and fail
//! with a message naming what they waited for, so a slow machine costs time, not flakiness.

use std::future::Future;
use std::time::Duration;

use anyhow::bail;
use tokio::time::{sleep, timeout, Instant};

/// How often a condition is checked.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Polls `check` every ~20 ms until it returns `true`.
///
/// Fails after `timeout` with "timed out after {timeout:?} waiting for {what}". A single check
/// that hangs is cut off at the deadline too.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(what, timeout, || {
        let fut = check();
        async move { fut.await.then_some(()) }
    })
    .await
}

/// Polls `check` every ~20 ms until it returns `Some(value)`, and returns the value.
///
/// Fails after `timeout` with "timed out after {timeout:?} waiting for {what}". A single check
/// that hangs is cut off at the deadline too.
pub async fn wait_for<T, F, Fut>(
    what: &str,
    timeout_after: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout_after;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if let Ok(Some(value)) = timeout(remaining, check()).await {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout_after:?} waiting for {what}");
        }
        sleep(POLL_INTERVAL.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_for_returns_the_value_once_the_check_yields_one() {
        let mut calls = 0;
        let value = wait_for("the third call", Duration::from_secs(5), || {
            calls += 1;
            let n = calls;
            async move { (n >= 3).then_some(n) }
        })
        .await
        .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn a_hanging_check_is_cut_off_at_the_deadline() {
        let err = wait_until(
            "a check that never returns",
            Duration::from_millis(100),
            std::future::pending::<bool>,
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("a check that never returns"),
            "{err}"
        );
    }
}
