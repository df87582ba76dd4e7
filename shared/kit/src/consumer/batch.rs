//! Several messages in one transaction.
//!
//! First deliveries that arrive while every slot of a consumer is busy are taken together by the
//! next free slot: one transaction runs each message's inbox, handler and outbox in turn and
//! commits once, and only then is each message acked. They share one commit, and in durable mode
//! one WAL flush. Each message's effect still commits with its inbox row and the events it emits,
//! and no message is acked before that commit. A message that arrives alone has a transaction of
//! its own, as before, so batching adds no wait.
//!
//! Whatever goes wrong in a batch (a handler's error, contention for rows, the database, a panic,
//! a replay's divergence, a duplicate found only after its handler wrote) rolls the whole batch
//! back and hands each of its messages to the one-at-a-time path, which counts, retries, waits
//! for the database or dead-letters it as it always did. So a failing message costs its
//! neighbours one wasted try, never their effects. Redeliveries and messages that do not decode
//! take that path from the start: they are counted or dead-lettered one at a time. A batch waits
//! for a row lock only briefly (`batch_lock_wait`): it holds its rows until it commits, so two
//! batches may each wait for a row the other holds, and the one-at-a-time path is the way out of
//! that. A shutdown in the middle of a batch commits what was handled and hands the rest back.

use super::{rolled_back, Consumer, Disposition, RawMessage, Step};
use crate::envelope::Envelope;
use crate::handler::Handler;
use crate::metrics::KitMetrics;
use async_nats::jetstream;
use futures::future::join_all;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// A first delivery that decoded, waiting for its batch.
struct Ready<I> {
    raw: RawMessage,
    envelope: Envelope,
    event: I,
}

/// A message its batch handled, waiting for the commit.
struct Handled<O> {
    raw: RawMessage,
    envelope: Envelope,
    /// The events it emitted; `None` when the inbox knew it.
    emitted: Option<Vec<O>>,
    span: tracing::Span,
}

impl<H: Handler> Consumer<H> {
    /// Handles the messages one slot took at once: the first deliveries that decode in one
    /// transaction, every other message on its own.
    pub(super) async fn deliver_all(
        &self,
        msgs: Vec<jetstream::Message>,
        shutdown: &CancellationToken,
    ) {
        // A slot takes at most `batch` messages at once, so with a batch of 1 this is every time.
        if msgs.len() < 2 || shutdown.is_cancelled() {
            join_all(msgs.into_iter().map(|m| self.deliver(m, shutdown))).await;
            return;
        }
        let mut alone = Vec::new();
        let mut together = Vec::new();
        for msg in msgs {
            match self.ready(RawMessage::from_jetstream(&msg)) {
                Some(ready) => together.push((msg, ready)),
                None => alone.push(msg),
            }
        }
        futures::join!(
            join_all(alone.into_iter().map(|m| self.deliver(m, shutdown))),
            self.deliver_together(together, shutdown),
        );
    }

    /// A first delivery that decodes. A redelivery is counted and a message that does not decode
    /// is dead-lettered, both one at a time.
    fn ready(&self, raw: RawMessage) -> Option<Ready<H::Input>> {
        if raw.delivered > 1 {
            return None;
        }
        let (envelope, event) = self.decode(&raw).ok()?;
        Some(Ready {
            raw,
            envelope,
            event,
        })
    }

    async fn deliver_together(
        &self,
        batch: Vec<(jetstream::Message, Ready<H::Input>)>,
        shutdown: &CancellationToken,
    ) {
        if batch.len() < 2 {
            join_all(batch.into_iter().map(|(m, _)| self.deliver(m, shutdown))).await;
            return;
        }
        let started = std::time::Instant::now();
        let (msgs, ready): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let size = msgs.len();
        let all: Vec<&jetstream::Message> = msgs.iter().collect();
        let tried = self
            .with_progress_all(
                &all,
                AssertUnwindSafe(self.apply_together(ready, shutdown)).catch_unwind(),
            )
            .await;
        let handled = match tried {
            Ok(Ok(handled)) => handled,
            abandoned => {
                KitMetrics::inc(&self.metrics.kit().batches_abandoned, self.config.durable);
                match abandoned {
                    Ok(Err(why)) => {
                        tracing::debug!(consumer = self.config.durable, size, why = %why, "batch rolled back; handling its messages one at a time");
                    }
                    _ => tracing::warn!(
                        consumer = self.config.durable,
                        size,
                        "a handler panicked in a batch; handling its messages one at a time"
                    ),
                }
                join_all(msgs.into_iter().map(|m| self.deliver(m, shutdown))).await;
                return;
            }
        };
        KitMetrics::inc(&self.metrics.kit().batches, self.config.durable);
        let mut msgs = msgs.into_iter();
        for (done, msg) in handled.into_iter().zip(&mut msgs) {
            let disposition = match &done.emitted {
                Some(emitted) => {
                    self.handler.committed(emitted, &self.metrics);
                    Disposition::Applied
                }
                None => Disposition::Duplicate,
            };
            let disposition = self
                .conclude(Ok(disposition), &done.envelope, &done.raw, false)
                .instrument(done.span.clone())
                .await;
            done.span.record("outcome", disposition.outcome());
            self.settle(&msg, &disposition).await;
            self.metrics.kit().observe_handler(
                self.config.durable,
                disposition.outcome(),
                started.elapsed().as_secs_f64(),
            );
        }
        // Not reached before the shutdown: handed back.
        join_all(msgs.map(|m| self.deliver(m, shutdown))).await;
    }

    /// One transaction for the batch: each message's inbox, handler and outbox in turn, then one
    /// commit. `Err` says why it was rolled back.
    async fn apply_together(
        &self,
        ready: Vec<Ready<H::Input>>,
        shutdown: &CancellationToken,
    ) -> Result<Vec<Handled<H::Output>>, String> {
        // The batch's own, short lock wait comes with its BEGIN.
        let mut conn = self
            .kept
            .take(&self.pool)
            .await
            .map_err(|e| e.to_string())?;
        let mut tx = self
            .begin(&mut conn, Some(self.config.batch_lock_wait))
            .await
            .map_err(|e| e.to_string())?;
        let mut handled = Vec::with_capacity(ready.len());
        for r in ready {
            if shutdown.is_cancelled() {
                break;
            }
            let span = self.handle_span(&r.envelope, &r.raw);
            let step = self
                .apply_in(&mut tx, &r.envelope, r.event, &r.raw)
                .instrument(span.clone())
                .await;
            let emitted = match step {
                Ok(Step::Applied(emitted)) => Some(emitted),
                Ok(Step::Duplicate) => None,
                Ok(Step::Repeated) => {
                    if rolled_back(tx, None).await {
                        self.kept.keep(conn);
                    }
                    return Err(format!(
                        "event {} was handled before; its handler's effect must not stay",
                        r.envelope.id
                    ));
                }
                Ok(Step::Diverged(why)) => {
                    if rolled_back(tx, None).await {
                        self.kept.keep(conn);
                    }
                    return Err(format!("event {}: {why}", r.envelope.id));
                }
                Err(e) => {
                    if rolled_back(tx, Some(&e)).await {
                        self.kept.keep(conn);
                    }
                    return Err(format!("event {}: {e}", r.envelope.id));
                }
            };
            handled.push(Handled {
                raw: r.raw,
                envelope: r.envelope,
                emitted,
                span,
            });
        }
        tx.commit().await.map_err(|e| format!("commit: {e}"))?;
        self.kept.keep(conn);
        if handled
            .iter()
            .any(|h| h.emitted.as_ref().is_some_and(|e| !e.is_empty()))
        {
            self.wake_relay();
        }
        Ok(handled)
    }
}
