//! # jetsaga-cli
//!
//! The operator's tools around the services, as one binary `jetsaga`: every flow can be replayed,
//! reconciled and compensated (可回放、可对账、可补偿). The lab tools that start whole systems
//! (`dev`, `bench`, `chaos`) are the `jetsaga-lab` crate; `jetsaga` hands those commands to it.
//!
//! ## Layout
//! - [`cli`]: the command line (clap), and which command runs.
//! - [`targets`]: where the databases and NATS are, from flags and environment.
//! - [`output`]: tables for people, `--json` for programs.
//! - [`progress`]: progress bars on long work (hidden when stderr is not a terminal).
//! - [`lab`]: `jetsaga dev|bench|chaos`, handed over to the `jetsaga-lab` binary.
//! - [`signing`]: the operator a write command acts as, proven by their token.
//! - [`participants`]: each service's own declarations, the one place a tool finds a service.
//! - [`trace`]: `jetsaga trace`, one saga across every stream, as a table or a Mermaid diagram.
//! - [`replay`]: `jetsaga replay`, a service rebuilt from the streams, or audited (`--verify`).
//! - [`reconcile`]: `jetsaga reconcile`, the invariants across the five databases, and repair.
//! - [`dlq`]: `jetsaga dlq`, the dead letters of every service.
//! - [`audit`]: `jetsaga audit`, every admin change and operator action over a time range.
//! - [`stats`]: `jetsaga stats`, consumer lag, outbox backlog, dead letters, saga outcomes.
//! - [`console`]: `jetsaga console`, the same operations in a browser for signed-in operators.
//! - [`provision`]: `jetsaga provision`, the streams created or updated as the NATS admin.

pub mod audit;
pub mod cli;
pub mod console;
pub mod dlq;
pub mod lab;
pub mod output;
pub mod participants;
pub mod progress;
pub mod provision;
pub mod reconcile;
pub mod replay;
pub mod signing;
pub mod stats;
pub mod targets;
pub mod trace;

pub use cli::{main, Cli};
