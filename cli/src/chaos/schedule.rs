//! The fault schedule: a seeded, random plan of faults, each held for a while, with fault-free
//! periods in between. Pure, so a seed always gives the same plan.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::time::Duration;

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum Kind {
    /// SIGKILL of a service instance, restarted after the hold.
    KillService,
    /// SIGSTOP of a service instance past the consumers' ack wait, then SIGCONT: redelivery races
    /// the original.
    PauseService,
    /// SIGKILL of nats-server, restarted after the hold.
    KillNats,
    /// The network between the services and NATS drops everything (as an iptables DROP).
    CutNatsDrop,
    /// The network between the services and NATS refuses connections (as an iptables REJECT).
    CutNatsReject,
    /// PostgreSQL terminates every connection of the services, in the middle of transactions.
    KillPgConnections,
    /// Events already delivered, published again out of order under new Msg-Ids.
    DuplicateEvents,
    /// A message no consumer can decode, on a subject one consumer reads.
    Poison,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::KillService,
        Kind::PauseService,
        Kind::KillNats,
        Kind::CutNatsDrop,
        Kind::CutNatsReject,
        Kind::KillPgConnections,
        Kind::DuplicateEvents,
        Kind::Poison,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::KillService => "kill_service",
            Kind::PauseService => "pause_service",
            Kind::KillNats => "kill_nats",
            Kind::CutNatsDrop => "cut_nats_drop",
            Kind::CutNatsReject => "cut_nats_reject",
            Kind::KillPgConnections => "kill_pg_connections",
            Kind::DuplicateEvents => "duplicate_events",
            Kind::Poison => "poison",
        }
    }
}

/// One planned fault.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fault {
    /// Seconds after the load started.
    pub at: f64,
    pub kind: Kind,
    /// For a service fault: which service (0 order, 1 voucher, 2 payment, 3 stock) and instance.
    pub service: usize,
    pub instance: usize,
    /// How long the fault lasts before it is undone.
    pub hold: f64,
}

/// The plan: `count` faults of `kinds` over `span`, seeded. Each fault is held 1–4 s (a pause
/// at least `ack_wait` + 1 s), and at least 1 s passes with no fault between two.
pub fn plan(
    seed: u64,
    count: usize,
    span: Duration,
    kinds: &[Kind],
    instances: usize,
    ack_wait: Duration,
) -> Vec<Fault> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut faults = Vec::with_capacity(count);
    if kinds.is_empty() || count == 0 {
        return faults;
    }
    // Every kind at least once when there is room, the rest at random; then shuffled.
    let mut order: Vec<Kind> = kinds
        .iter()
        .copied()
        .cycle()
        .take(count.min(kinds.len()))
        .collect();
    while order.len() < count {
        order.push(*kinds.choose(&mut rng).unwrap_or(&Kind::KillService));
    }
    for i in (1..order.len()).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
    let slot = span.as_secs_f64() / count as f64;
    let mut free_from = 0.0_f64;
    for (i, kind) in order.into_iter().enumerate() {
        let hold = match kind {
            Kind::PauseService => ack_wait.as_secs_f64() + rng.random_range(1.0..2.5),
            Kind::KillPgConnections | Kind::DuplicateEvents | Kind::Poison => 0.0,
            _ => rng.random_range(1.0..4.0),
        };
        // Start somewhere in the first part of its slot, so the rest of the slot is fault-free.
        // A long fault pushes the next one on: never two at once, and a second free between.
        let room = (slot - hold - 1.0).max(0.0);
        let at = (i as f64 * slot + rng.random_range(0.0..=room)).max(free_from);
        let at = (at * 10.0).ceil() / 10.0;
        let hold = (hold * 10.0).round() / 10.0;
        free_from = at + hold + 1.0;
        faults.push(Fault {
            at,
            kind,
            service: rng.random_range(0..4),
            instance: rng.random_range(0..instances.max(1)),
            hold,
        });
    }
    faults
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_gives_the_same_plan_and_another_seed_another() {
        let p = |seed| {
            plan(
                seed,
                12,
                Duration::from_secs(60),
                &Kind::ALL,
                2,
                Duration::from_secs(3),
            )
        };
        assert_eq!(p(7), p(7));
        assert_ne!(p(7), p(8));
    }

    #[test]
    fn every_kind_comes_at_least_once_and_faults_do_not_overlap() {
        let faults = plan(
            3,
            16,
            Duration::from_secs(80),
            &Kind::ALL,
            2,
            Duration::from_secs(3),
        );
        assert_eq!(faults.len(), 16);
        for kind in Kind::ALL {
            assert!(faults.iter().any(|f| f.kind == kind), "{kind:?} missing");
        }
        for pair in faults.windows(2) {
            assert!(
                pair[0].at + pair[0].hold + 0.99 <= pair[1].at,
                "{pair:?} leave no fault-free time"
            );
        }
        let pause = faults
            .iter()
            .find(|f| f.kind == Kind::PauseService)
            .unwrap();
        assert!(pause.hold > 3.0, "a pause outlasts the ack wait");
        assert!(faults.iter().all(|f| f.instance < 2 && f.service < 4));
    }
}
