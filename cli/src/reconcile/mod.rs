//! `jetsaga reconcile [--date D] [--repair] [--settlement FILE]`: checks the five databases
//! against the design's invariants, reports each difference, and with `--repair` fixes what
//! ordinary compensating events can fix (可对账 · 可补偿).
//!
//! The check only reads: every connection it makes is read-only
//! ([`Targets::read_only_pool`]). Each difference has a kind:
//!
//! | kind | what | repair |
//! |---|---|---|
//! | `missing` | a participant's record of an order the order service does not know; a CONFIRMED order without its charge, a reservation, or its voucher's redemption | a person |
//! | `amount_mismatch` | a charge ≠ total − discount; a reserved quantity ≠ the line's; a discount ≠ the voucher's; a total ≠ its lines | a person |
//! | `status_mismatch` | CANCELLED but charged / holding stock / holding its voucher | payment refunds, stock releases, voucher releases |
//! | | CONFIRMED but its voucher only RESERVED | voucher redeems |
//! | | CONFIRMED but refunded, failed or released; CANCELLED but its voucher redeemed | a person |
//! | `stuck` | PENDING past its deadline plus `--slack-secs` | order cancels it with reason `timeout` |
//! | `conservation` | credited ≠ balance + charged (per customer); added ≠ available + reserved, or reserved ≠ held (per SKU) | a person |
//! | `missing_ours`, `missing_theirs`, `amount_mismatch` | against the settlement file (see [`settlement`]) | a person |
//!
//! Sagas run while the check reads, so a PENDING order within its deadline plus the slack is
//! *running*, and an order that ended less than `--settle-secs` ago is *settling*; neither is
//! judged. A repair is one transaction in the owning service's database: the state change and
//! the event announcing it (to its outbox, published by its relay). The follow-on effects (a
//! cancellation's compensations) happen asynchronously; the re-check after `--repair` counts them
//! as in flight, and the next run confirms them.
//!
//! Exit codes: 0 clean (after `--repair`: the re-check is clean), 1 differences remain,
//! 2 the check could not run (bad arguments or settlement file, unreachable database).
//!
//! `--streams` checks the streams instead of the databases: see [`streams`] (its own exit codes
//! add 3, "events were missing and are republished").
//!
//! ## Layout
//! - [`difference`]: the kinds, entities and repair actions.
//! - [`rules`]: the pure rules that judge an order, an account, a SKU (unit tests beside them).
//! - [`check`]: reads the five databases and applies the rules.
//! - [`settlement`]: the provider's CSV, and its comparison with our ledger.
//! - [`repair`]: runs the owning services' repair functions.
//! - [`report`]: the tables, the summary and the `--json` document.
//! - [`streams`]: `--streams`, the published outbox rows looked for in the streams, and what a
//!   stream lost republished.

pub mod check;
pub mod difference;
pub mod repair;
pub mod report;
pub mod rules;
pub mod settlement;
pub mod streams;

use crate::cli::Outcome;
use crate::signing::Signing;
use crate::targets::{ServiceName, Targets};
use check::{BusinessDay, Options};
use difference::{Difference, RepairAction};
use jetsaga_contracts::Actor;
use repair::RepairOutcome;
use std::collections::HashSet;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use time::{Date, Duration};

/// How long after its deadline a PENDING order counts as stuck, by default (`--slack-secs`, and
/// the console's `CONSOLE_SLACK_SECS`).
pub const DEFAULT_SLACK_SECS: u32 = 30;
/// How long an ended order is left to its in-flight compensations before it is judged, by default
/// (`--settle-secs`, and the console's `CONSOLE_SETTLE_SECS`).
pub const DEFAULT_SETTLE_SECS: u32 = 10;

/// `jetsaga reconcile`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub struct ReconcileArgs {
    /// Check only the orders created on this UTC business date (YYYY-MM-DD). Conservation is
    /// always checked over everything.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub date: Option<Date>,
    /// Fix what ordinary compensating events can fix, through the owning service's outbox; list
    /// what needs a person. Exits 0 only when a re-check is clean.
    #[arg(long)]
    pub repair: bool,
    /// Also compare the payments charged on --date with this settlement CSV
    /// (`payment_id,amount_cents,time`).
    #[arg(long, value_name = "FILE", requires = "date")]
    pub settlement: Option<PathBuf>,
    /// A PENDING order is stuck this many seconds after its deadline.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_SLACK_SECS)]
    pub slack_secs: u32,
    /// An order that ended less than this many seconds ago is not judged yet: its compensations
    /// may still be on their way.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_SETTLE_SECS)]
    pub settle_secs: u32,
    /// Check the streams instead of the databases: each service's outbox rows published within
    /// --window are looked for in its stream (dead-letter copies in DLQ), and every event a stream
    /// no longer holds is published again under its own Msg-Id and ce-id. Reads the databases,
    /// writes only to NATS (the admin user on a locked-down server).
    #[arg(long, conflicts_with_all = ["date", "repair", "settlement"])]
    pub streams: bool,
    /// With --streams: only this service's outbox.
    #[arg(long, value_enum, requires = "streams")]
    pub service: Option<ServiceName>,
    /// With --streams: the rows published this long ago or later are checked (90s, 15m, 2h, 1d).
    /// Published outbox rows are kept a day longer than their stream keeps events; a window beyond
    /// a stream's retention (30 days by default) is cut to it, since older events expire by design.
    #[arg(
        long,
        value_name = "AGE",
        default_value = "24h",
        value_parser = streams::parse_window,
        requires = "streams"
    )]
    pub window: std::time::Duration,
    /// With --streams: report what is missing, publish nothing.
    #[arg(long, requires = "streams")]
    pub dry_run: bool,
    /// With --repair: the operator who repairs.
    #[command(flatten)]
    pub signing: Signing,
}

/// The exit codes, for `--help`.
const EXIT_CODES: &str = "Exit codes: 0 clean; 1 differences remain; 2 the check could not run.
With --streams: 0 every event published in the window is in its stream; 3 events were missing and \
every one is republished now (NATS lost writes it had acknowledged: alert on it); 1 events are \
still missing (--dry-run, or a republish the stream dropped as a duplicate: run again after its \
dedupe window); 2 the audit could not run.";

fn parse_date(s: &str) -> Result<Date, String> {
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|e| format!("{s:?} is not a date like 2026-03-01: {e}"))
}

pub async fn run(args: ReconcileArgs, targets: &Targets, json: bool) -> Outcome {
    if args.streams {
        let streams = streams::StreamsArgs {
            service: args.service,
            window: args.window,
            dry_run: args.dry_run,
        };
        return streams::run(streams, targets, json).await;
    }
    // Who repairs is settled first, and a bad settlement file is read next: either stops
    // everything before any database is touched.
    let repaired_by = args.repair.then(|| args.signing.operator()).transpose()?;
    let settlement_rows = args
        .settlement
        .as_deref()
        .map(settlement::read)
        .transpose()?;
    let options = Options {
        day: args.date.map(BusinessDay::new),
        slack: Duration::seconds(i64::from(args.slack_secs)),
        settle: Duration::seconds(i64::from(args.settle_secs)),
        progress: !json && std::io::stderr().is_terminal(),
    };
    let sources = check::Sources::connect(targets).await?;
    let Reconciled {
        first,
        repairs,
        remaining,
        in_flight,
    } = reconcile(
        &sources,
        targets,
        &options,
        settlement_rows.as_deref(),
        repaired_by.as_ref(),
    )
    .await?;

    let report = report::Report {
        date: args.date.map(|d| d.to_string()),
        findings: &first,
        repairs: repairs.as_deref(),
        repaired_by: repaired_by.as_ref().map(|a| a.as_str()),
        remaining: &remaining,
        in_flight,
    };
    if json {
        crate::output::json(&report.to_json())?;
    } else {
        print!("{}", report.render());
    }
    Ok(if report.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What one reconcile found and, with a repair, what it did and what is left.
#[derive(Debug, Clone)]
pub struct Reconciled {
    /// The first check.
    pub first: check::Findings,
    /// With a repair: each repair and its outcome (empty when nothing was repairable).
    pub repairs: Option<Vec<repair::RepairResult>>,
    /// What the re-check after the repairs still finds (without a repair: the first check's).
    pub remaining: Vec<Difference>,
    /// Compensations of orders the repair cancelled, on their way (not counted as remaining).
    pub in_flight: usize,
}

/// Checks, and with `repair` repairs every repairable difference and checks again. Both
/// `jetsaga reconcile` and the console's reconcile page run this; the caller has settled who
/// repairs before.
pub async fn reconcile(
    sources: &check::Sources,
    targets: &Targets,
    options: &Options,
    settlement_rows: Option<&[settlement::SettlementRow]>,
    repair_by: Option<&Actor>,
) -> anyhow::Result<Reconciled> {
    let first = check::run(sources, options, settlement_rows).await?;
    let mut repairs = None;
    let mut remaining = first.differences.clone();
    let mut in_flight = 0;
    if let Some(actor) = repair_by.filter(|_| first.differences.iter().any(|d| !d.needs_person())) {
        let done = repair::run(&first.differences, targets, actor).await?;
        let recheck = check::run(sources, options, settlement_rows).await?;
        (remaining, in_flight) = after_repair(recheck.differences, &done);
        repairs = Some(done);
    } else if repair_by.is_some() {
        repairs = Some(Vec::new());
    }
    Ok(Reconciled {
        first,
        repairs,
        remaining,
        in_flight,
    })
}

/// What remains after a repair: the re-check's differences, except the compensations of the
/// orders this run cancelled as overdue: the cancellation is in the order service's outbox, and
/// voucher, points, payment and stock compensate once they receive it. Returns what remains and how many
/// were set aside as in flight. (The other repairs set nothing else off: what they fixed is fixed
/// in the re-check, or remains.)
fn after_repair(
    recheck: Vec<Difference>,
    repairs: &[repair::RepairResult],
) -> (Vec<Difference>, usize) {
    let cancelled: HashSet<_> = repairs
        .iter()
        .filter(|r| {
            r.action == RepairAction::CancelOverdue
                && matches!(r.outcome, RepairOutcome::Emitted { .. })
        })
        .filter_map(|r| r.difference.entity.order_id())
        .collect();
    let (in_flight, remaining): (Vec<_>, Vec<_>) = recheck.into_iter().partition(|d| {
        matches!(
            d.repair,
            Some(
                RepairAction::Refund
                    | RepairAction::ReleaseStock
                    | RepairAction::ReleaseVoucher
                    | RepairAction::ReleasePoints
            )
        ) && d.entity.order_id().is_some_and(|o| cancelled.contains(&o))
    });
    (remaining, in_flight.len())
}

#[cfg(test)]
mod tests {
    use super::difference::{Entity, Kind};
    use super::repair::RepairResult;
    use super::*;
    use jetsaga_contracts::{OrderId, Producer};

    #[test]
    fn dates_are_utc_business_days() {
        let day = BusinessDay::new(parse_date("2026-03-01").unwrap());
        assert_eq!(day.start, time::macros::datetime!(2026-03-01 00:00 UTC));
        assert_eq!(day.end, time::macros::datetime!(2026-03-02 00:00 UTC));
        assert!(parse_date("2026-3-1x").is_err());
        assert!(parse_date("01.03.2026").is_err());
    }

    #[test]
    fn an_overdue_orders_compensations_are_in_flight_but_other_differences_remain() {
        let overdue = OrderId::new_random();
        let other = OrderId::new_random();
        let emitted = RepairOutcome::Emitted {
            event_id: "e".into(),
            ce_type: "t".into(),
        };
        let repairable = |order, action| {
            Difference::repairable(
                Kind::StatusMismatch,
                Entity::Order(order),
                "x".into(),
                action,
            )
        };
        let repairs = [
            RepairResult {
                difference: repairable(overdue, RepairAction::CancelOverdue),
                action: RepairAction::CancelOverdue,
                outcome: emitted.clone(),
            },
            RepairResult {
                difference: repairable(other, RepairAction::Refund),
                action: RepairAction::Refund,
                outcome: emitted,
            },
        ];
        let person = Difference::for_person(
            Kind::StatusMismatch,
            Producer::VOUCHER,
            Entity::Order(overdue),
            "redeemed".into(),
        );
        let (remaining, in_flight) = after_repair(
            vec![
                repairable(overdue, RepairAction::Refund),
                repairable(overdue, RepairAction::ReleaseStock),
                repairable(other, RepairAction::ReleaseStock),
                person.clone(),
            ],
            &repairs,
        );
        assert_eq!(in_flight, 2);
        assert_eq!(
            remaining,
            vec![repairable(other, RepairAction::ReleaseStock), person]
        );
    }
}
