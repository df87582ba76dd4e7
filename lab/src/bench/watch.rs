//! When each order ended, read from the ORDERS stream (not by polling): an ordered consumer on
//! `orders.confirmed.*` and `orders.cancelled.*` from the moment the load starts. An order's
//! latency is the stored time of its terminal event minus the time its POST was sent.

use async_nats::jetstream::{self, consumer::DeliverPolicy};
use futures::StreamExt;
use jetsaga_contracts::events::order::{OrderCancelled, OrderConfirmed};
use jetsaga_contracts::{EventSet, OrderEvent, Producer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;
use tokio::sync::{oneshot, Notify};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// An order that ended.
#[derive(Debug, Clone)]
pub struct Completed {
    pub order_id: Uuid,
    pub sent: OffsetDateTime,
    pub ended: OffsetDateTime,
    pub status: &'static str,
    pub reason: Option<String>,
    /// What the load built it to end as.
    pub expected: &'static str,
}

impl Completed {
    pub fn latency_ms(&self) -> f64 {
        (self.ended - self.sent).as_seconds_f64() * 1000.0
    }
}

struct Pending {
    sent: OffsetDateTime,
    expected: &'static str,
    done: Option<oneshot::Sender<()>>,
}

struct Ended {
    at: OffsetDateTime,
    status: &'static str,
    reason: Option<String>,
}

#[derive(Default)]
struct State {
    pending: HashMap<Uuid, Pending>,
    /// Terminal events that came before their POST's answer was registered.
    early: HashMap<Uuid, Ended>,
    completed: Vec<Completed>,
}

/// The watcher: register each order as its POST is answered; read what ended.
#[derive(Clone)]
pub struct Watcher {
    state: Arc<Mutex<State>>,
    progress: Arc<Notify>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").finish_non_exhaustive()
    }
}

impl Watcher {
    /// Starts reading the ORDERS stream's terminal events from now on, until `stop`.
    pub async fn start(js: &jetstream::Context, stop: CancellationToken) -> anyhow::Result<Self> {
        let stream = js.get_stream(Producer::ORDER.stream()).await?;
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subjects: vec![
                    OrderConfirmed::SUBJECT_FILTER.into(),
                    OrderCancelled::SUBJECT_FILTER.into(),
                ],
                deliver_policy: DeliverPolicy::New,
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        let watcher = Watcher {
            state: Arc::new(Mutex::new(State::default())),
            progress: Arc::new(Notify::new()),
        };
        let w = watcher.clone();
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = stop.cancelled() => return,
                    m = messages.next() => match m {
                        Some(Ok(m)) => m,
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "ORDERS watcher");
                            continue;
                        }
                        None => return,
                    },
                };
                let Some(order_id) = msg
                    .subject
                    .rsplit('.')
                    .next()
                    .and_then(|id| Uuid::parse_str(id).ok())
                else {
                    continue;
                };
                let at = msg
                    .info()
                    .map(|i| i.published)
                    .unwrap_or_else(|_| OffsetDateTime::now_utc());
                let ce_type = msg
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("ce-type"))
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default();
                let (status, reason) = match OrderEvent::from_payload(&ce_type, &msg.payload) {
                    Ok(OrderEvent::OrderCancelled(c)) => {
                        ("CANCELLED", Some(c.reason.as_str().to_owned()))
                    }
                    _ => ("CONFIRMED", None),
                };
                w.ended(order_id, Ended { at, status, reason });
            }
        });
        Ok(watcher)
    }

    fn ended(&self, order_id: Uuid, ended: Ended) {
        let mut state = self.state.lock().expect("watcher state");
        match state.pending.remove(&order_id) {
            Some(p) => {
                state.completed.push(Completed {
                    order_id,
                    sent: p.sent,
                    ended: ended.at,
                    status: ended.status,
                    reason: ended.reason,
                    expected: p.expected,
                });
                if let Some(done) = p.done {
                    let _ = done.send(());
                }
            }
            None => {
                state.early.insert(order_id, ended);
            }
        }
        drop(state);
        self.progress.notify_waiters();
    }

    /// Registers an accepted order; the receiver fires when it ends.
    pub fn expect(
        &self,
        order_id: Uuid,
        sent: OffsetDateTime,
        expected: &'static str,
    ) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut state = self.state.lock().expect("watcher state");
        state.pending.insert(
            order_id,
            Pending {
                sent,
                expected,
                done: Some(tx),
            },
        );
        if let Some(early) = state.early.remove(&order_id) {
            drop(state);
            self.ended(order_id, early);
        }
        rx
    }

    /// How many ended so far.
    pub fn completed_count(&self) -> usize {
        self.state.lock().expect("watcher state").completed.len()
    }

    /// How many were accepted and have not ended.
    pub fn outstanding(&self) -> usize {
        self.state.lock().expect("watcher state").pending.len()
    }

    /// Takes what ended so far (and forgets it).
    pub fn take_completed(&self) -> Vec<Completed> {
        std::mem::take(&mut self.state.lock().expect("watcher state").completed)
    }

    /// The orders that never ended (forgets them).
    pub fn take_outstanding(&self) -> Vec<Uuid> {
        let mut state = self.state.lock().expect("watcher state");
        state.pending.drain().map(|(id, _)| id).collect()
    }

    /// Waits until nothing is outstanding, or `within` passes.
    pub async fn drain(&self, within: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.outstanding() > 0 && tokio::time::Instant::now() < deadline {
            let _ = tokio::time::timeout(
                std::time::Duration::from_millis(200),
                self.progress.notified(),
            )
            .await;
        }
    }
}
