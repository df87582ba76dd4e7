//! Whether each consumer of this instance can pull, for `/health`.
//!
//! A consumer that cannot pull (its durable was deleted, its stream is gone, NATS refuses the
//! request) leaves the instance idle while everything else looks fine, so it is reported: the
//! runner marks it here, and `/health` answers 503 with the consumer and the error while it lasts.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// One consumer's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConsumerState {
    /// Registered, not pulling yet: its input stream and durable are being made sure of. An
    /// instance is not ready until it pulls, so a client that waits for `/health` never publishes
    /// onto a stream that does not exist yet.
    Starting,
    /// Pulling as it should.
    Pulling,
    /// The last pull failed; the runner is recreating the consumer and trying again.
    CannotPull { error: String },
}

/// The consumers of one instance.
#[derive(Debug, Default)]
pub struct Health {
    consumers: Mutex<BTreeMap<String, ConsumerState>>,
}

impl Health {
    pub fn set(&self, consumer: &str, state: ConsumerState) {
        let mut c = self.consumers.lock().unwrap_or_else(|p| p.into_inner());
        c.insert(consumer.to_owned(), state);
    }

    /// Every consumer that has started, with its state.
    pub fn consumers(&self) -> BTreeMap<String, ConsumerState> {
        self.consumers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether every registered consumer can pull (none still starting, none failing).
    pub fn all_pulling(&self) -> bool {
        self.consumers()
            .values()
            .all(|s| *s == ConsumerState::Pulling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consumer_still_starting_keeps_the_instance_unready_until_it_pulls() {
        let health = Health::default();
        health.set("stock-on-orders", ConsumerState::Pulling);
        health.set("order-on-stock", ConsumerState::Starting);
        assert!(!health.all_pulling());
        health.set("order-on-stock", ConsumerState::Pulling);
        assert!(health.all_pulling());
    }
}
