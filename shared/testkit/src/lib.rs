//! jetsaga-testkit: what the kit, service and scenario tests need to run against the real
//! thing — a real `nats-server` per test, a fresh PostgreSQL database per test, and helpers that
//! wait for a condition instead of sleeping.
//!
//! Tests run in parallel, as threads (`cargo test`) or as processes (`cargo nextest`). Every
//! resource here is therefore private to the test that made it: a server on its own free port
//! with its own store dir, a database with a random name. Each is cleaned up on `Drop`, also when
//! the test panics.
//!
//! ```no_run
//! use std::time::Duration;
//! use jetsaga_testkit::{wait_until, NatsServer, TestDb};
//!
//! # async fn example() -> anyhow::Result<()> {
//! jetsaga_testkit::init_tracing();
//! let nats = NatsServer::start().await?;
//! let db = TestDb::create("outbox_relay").await?;
//! let client = async_nats::connect(nats.url()).await?;
//! wait_until("the pool to answer", Duration::from_secs(5), || async {
//!     sqlx::query("SELECT 1").execute(db.pool()).await.is_ok()
//! })
//! .await?;
//! # drop(client);
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - `nats.rs`: [`NatsServer`], one nats-server process: start on a free port, stop, kill,
//!   pause/resume (SIGSTOP/SIGCONT), restart on the same port and store.
//! - `nats_binary.rs`: [`find_nats_server`] and [`find_old_nats_server`], which pick a binary by
//!   its `--version` ([`parse_server_version`]); 2.10 or newer is required.
//! - `postgres.rs`: [`TestDb`], a fresh database per test, dropped `WITH (FORCE)` on drop.
//! - `wait.rs`: [`wait_until`] and [`wait_for`], polling with a deadline and a message.
//! - `logging.rs`: [`init_tracing`], test-captured `tracing` output filtered by `RUST_LOG`.
//!
//! Architecture Invariant: nothing here sleeps a fixed time to let something get ready; readiness
//! is always polled. Nothing here needs Docker; the binaries come from `scripts/setup-nats` and
//! `scripts/ensure-postgres`.

pub mod logging;
pub mod nats;
pub mod nats_binary;
pub mod port;
pub mod postgres;
pub mod wait;

pub use logging::init_tracing;
pub use nats::NatsServer;
pub use nats_binary::{find_nats_server, find_old_nats_server, parse_server_version};
pub use port::free_port;
pub use postgres::TestDb;
pub use wait::{wait_for, wait_until};
