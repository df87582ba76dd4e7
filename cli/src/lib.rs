//! # jetsaga-cli
//!
//! The operator's tools around the four services, as one binary `jetsaga`:
//! every flow can be replayed, reconciled and compensated (可回放、可对账、可补偿).
//!
//! ## Layout
//! - [`cli`]: the command line (clap), and which command runs.
//! - [`targets`]: where the databases and NATS are, from flags and environment.
//! - [`output`]: tables for people, `--json` for programs.
//! - [`progress`]: progress bars on long work (hidden when stderr is not a terminal).
//! - [`bench`]: `jetsaga bench`, sagas per second and latency against the null saga's ceiling.
//! - [`chaos`]: `jetsaga chaos`, faults under load, and nothing lost, nothing doubled.
//! - [`dev`]: `jetsaga dev`, the whole system in one process.
//! - [`trace`]: `jetsaga trace`, one saga across every stream, as a table or a Mermaid diagram.
//! - [`replay`]: `jetsaga replay`, a service re-consumes its inputs through its inbox.
//! - [`reconcile`]: `jetsaga reconcile`, the invariants across the four databases, and repair.
//! - [`dlq`]: `jetsaga dlq`, the dead letters of every service.
//! - [`stats`]: `jetsaga stats`, consumer lag, outbox backlog, dead letters, saga outcomes.
//! - [`provision`]: `jetsaga provision`, the streams created or updated as the NATS admin.

pub mod bench;
pub mod chaos;
pub mod cli;
pub mod dev;
pub mod dlq;
pub mod output;
pub mod participants;
pub mod progress;
pub mod provision;
pub mod reconcile;
pub mod replay;
pub mod stats;
pub mod targets;
pub mod trace;

pub use cli::{main, Cli};
