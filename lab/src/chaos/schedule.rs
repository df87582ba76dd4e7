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
    /// One service's database refuses every connection (`ALLOW_CONNECTIONS false`, and its
    /// backends terminated) for 10–90 s.
    PgOutage,
    /// Every instance of one service stopped gracefully (SIGTERM) and started again, one after
    /// another, under load. Lasts as long as it takes.
    RollingRestart,
    /// 100 KB–900 KB of random bytes (NULs included, sometimes a NUL in a header value) on a
    /// subject services consume.
    BigPoison,
    /// A durable consumer of a service deleted by the admin; the service must notice and create
    /// it again.
    DeleteConsumer,
    /// A session holding a hot SKU's stock row (`SELECT … FOR UPDATE`) for 30–60 s.
    LockHolder,
    /// The DLQ stream refuses writes (full, discard new) for 5–15 s, while a poison message needs
    /// its copy written.
    DlqFull,
}

impl Kind {
    pub const ALL: [Kind; 14] = [
        Kind::KillService,
        Kind::PauseService,
        Kind::KillNats,
        Kind::CutNatsDrop,
        Kind::CutNatsReject,
        Kind::KillPgConnections,
        Kind::DuplicateEvents,
        Kind::Poison,
        Kind::PgOutage,
        Kind::RollingRestart,
        Kind::BigPoison,
        Kind::DeleteConsumer,
        Kind::LockHolder,
        Kind::DlqFull,
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
            Kind::PgOutage => "pg_outage",
            Kind::RollingRestart => "rolling_restart",
            Kind::BigPoison => "big_poison",
            Kind::DeleteConsumer => "delete_consumer",
            Kind::LockHolder => "lock_holder",
            Kind::DlqFull => "dlq_full",
        }
    }

    /// How long a fault of this kind is held, before [`PlanOptions::hold_scale`].
    pub fn hold(self, ack_wait: Duration, instances: usize) -> Hold {
        match self {
            Kind::KillService | Kind::KillNats | Kind::CutNatsDrop | Kind::CutNatsReject => {
                Hold::Range(1.0, 4.0)
            }
            Kind::PauseService => Hold::PastAckWait {
                ack_wait: ack_wait.as_secs_f64(),
                beyond: (1.0, 2.5),
            },
            Kind::KillPgConnections | Kind::DuplicateEvents | Kind::Poison | Kind::BigPoison => {
                Hold::Instant
            }
            Kind::PgOutage => Hold::Range(10.0, 90.0),
            Kind::LockHolder => Hold::Range(30.0, 60.0),
            Kind::DeleteConsumer => Hold::Range(2.0, 6.0),
            Kind::DlqFull => Hold::Range(5.0, 15.0),
            // A graceful stop, a start and a health check per instance: a few seconds each.
            Kind::RollingRestart => Hold::AsLongAsItTakes {
                estimate: 4.0 * instances.max(1) as f64,
            },
        }
    }

    /// Whether a fault of this kind hits one service (chosen by [`Fault::service`]).
    pub fn aims_at_a_service(self) -> bool {
        matches!(
            self,
            Kind::KillService
                | Kind::PauseService
                | Kind::PgOutage
                | Kind::RollingRestart
                | Kind::DeleteConsumer
                | Kind::LockHolder
        )
    }

    /// Whether orders stall while this fault lasts, so that one of them may end by its deadline
    /// (see [`super::timeouts`]). The others are faults the system must ride through without a
    /// saga noticing: a rolling restart, poison of any size, a deleted consumer, a full DLQ.
    pub fn stalls_orders(self) -> bool {
        matches!(
            self,
            Kind::KillService
                | Kind::PauseService
                | Kind::KillNats
                | Kind::CutNatsDrop
                | Kind::CutNatsReject
                | Kind::PgOutage
                | Kind::LockHolder
        )
    }
}

/// How long a kind of fault is held.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Hold {
    /// Done at once (connections terminated, messages published): nothing to hold or undo.
    Instant,
    /// A random time in this range of seconds.
    Range(f64, f64),
    /// The ack wait and then a random time in the range `beyond`: a pause that outlasts the ack
    /// wait, so the redelivery races the paused original.
    PastAckWait { ack_wait: f64, beyond: (f64, f64) },
    /// As long as it takes (a rolling restart); the plan leaves `estimate` seconds for it, and the
    /// run waits for it to end before the next fault.
    AsLongAsItTakes { estimate: f64 },
}

impl Hold {
    /// The least and the most seconds a fault is held with this scale (for an
    /// [`Hold::AsLongAsItTakes`], the estimate).
    pub fn bounds(self, scale: f64) -> (f64, f64) {
        match self {
            Hold::Instant => (0.0, 0.0),
            Hold::Range(lo, hi) => (lo * scale, hi * scale),
            Hold::PastAckWait {
                ack_wait,
                beyond: (lo, hi),
            } => (ack_wait + lo * scale, ack_wait + hi * scale),
            Hold::AsLongAsItTakes { estimate } => (estimate, estimate),
        }
    }

    /// A random hold within [`Hold::bounds`].
    fn draw(self, scale: f64, rng: &mut impl Rng) -> f64 {
        match self {
            Hold::Instant => 0.0,
            Hold::Range(lo, hi) => rng.random_range(lo..hi) * scale,
            Hold::PastAckWait {
                ack_wait,
                beyond: (lo, hi),
            } => ack_wait + rng.random_range(lo..hi) * scale,
            Hold::AsLongAsItTakes { estimate } => estimate,
        }
    }
}

/// The index of the stock service in [`Fault::service`].
const STOCK: usize = 3;
/// How many services a service fault draws from (the harness's `Svc::ALL`).
pub const SERVICES: usize = 5;

/// One planned fault.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fault {
    /// Seconds after the load started.
    pub at: f64,
    pub kind: Kind,
    /// For a service fault: which service (0 order, 1 voucher, 2 payment, 3 stock, 4 points) and
    /// instance.
    pub service: usize,
    pub instance: usize,
    /// How long the fault lasts before it is undone (for a rolling restart, the time the plan
    /// leaves for it: it lasts as long as it takes).
    pub hold: f64,
}

/// What to plan.
#[derive(Debug, Clone)]
pub struct PlanOptions<'a> {
    /// The same seed gives the same plan.
    pub seed: u64,
    /// Faults over the run.
    pub count: usize,
    /// The length of the load; the faults are spread over it.
    pub span: Duration,
    /// The kinds to draw from; each comes at least once when `count` allows.
    pub kinds: &'a [Kind],
    /// Processes per service.
    pub instances: usize,
    /// The consumers' ack wait (a pause outlasts it).
    pub ack_wait: Duration,
    /// Every hold range is multiplied by this (a pause's by the part beyond the ack wait): 1 for
    /// the ranges the kinds are defined with, less for short test runs.
    pub hold_scale: f64,
}

/// The plan: `count` faults of `kinds` over `span`, seeded. Each fault is held for a time drawn
/// from its kind's [`Kind::hold`], and at least 1 s passes with no fault between two. Long holds
/// push the later faults on, so a plan may end after `span` ([`end`]).
pub fn plan(options: &PlanOptions<'_>) -> Vec<Fault> {
    let PlanOptions {
        seed,
        count,
        span,
        kinds,
        instances,
        ack_wait,
        hold_scale,
    } = *options;
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
        let hold = kind.hold(ack_wait, instances).draw(hold_scale, &mut rng);
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
            // A lock holder always holds a stock row; the draw is kept, so the plan after it
            // stays the same.
            service: match rng.random_range(0..SERVICES) {
                _ if kind == Kind::LockHolder => STOCK,
                drawn => drawn,
            },
            instance: rng.random_range(0..instances.max(1)),
            hold,
        });
    }
    faults
}

/// Seconds after the load started when the last planned fault is undone.
pub fn end(plan: &[Fault]) -> f64 {
    plan.iter().map(|f| f.at + f.hold).fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(seed: u64, count: usize, span_secs: u64, kinds: &[Kind]) -> PlanOptions<'_> {
        PlanOptions {
            seed,
            count,
            span: Duration::from_secs(span_secs),
            kinds,
            instances: 2,
            ack_wait: Duration::from_secs(3),
            hold_scale: 1.0,
        }
    }

    fn assert_a_free_second_between_faults(faults: &[Fault]) {
        for pair in faults.windows(2) {
            assert!(
                pair[0].at + pair[0].hold + 0.99 <= pair[1].at,
                "{pair:?} leave no fault-free time"
            );
        }
    }

    #[test]
    fn a_seed_always_gives_the_same_plan_and_another_seed_another() {
        let p = |seed| plan(&options(seed, 12, 60, &Kind::ALL));
        assert_eq!(p(7), p(7));
        assert_ne!(p(7), p(8));
    }

    #[test]
    fn every_kind_comes_at_least_once_and_faults_do_not_overlap() {
        let faults = plan(&options(3, 16, 80, &Kind::ALL));
        assert_eq!(faults.len(), 16);
        for kind in Kind::ALL {
            assert!(faults.iter().any(|f| f.kind == kind), "{kind:?} missing");
        }
        assert_a_free_second_between_faults(&faults);
        let pause = faults
            .iter()
            .find(|f| f.kind == Kind::PauseService)
            .unwrap();
        assert!(pause.hold > 3.0, "a pause outlasts the ack wait");
        assert!(faults
            .iter()
            .all(|f| f.instance < 2 && f.service < SERVICES));
    }

    #[test]
    fn each_hold_lies_within_its_kinds_range_at_any_scale() {
        for scale in [1.0, 0.25] {
            for seed in 0..20 {
                let faults = plan(&PlanOptions {
                    hold_scale: scale,
                    ..options(seed, 28, 600, &Kind::ALL)
                });
                for f in &faults {
                    let (lo, hi) = f.kind.hold(Duration::from_secs(3), 2).bounds(scale);
                    assert!(
                        lo - 0.05 <= f.hold && f.hold <= hi + 0.05,
                        "{f:?} outside {lo}..{hi} at scale {scale}"
                    );
                }
                assert_a_free_second_between_faults(&faults);
            }
        }
    }

    #[test]
    fn the_new_kinds_are_held_as_long_as_the_issue_asks() {
        let ack = Duration::from_secs(3);
        assert_eq!(Kind::PgOutage.hold(ack, 2).bounds(1.0), (10.0, 90.0));
        assert_eq!(Kind::LockHolder.hold(ack, 2).bounds(1.0), (30.0, 60.0));
        assert_eq!(Kind::BigPoison.hold(ack, 2), Hold::Instant);
        assert!(matches!(
            Kind::RollingRestart.hold(ack, 2),
            Hold::AsLongAsItTakes { .. }
        ));
        // A scaled-down pause still outlasts the ack wait.
        let (lo, _) = Kind::PauseService.hold(ack, 2).bounds(0.1);
        assert!(lo > 3.0);
    }

    #[test]
    fn only_the_kinds_asked_for_are_planned() {
        let kinds = [Kind::PgOutage, Kind::LockHolder];
        let faults = plan(&options(5, 6, 60, &kinds));
        assert_eq!(faults.len(), 6);
        assert!(faults.iter().all(|f| kinds.contains(&f.kind)));
        assert!(kinds.iter().all(|k| faults.iter().any(|f| f.kind == *k)));
    }

    #[test]
    fn long_holds_push_the_plan_past_its_span_and_end_says_so() {
        let faults = plan(&options(9, 4, 20, &[Kind::LockHolder]));
        assert!(end(&faults) >= 4.0 * 30.0 + 3.0);
        assert_a_free_second_between_faults(&faults);
    }
}
