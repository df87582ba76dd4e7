//! The five invariants of the design, checked through the public APIs after a scenario.
//!
//! 1. every accepted order reaches CONFIRMED or CANCELLED in time;
//! 2. CONFIRMED: charged exactly once (total − discount − points spent), each line reserved once,
//!    voucher redeemed once by this order, points spent once and earned once;
//! 3. CANCELLED: net charge 0, no stock held, voucher available again, no points held, spent or
//!    earned;
//! 4. conservation: credits = balances + net captured; stock added = available + held by confirmed;
//!    points awarded + earned = available + held + net spent (held 0 once every order ended);
//! 5. no effect twice: each saga's timeline has no repeated event and no unbalanced compensation.
//!
//! Compensations finish after an order turns CANCELLED, so the checker first waits for the system to
//! be quiet (every consumer has nothing pending or unacked, every outbox is empty), then checks, and
//! retries the checks for a while; the last violations are reported.

use crate::api::Api;
use crate::ledger::Ledger;
use jetsaga_testkit::wait_for;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// How the orders of a scenario ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub confirmed: usize,
    pub cancelled: BTreeMap<String, usize>,
    pub orders: BTreeMap<String, Value>,
}

impl Outcome {
    pub fn cancelled_total(&self) -> usize {
        self.cancelled.values().sum()
    }

    pub fn status(&self, order_id: &str) -> &str {
        self.orders[order_id]["status"].as_str().unwrap_or("")
    }

    pub fn reason(&self, order_id: &str) -> &str {
        self.orders[order_id]["cancel_reason"]
            .as_str()
            .unwrap_or("")
    }
}

/// Waits for every order to end, then asserts all invariants (retrying while compensations run).
pub async fn assert_invariants(
    api: &Api,
    ledger: &Ledger,
    terminal_within: Duration,
) -> anyhow::Result<Outcome> {
    wait_for(
        "every order to reach a terminal state",
        terminal_within,
        || async {
            for o in &ledger.orders {
                let status = api.order(&o.order_id).await.ok()?.body["status"]
                    .as_str()?
                    .to_owned();
                if status == "PENDING" {
                    return None;
                }
            }
            Some(())
        },
    )
    .await?;
    wait_quiet(api, terminal_within).await?;
    let mut last = Vec::new();
    for _ in 0..150 {
        match check_once(api, ledger).await {
            Ok(outcome) => return Ok(outcome),
            Err(violations) => last = violations,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("invariants violated:\n  {}", last.join("\n  "))
}

/// The durable consumers of the five services.
const CONSUMERS: [(&str, &str); 11] = [
    ("VOUCHERS", "order-on-vouchers"),
    ("POINTS", "order-on-points"),
    ("PAYMENTS", "order-on-payments"),
    ("STOCK", "order-on-stock"),
    ("ORDERS", "voucher-on-orders"),
    ("VOUCHERS", "points-on-vouchers"),
    ("ORDERS", "points-on-orders"),
    ("POINTS", "payment-on-points"),
    ("ORDERS", "payment-on-orders"),
    ("PAYMENTS", "stock-on-payments"),
    ("ORDERS", "stock-on-orders"),
];

/// Waits until no consumer has anything pending or unacked and every outbox is empty, twice in a
/// row, so that effects still in flight cannot land after the checks.
pub async fn wait_quiet(api: &Api, within: Duration) -> anyhow::Result<()> {
    let js = match api.nats_url() {
        Some(url) => Some(async_nats::jetstream::new(
            saga_kit::provision::connect(url, "scenario-checker").await?,
        )),
        None => None,
    };
    let quiet = || async {
        for svc in crate::system::Svc::ALL {
            if api
                .metric(svc, "jetsaga_outbox_backlog", "")
                .await
                .unwrap_or(1.0)
                > 0.0
            {
                return false;
            }
        }
        if let Some(js) = &js {
            for (stream, durable) in CONSUMERS {
                let Ok(mut c) = js
                    .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(durable, stream)
                    .await
                else {
                    return false;
                };
                match c.info().await {
                    Ok(i) if i.num_pending == 0 && i.num_ack_pending == 0 => {}
                    _ => return false,
                }
            }
        }
        true
    };
    let deadline = tokio::time::Instant::now() + within;
    let mut streak = 0;
    while streak < 2 {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for the system to be quiet"
        );
        streak = if quiet().await { streak + 1 } else { 0 };
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn check_once(api: &Api, ledger: &Ledger) -> Result<Outcome, Vec<String>> {
    let mut v = Vec::new();
    let mut outcome = Outcome::default();
    let mut charged: BTreeMap<&str, i64> = BTreeMap::new();
    let mut held: BTreeMap<&str, i64> = BTreeMap::new();
    let mut voucher_uses: BTreeMap<&str, usize> = BTreeMap::new();
    // Per customer: points spent and earned by confirmed orders.
    let mut points_net: BTreeMap<&str, i64> = BTreeMap::new();
    for o in &ledger.orders {
        let body = match api.order(&o.order_id).await.and_then(|a| a.ok()) {
            Ok(b) => b,
            Err(e) => {
                v.push(format!("order {}: {e}", o.order_id));
                continue;
            }
        };
        let status = body["status"].as_str().unwrap_or("").to_owned();
        let total = body["total_cents"].as_i64().unwrap_or(-1);
        let discount = body["discount_cents"].as_i64().unwrap_or(0);
        let expected_total: i64 = o.lines.iter().map(|(_, q, p)| q * p).sum();
        if total != expected_total {
            v.push(format!(
                "order {}: total {total}, lines say {expected_total}",
                o.order_id
            ));
        }
        match status.as_str() {
            "CONFIRMED" => {
                outcome.confirmed += 1;
                let expected_discount = o
                    .voucher
                    .as_ref()
                    .and_then(|c| ledger.vouchers.get(c))
                    .map(|vc| vc.discount_cents.min(total))
                    .unwrap_or(0);
                if discount != expected_discount {
                    v.push(format!(
                        "order {}: discount {discount}, expected {expected_discount}",
                        o.order_id
                    ));
                }
                let points_spent = body["points_spent"].as_i64().unwrap_or(-1);
                let expected_points = o.points.unwrap_or(0).min(total - discount).max(0);
                if points_spent != expected_points {
                    v.push(format!(
                        "order {}: points_spent {points_spent}, expected {expected_points}",
                        o.order_id
                    ));
                }
                let paid = total - discount - points_spent;
                *charged.entry(&o.customer_id).or_default() += paid;
                *points_net.entry(&o.customer_id).or_default() += paid / 100 - points_spent;
                for (sku, q, _) in &o.lines {
                    *held.entry(sku).or_default() += q;
                }
                if let Some(code) = &o.voucher {
                    *voucher_uses.entry(code).or_default() += 1;
                }
            }
            "CANCELLED" => {
                let reason = body["cancel_reason"].as_str().unwrap_or("").to_owned();
                if ![
                    "voucher_rejected",
                    "points_rejected",
                    "payment_failed",
                    "stock_failed",
                    "timeout",
                ]
                .contains(&reason.as_str())
                {
                    v.push(format!(
                        "order {}: cancelled with reason {reason:?}",
                        o.order_id
                    ));
                }
                *outcome.cancelled.entry(reason).or_default() += 1;
            }
            other => v.push(format!(
                "order {}: status {other:?} is not terminal",
                o.order_id
            )),
        }
        check_timeline(api, &o.order_id, &status, o.voucher.is_some(), &mut v).await;
        outcome.orders.insert(o.order_id.clone(), body);
    }
    for (customer, credited) in &ledger.credits {
        let expected = credited - charged.get(customer.as_str()).copied().unwrap_or(0);
        match api.balance(customer).await {
            Ok(b) if b == expected => {}
            Ok(b) => v.push(format!(
                "customer {customer}: balance {b}, credits minus confirmed charges say {expected}"
            )),
            Err(e) => v.push(format!("customer {customer}: {e}")),
        }
    }
    for (sku, added) in &ledger.stock_added {
        let expect_held = held.get(sku.as_str()).copied().unwrap_or(0);
        match api.stock(sku).await {
            Ok((available, reserved)) => {
                if reserved != expect_held {
                    v.push(format!(
                        "sku {sku}: reserved {reserved}, confirmed orders hold {expect_held}"
                    ));
                }
                if available + reserved != *added {
                    v.push(format!(
                        "sku {sku}: available {available} + reserved {reserved} != added {added}"
                    ));
                }
            }
            Err(e) => v.push(format!("sku {sku}: {e}")),
        }
    }
    let mut point_customers: std::collections::BTreeSet<&str> =
        ledger.points_awarded.keys().map(String::as_str).collect();
    point_customers.extend(points_net.keys().copied());
    for customer in point_customers {
        let awarded = ledger.points_awarded.get(customer).copied().unwrap_or(0);
        let expected = awarded + points_net.get(customer).copied().unwrap_or(0);
        match api.points(customer).await {
            Ok((available, 0)) if available == expected => {}
            Ok((available, held)) => v.push(format!(
                "customer {customer}: points available {available} held {held}, awarded \
                 {awarded} plus earned minus spent say {expected} available and none held"
            )),
            Err(e) => v.push(format!("customer {customer} points: {e}")),
        }
    }
    for (code, issued) in &ledger.vouchers {
        let uses = voucher_uses.get(code.as_str()).copied().unwrap_or(0);
        let expected = match (uses, issued.expired) {
            (0, false) => "AVAILABLE",
            (0, true) => "EXPIRED",
            (1, _) => "REDEEMED",
            _ => {
                v.push(format!("voucher {code}: used by {uses} confirmed orders"));
                continue;
            }
        };
        match api.voucher_status(code).await {
            Ok(s) if s == expected => {}
            Ok(s) => v.push(format!("voucher {code}: {s}, expected {expected}")),
            Err(e) => v.push(format!("voucher {code}: {e}")),
        }
    }
    if v.is_empty() {
        Ok(outcome)
    } else {
        Err(v)
    }
}

/// Invariant 5 on one saga's timeline: no effect announced twice under two ids, and compensations
/// balance forward steps. The same event id may stand in a stream twice (a replay, a duplicate
/// publish): that is one event, which the inboxes dedupe, so events are counted by distinct id.
async fn check_timeline(
    api: &Api,
    order_id: &str,
    status: &str,
    has_voucher: bool,
    v: &mut Vec<String>,
) {
    let body = match api.timeline(order_id).await.and_then(|a| a.ok()) {
        Ok(b) => b,
        Err(e) => {
            v.push(format!("timeline of {order_id}: {e}"));
            return;
        }
    };
    let events = body["events"].as_array().cloned().unwrap_or_default();
    let mut ids = HashSet::new();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for e in &events {
        let id = e["event_id"].as_str().unwrap_or("").to_owned();
        if !ids.insert(id) {
            continue;
        }
        *count
            .entry(e["event"].as_str().unwrap_or("").to_owned())
            .or_default() += 1;
    }
    let n = |name: &str| count.get(name).copied().unwrap_or(0);
    let mut expect = |what: &str, ok: bool| {
        if !ok {
            v.push(format!(
                "timeline of {order_id} ({status}): {what}; saw {count:?}"
            ));
        }
    };
    expect("one orders.created", n("orders.created") == 1);
    match status {
        "CONFIRMED" => {
            expect(
                "one orders.confirmed",
                n("orders.confirmed") == 1 && n("orders.cancelled") == 0,
            );
            expect(
                "one payments.succeeded, never refunded",
                n("payments.succeeded") == 1 && n("payments.refunded") == 0,
            );
            expect(
                "one stock.reserved, never released",
                n("stock.reserved") == 1 && n("stock.released") == 0,
            );
            expect(
                "points reserved once and earned once, never released",
                n("points.reserved") == 1 && n("points.earned") == 1 && n("points.released") == 0,
            );
            if has_voucher {
                expect(
                    "voucher reserved and redeemed once",
                    n("vouchers.reserved") == 1 && n("vouchers.redeemed") == 1,
                );
            }
        }
        "CANCELLED" => {
            expect(
                "one orders.cancelled, no confirmation",
                n("orders.cancelled") == 1 && n("orders.confirmed") == 0,
            );
            expect(
                "every charge refunded once",
                n("payments.succeeded") == n("payments.refunded") && n("payments.refunded") <= 1,
            );
            expect(
                "every reservation released once",
                n("stock.reserved") == n("stock.released") && n("stock.released") <= 1,
            );
            expect(
                "points released at most once, never earned",
                n("points.released") <= n("points.reserved")
                    && n("points.reserved") <= 1
                    && n("points.earned") == 0,
            );
            if has_voucher {
                expect(
                    "a reserved voucher released once, never redeemed",
                    n("vouchers.released") <= 1 && n("vouchers.redeemed") == 0,
                );
            }
        }
        _ => {}
    }
}
