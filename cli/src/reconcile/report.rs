//! What `jetsaga reconcile` prints: tables and a summary for people, one JSON document with
//! `--json`.

use super::check::Findings;
use super::difference::{Difference, Kind};
use super::repair::{RepairOutcome, RepairResult};
use crate::output::Table;
use serde::Serialize;
use std::collections::BTreeMap;

/// Everything one run found and did.
#[derive(Debug)]
pub struct Report<'a> {
    /// The business date checked, `None` for every order.
    pub date: Option<String>,
    /// The first check.
    pub findings: &'a Findings,
    /// With `--repair`: what each repair did.
    pub repairs: Option<&'a [RepairResult]>,
    /// With `--repair`: the operator who ran it.
    pub repaired_by: Option<&'a str>,
    /// What remains: after the repairs' re-check, or the first check's differences.
    pub remaining: &'a [Difference],
    /// Differences of orders repaired in this run that the re-check still sees, because the events
    /// the repair set off are on their way (a later run confirms them).
    pub in_flight: usize,
}

impl Report<'_> {
    pub fn clean(&self) -> bool {
        self.remaining.is_empty()
    }

    fn repaired(&self) -> usize {
        self.repairs.map_or(0, |r| {
            r.iter()
                .filter(|r| !matches!(r.outcome, RepairOutcome::Failed(_)))
                .count()
        })
    }

    /// The closing summary line.
    pub fn summary(&self) -> String {
        let f = self.findings;
        let scope = match &self.date {
            Some(d) => format!("{} orders of {d}", f.orders),
            None => format!("{} orders", f.orders),
        };
        let mut checked = format!(
            "checked {scope} ({} running, {} settling), every account and SKU",
            f.running, f.settling
        );
        if let Some(rows) = f.settlement_rows {
            checked.push_str(&format!(", {rows} settlement rows"));
        }
        let needs_person = self.remaining.iter().filter(|d| d.needs_person()).count();
        let repairable = self.remaining.len() - needs_person;
        match self.repairs {
            None if self.clean() => format!("clean: {checked}; no differences"),
            None => format!(
                "{} differences ({}): {repairable} repairable with --repair, {needs_person} need a person; {checked}",
                self.remaining.len(),
                by_kind_text(self.remaining)
            ),
            Some(repairs) => {
                let failed = repairs.len() - self.repaired();
                let mut text = format!("repaired {}; {needs_person} need a person", self.repaired());
                if failed > 0 {
                    text.push_str(&format!("; {failed} repairs failed"));
                }
                if repairable > 0 {
                    text.push_str(&format!("; {repairable} still repairable"));
                }
                if self.in_flight > 0 {
                    text.push_str(&format!(
                        "; {} follow-on effects in flight (the next run confirms them)",
                        self.in_flight
                    ));
                }
                if self.clean() {
                    text.push_str("; clean now");
                }
                format!("{text}; {checked}")
            }
        }
    }

    /// Tables and the summary.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if !self.findings.differences.is_empty() {
            out.push_str(&differences_table(&self.findings.differences).render());
        }
        if let Some(repairs) = self.repairs.filter(|r| !r.is_empty()) {
            let mut t = Table::new(["repair", "service", "entity", "outcome"]);
            for r in repairs {
                let outcome = match &r.outcome {
                    RepairOutcome::Emitted { event_id, ce_type } => {
                        format!("emitted {ce_type} {event_id}")
                    }
                    RepairOutcome::AlreadyConsistent(found) => {
                        format!("nothing to do: {found}")
                    }
                    RepairOutcome::Failed(e) => format!("FAILED: {e}"),
                };
                t.row([
                    r.action.as_str().to_owned(),
                    r.action.service().to_string(),
                    r.difference.entity.to_string(),
                    outcome,
                ]);
            }
            out.push('\n');
            if let Some(by) = self.repaired_by {
                out.push_str(&format!("repairs by {by}:\n"));
            }
            out.push_str(&t.render());
            if !self.remaining.is_empty() {
                out.push_str("\nremaining after repair:\n");
                out.push_str(&differences_table(self.remaining).render());
            }
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    /// The `--json` document.
    pub fn to_json(&self) -> JsonReport {
        let needs_person = self.remaining.iter().filter(|d| d.needs_person()).count();
        JsonReport {
            date: self.date.clone(),
            orders_checked: self.findings.orders,
            running: self.findings.running,
            settling: self.findings.settling,
            settlement_rows: self.findings.settlement_rows,
            repaired_by: self.repaired_by.map(str::to_owned),
            differences: self
                .findings
                .differences
                .iter()
                .map(JsonDifference::from)
                .collect(),
            repaired: self
                .repairs
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    let (event_id, event_type, detail) = match &r.outcome {
                        RepairOutcome::Emitted { event_id, ce_type } => {
                            (Some(event_id.clone()), Some(ce_type.clone()), None)
                        }
                        RepairOutcome::AlreadyConsistent(s) | RepairOutcome::Failed(s) => {
                            (None, None, Some(s.clone()))
                        }
                    };
                    JsonRepair {
                        difference: JsonDifference::from(&r.difference),
                        action: r.action.as_str(),
                        outcome: r.outcome.as_str(),
                        event_id,
                        event_type,
                        detail,
                    }
                })
                .collect(),
            remaining: self.remaining.iter().map(JsonDifference::from).collect(),
            summary: JsonSummary {
                differences: self.findings.differences.len(),
                by_kind: by_kind(&self.findings.differences),
                repaired: self.repaired(),
                in_flight: self.in_flight,
                remaining: self.remaining.len(),
                repairable: self.remaining.len() - needs_person,
                needs_person,
                clean: self.clean(),
            },
            text: self.summary(),
        }
    }
}

fn differences_table(differences: &[Difference]) -> Table {
    let mut t = Table::new(["kind", "service", "entity", "detail", "repair"]);
    for d in differences {
        t.row([
            d.kind.to_string(),
            d.service.to_string(),
            d.entity.to_string(),
            d.detail.clone(),
            d.repair
                .map_or_else(|| "needs a person".to_owned(), |a| a.describe().to_owned()),
        ]);
    }
    t
}

fn by_kind(differences: &[Difference]) -> BTreeMap<Kind, usize> {
    let mut counts = BTreeMap::new();
    for d in differences {
        *counts.entry(d.kind).or_default() += 1;
    }
    counts
}

fn by_kind_text(differences: &[Difference]) -> String {
    by_kind(differences)
        .into_iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `jetsaga reconcile --json`.
#[derive(Debug, Serialize)]
pub struct JsonReport {
    pub date: Option<String>,
    pub orders_checked: u64,
    pub running: u64,
    pub settling: u64,
    pub settlement_rows: Option<usize>,
    /// With `--repair`: the operator who ran it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repaired_by: Option<String>,
    /// What the first check found.
    pub differences: Vec<JsonDifference>,
    /// With `--repair`: each repair and what it did.
    pub repaired: Vec<JsonRepair>,
    /// What is left: after the repairs' re-check, or the first check's differences.
    pub remaining: Vec<JsonDifference>,
    pub summary: JsonSummary,
    /// The summary line a person reads.
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct JsonDifference {
    pub kind: Kind,
    pub service: &'static str,
    /// `order`, `customer`, `sku` or `payment`.
    pub entity: &'static str,
    pub id: String,
    pub order_id: Option<String>,
    pub detail: String,
    /// The repair action, or `null` when it needs a person.
    pub repair: Option<&'static str>,
    pub needs_person: bool,
}

impl From<&Difference> for JsonDifference {
    fn from(d: &Difference) -> Self {
        JsonDifference {
            kind: d.kind,
            service: d.service.service(),
            entity: d.entity.type_name(),
            id: d.entity.id(),
            order_id: d.entity.order_id().map(|o| o.to_string()),
            detail: d.detail.clone(),
            repair: d.repair.map(|a| a.as_str()),
            needs_person: d.needs_person(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct JsonRepair {
    #[serde(flatten)]
    pub difference: JsonDifference,
    pub action: &'static str,
    /// `emitted`, `already_consistent` or `failed`.
    pub outcome: &'static str,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    /// What was found (already consistent) or what went wrong (failed).
    pub detail: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct JsonSummary {
    /// Differences the first check found.
    pub differences: usize,
    pub by_kind: BTreeMap<Kind, usize>,
    pub repaired: usize,
    pub in_flight: usize,
    pub remaining: usize,
    pub repairable: usize,
    pub needs_person: usize,
    /// Nothing remains: the exit code is 0.
    pub clean: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::difference::{Entity, RepairAction};
    use jetsaga_contracts::{OrderId, Producer};

    fn findings(differences: Vec<Difference>) -> Findings {
        Findings {
            differences,
            orders: 12,
            running: 1,
            settling: 0,
            settlement_rows: None,
        }
    }

    fn refund() -> Difference {
        Difference::repairable(
            Kind::StatusMismatch,
            Entity::Order(OrderId::new_random()),
            "order is CANCELLED but its payment is CHARGED (12.50)".into(),
            RepairAction::Refund,
        )
    }

    fn person() -> Difference {
        Difference::for_person(
            Kind::AmountMismatch,
            Producer::PAYMENT,
            Entity::Order(OrderId::new_random()),
            "charged 10.00, but total 10.00 − discount 0.50 is 9.50".into(),
        )
    }

    #[test]
    fn a_clean_run_says_so() {
        let f = findings(vec![]);
        let r = Report {
            date: Some("2026-03-01".into()),
            findings: &f,
            repairs: None,
            repaired_by: None,
            remaining: &[],
            in_flight: 0,
        };
        assert_eq!(
            r.render(),
            "clean: checked 12 orders of 2026-03-01 (1 running, 0 settling), every account and SKU; no differences\n"
        );
        assert!(r.to_json().summary.clean);
    }

    #[test]
    fn differences_are_listed_with_their_repair_or_a_person() {
        let f = findings(vec![refund(), person()]);
        let r = Report {
            date: None,
            findings: &f,
            repairs: None,
            repaired_by: None,
            remaining: &f.differences,
            in_flight: 0,
        };
        let text = r.render();
        assert!(
            text.starts_with("kind             service  entity"),
            "{text}"
        );
        assert!(text.contains("payment refunds (PaymentRefunded)"), "{text}");
        assert!(text.contains("needs a person"), "{text}");
        assert!(
            text.ends_with("2 differences (1 amount_mismatch, 1 status_mismatch): 1 repairable with --repair, 1 need a person; checked 12 orders (1 running, 0 settling), every account and SKU\n"),
            "{text}"
        );
        let json = serde_json::to_value(r.to_json()).unwrap();
        assert_eq!(json["differences"][0]["kind"], "status_mismatch");
        assert_eq!(json["differences"][0]["repair"], "refund");
        assert_eq!(json["differences"][1]["needs_person"], true);
        assert_eq!(json["summary"]["by_kind"]["amount_mismatch"], 1);
    }

    #[test]
    fn after_repair_the_summary_counts_repaired_and_what_needs_a_person() {
        let repaired = refund();
        let left = person();
        let f = findings(vec![repaired.clone(), left.clone()]);
        let repairs = [RepairResult {
            difference: repaired,
            action: RepairAction::Refund,
            outcome: RepairOutcome::Emitted {
                event_id: "e1".into(),
                ce_type: "jetsaga.payments.refunded.v1".into(),
            },
        }];
        let remaining = [left];
        let r = Report {
            date: None,
            findings: &f,
            repairs: Some(&repairs),
            repaired_by: None,
            remaining: &remaining,
            in_flight: 0,
        };
        assert!(r
            .summary()
            .starts_with("repaired 1; 1 need a person; checked 12 orders"));
        let json = serde_json::to_value(r.to_json()).unwrap();
        assert_eq!(json["repaired"][0]["outcome"], "emitted");
        assert_eq!(
            json["repaired"][0]["event_type"],
            "jetsaga.payments.refunded.v1"
        );
        assert_eq!(json["summary"]["remaining"], 1);
        assert_eq!(json["summary"]["clean"], false);
    }
}
