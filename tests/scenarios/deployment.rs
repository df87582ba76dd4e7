//! The harness pointed at a running deployment (`JETSAGA_*_URL`), as the acceptance suite and
//! `jetsaga bench` run it from outside. This binary holds one test, because it sets those
//! variables for its whole process.

use jetsaga_scenarios::{System, SystemOptions};

#[tokio::test]
async fn a_system_pointed_at_a_deployment_leaves_the_temp_folder_alone() -> anyhow::Result<()> {
    // Given a file of someone else's in the temp folder
    let theirs =
        std::env::temp_dir().join(format!("not-jetsaga-{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&theirs, "keep me")?;
    // and the harness pointed at a deployment (starting against one connects to nothing)
    for (name, port) in [
        ("JETSAGA_ORDER_URL", 8080),
        ("JETSAGA_PAYMENT_URL", 8081),
        ("JETSAGA_STOCK_URL", 8082),
        ("JETSAGA_VOUCHER_URL", 8083),
        ("JETSAGA_POINTS_URL", 8084),
    ] {
        std::env::set_var(name, format!("http://127.0.0.1:{port}"));
    }

    // When a system is started against it and dropped
    let sys = System::start(SystemOptions::default()).await?;
    assert!(sys.is_external());
    drop(sys);

    // Then the file is still there
    let kept = theirs.exists();
    let _ = std::fs::remove_file(&theirs);
    assert!(kept, "dropping the system removed {}", theirs.display());
    Ok(())
}
