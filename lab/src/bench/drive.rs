//! The load generator: orders placed closed-loop (a number of clients, each waiting for its
//! order's end before placing the next) or open-loop (a rate, whatever happens), for a count or
//! a duration. Which outcome each order is built for comes from the [`Mix`].

use super::catalogue::Catalogue;
use super::mix::{Mix, Outcome};
use super::watch::{Completed, Watcher};
use anyhow::Context as _;
use indicatif::ProgressBar;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// How an order gets placed: over the public HTTP API, or straight into a null saga's database.
pub trait Placer: Send + Sync + 'static {
    /// Places one order built to end as `outcome` (`rng` decides the rest) and returns its id once
    /// it is accepted.
    fn place(
        &self,
        outcome: Outcome,
        rng: &mut StdRng,
    ) -> impl Future<Output = anyhow::Result<Uuid>> + Send;
}

/// `POST /orders`, spread over the order service's instances.
#[derive(Debug)]
pub struct HttpPlacer {
    pub client: reqwest::Client,
    pub bases: Vec<String>,
    pub catalogue: Arc<Catalogue>,
    pub next: AtomicUsize,
}

impl Placer for HttpPlacer {
    fn place(
        &self,
        outcome: Outcome,
        rng: &mut StdRng,
    ) -> impl Future<Output = anyhow::Result<Uuid>> + Send {
        let body = self.catalogue.order_body(outcome, rng);
        let base = &self.bases[self.next.fetch_add(1, Ordering::Relaxed) % self.bases.len()];
        let request = self.client.post(format!("{base}/orders")).json(&body);
        async move {
            let resp = request.send().await.context("POST /orders")?;
            let status = resp.status();
            let answer: serde_json::Value = resp.json().await.context("POST /orders answer")?;
            anyhow::ensure!(status.as_u16() == 202, "POST /orders: {status} {answer}");
            answer["order_id"]
                .as_str()
                .and_then(|id| Uuid::parse_str(id).ok())
                .context("POST /orders answered without an order_id")
        }
    }
}

/// Closed or open loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    Closed { concurrency: usize },
    Open { per_sec: f64 },
}

/// When to stop placing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    Count(usize),
    Elapsed(Duration),
}

/// What one load did.
#[derive(Debug)]
pub struct LoadResult {
    pub placed: usize,
    /// Requests refused or failed (not accepted: not an order).
    pub refused: usize,
    pub first_error: Option<String>,
    pub started: OffsetDateTime,
    pub completed: Vec<Completed>,
    /// Accepted orders that never ended within the wait.
    pub lost: Vec<Uuid>,
}

impl LoadResult {
    /// Seconds from the first POST to the last end (0 when nothing ended).
    pub fn seconds(&self) -> f64 {
        self.completed
            .iter()
            .map(|c| c.ended)
            .max()
            .map(|last| (last - self.started).as_seconds_f64().max(0.0))
            .unwrap_or(0.0)
    }

    /// Completed sagas per second, from the first POST to the last end.
    pub fn per_sec(&self) -> f64 {
        match self.seconds() {
            s if s > 0.0 => self.completed.len() as f64 / s,
            _ => 0.0,
        }
    }
}

struct Budget {
    until: Until,
    started: tokio::time::Instant,
    taken: AtomicUsize,
}

impl Budget {
    fn take(&self) -> bool {
        match self.until {
            Until::Count(n) => self.taken.fetch_add(1, Ordering::Relaxed) < n,
            Until::Elapsed(d) => {
                self.taken.fetch_add(1, Ordering::Relaxed);
                self.started.elapsed() < d
            }
        }
    }
}

/// What the clients of one load share: how to place, where ends are seen, and the counts.
struct Placing<P> {
    placer: Arc<P>,
    watcher: Watcher,
    bar: ProgressBar,
    placed: AtomicUsize,
    refused: AtomicUsize,
    first_error: std::sync::Mutex<Option<String>>,
}

impl<P: Placer> Placing<P> {
    /// Places one order and waits (up to a minute) for its end.
    async fn one(&self, outcome: Outcome, mut rng: StdRng) {
        let sent = OffsetDateTime::now_utc();
        match self.placer.place(outcome, &mut rng).await {
            Ok(order_id) => {
                self.placed.fetch_add(1, Ordering::Relaxed);
                let ended = self.watcher.expect(order_id, sent, outcome.as_str());
                let _ = tokio::time::timeout(Duration::from_secs(60), ended).await;
                self.bar.inc(1);
            }
            Err(e) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert_with(|| format!("{e:#}"));
                }
                // A refused request is not retried at once: the system is overloaded or down.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Places orders until `until`, then waits up to `drain` for the accepted ones to end.
#[allow(clippy::too_many_arguments)]
pub async fn drive<P: Placer>(
    placer: Arc<P>,
    watcher: &Watcher,
    shape: Shape,
    until: Until,
    mix: &Mix,
    seed: u64,
    drain: Duration,
    bar: &ProgressBar,
) -> LoadResult {
    let started = OffsetDateTime::now_utc();
    let budget = Arc::new(Budget {
        until,
        started: tokio::time::Instant::now(),
        taken: AtomicUsize::new(0),
    });
    let placing = Arc::new(Placing {
        placer,
        watcher: watcher.clone(),
        bar: bar.clone(),
        placed: AtomicUsize::new(0),
        refused: AtomicUsize::new(0),
        first_error: std::sync::Mutex::new(None),
    });
    match shape {
        Shape::Closed { concurrency } => {
            let mut workers = tokio::task::JoinSet::new();
            for worker in 0..concurrency.max(1) {
                let (budget, placing, mix) = (budget.clone(), placing.clone(), mix.clone());
                workers.spawn(async move {
                    let mut rng =
                        StdRng::seed_from_u64(seed ^ (worker as u64).wrapping_mul(0x9E37));
                    while budget.take() {
                        let outcome = mix.draw(&mut rng);
                        let child = StdRng::seed_from_u64(rng.random());
                        placing.one(outcome, child).await;
                    }
                });
            }
            while workers.join_next().await.is_some() {}
        }
        Shape::Open { per_sec } => {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sec.max(0.1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut rng = StdRng::seed_from_u64(seed);
            let mut running = tokio::task::JoinSet::new();
            while budget.take() {
                tick.tick().await;
                let outcome = mix.draw(&mut rng);
                let placing = placing.clone();
                let child = StdRng::seed_from_u64(rng.random());
                running.spawn(async move { placing.one(outcome, child).await });
                while running.try_join_next().is_some() {}
            }
            while running.join_next().await.is_some() {}
        }
    }
    watcher.drain(drain).await;
    let first_error = placing.first_error.lock().ok().and_then(|e| e.clone());
    LoadResult {
        placed: placing.placed.load(Ordering::Relaxed),
        refused: placing.refused.load(Ordering::Relaxed),
        first_error,
        started,
        completed: watcher.take_completed(),
        lost: watcher.take_outstanding(),
    }
}
