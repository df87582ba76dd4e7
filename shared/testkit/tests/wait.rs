//! The testkit's polling helpers.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use jetsaga_testkit::{wait_for, wait_until};

#[tokio::test]
async fn wait_until_reports_what_it_waited_for() {
    let err = wait_until(
        "the order to be confirmed",
        Duration::from_millis(100),
        || async { false },
    )
    .await
    .unwrap_err();

    assert_eq!(
        err.to_string(),
        "timed out after 100ms waiting for the order to be confirmed"
    );
}

#[tokio::test]
async fn wait_until_returns_once_the_condition_holds() -> anyhow::Result<()> {
    let calls = AtomicU32::new(0);
    wait_until("the fifth check", Duration::from_secs(5), || async {
        calls.fetch_add(1, Ordering::SeqCst) >= 4
    })
    .await?;
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    Ok(())
}

#[tokio::test]
async fn wait_for_reports_what_it_waited_for() {
    let err = wait_for("a message", Duration::from_millis(50), || async {
        None::<u8>
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("waiting for a message"), "{err}");
}
