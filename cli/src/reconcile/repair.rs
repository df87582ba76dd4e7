//! `--repair`: each repairable difference is handed to its owning service's repair function
//! (`services/<service>/src/repair.rs`), which changes the state and writes the announcing event
//! to that service's outbox in one transaction. The service's relay publishes it; the other
//! services react as to any other event (a cancellation is compensated by all of them). The
//! operator who repairs signs each change in the same transaction ([`saga_kit::repair::sign`]), so
//! `jetsaga audit` and the console's audit page show who repaired what.
//!
//! The reconciler decided from what it read a moment ago; every repair function locks the rows
//! again and re-checks the state, so a difference that resolved itself meanwhile (a late
//! compensation, another reconciler) is reported as already consistent and nothing is written.

use super::difference::{Difference, RepairAction};
use crate::targets::Targets;
use anyhow::Context as _;
use jetsaga_contracts::events::order::OrderConfirmed;
use jetsaga_contracts::{Actor, OrderId, Producer};
use saga_kit::repair::Repaired;
use saga_kit::Envelope;
use sqlx::PgPool;
use std::collections::HashMap;
use time::OffsetDateTime;

/// What one repair did.
#[derive(Debug, Clone)]
pub struct RepairResult {
    pub difference: Difference,
    pub action: RepairAction,
    pub outcome: RepairOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairOutcome {
    /// The change was committed with this event in the owner's outbox.
    Emitted { event_id: String, ce_type: String },
    /// The owner found nothing left to change.
    AlreadyConsistent(String),
    /// The repair could not be made; the difference remains.
    Failed(String),
}

impl RepairOutcome {
    pub const fn as_str(&self) -> &'static str {
        match self {
            RepairOutcome::Emitted { .. } => "emitted",
            RepairOutcome::AlreadyConsistent(_) => "already_consistent",
            RepairOutcome::Failed(_) => "failed",
        }
    }
}

/// Write pools, opened when a service is first needed.
struct Pools<'a> {
    targets: &'a Targets,
    open: HashMap<Producer, PgPool>,
}

impl Pools<'_> {
    async fn get(&mut self, producer: Producer) -> anyhow::Result<PgPool> {
        if let Some(pool) = self.open.get(&producer) {
            return Ok(pool.clone());
        }
        let pool = self.targets.pool(producer).await?;
        self.open.insert(producer, pool.clone());
        Ok(pool)
    }
}

/// Repairs every repairable difference, one transaction each. A repair that fails is reported and
/// the others go on; a database that cannot be reached at all is an error.
pub async fn run(
    differences: &[Difference],
    targets: &Targets,
    actor: &Actor,
) -> anyhow::Result<Vec<RepairResult>> {
    let mut pools = Pools {
        targets,
        open: HashMap::new(),
    };
    let mut results = Vec::new();
    for difference in differences {
        let (Some(action), Some(order_id)) = (difference.repair, difference.entity.order_id())
        else {
            continue;
        };
        let pool = pools.get(action.service()).await?;
        // Earning needs the order as the order service confirmed it.
        let confirmed = match action {
            RepairAction::EarnPoints => {
                let orders = pools.get(Producer::ORDER).await?;
                Some(confirmed_order(&orders, order_id).await?)
            }
            _ => None,
        };
        let outcome = match repair_one(&pool, action, order_id, confirmed.as_ref(), actor).await {
            Ok(outcome) => outcome,
            Err(e) => RepairOutcome::Failed(format!("{e:#}")),
        };
        results.push(RepairResult {
            difference: difference.clone(),
            action,
            outcome,
        });
    }
    Ok(results)
}

/// One repair in one transaction of the owning service's database.
async fn repair_one(
    pool: &PgPool,
    action: RepairAction,
    order_id: OrderId,
    confirmed: Option<&OrderConfirmed>,
    actor: &Actor,
) -> anyhow::Result<RepairOutcome> {
    let service = action.service();
    let mut tx = pool.begin().await.with_context(|| {
        format!(
            "{}: opening a transaction in the {service} database",
            action.as_str()
        )
    })?;
    let repaired = match action {
        RepairAction::CancelOverdue => {
            let now: OffsetDateTime = sqlx::query_scalar("SELECT now()")
                .fetch_one(&mut *tx)
                .await
                .context("reading the time of the order database")?;
            order_service::repair::cancel_overdue(&mut tx, order_id, now).await?
        }
        RepairAction::Refund => {
            payment_service::repair::refund_cancelled(&mut tx, order_id).await?
        }
        RepairAction::ReleaseStock => {
            stock_service::repair::release_cancelled(&mut tx, order_id).await?
        }
        RepairAction::ReleaseVoucher => {
            voucher_service::repair::release_cancelled(&mut tx, order_id).await?
        }
        RepairAction::RedeemVoucher => {
            voucher_service::repair::redeem_confirmed(&mut tx, order_id).await?
        }
        RepairAction::ReleasePoints => {
            points_service::repair::release_cancelled(&mut tx, order_id).await?
        }
        RepairAction::EarnPoints => {
            let confirmed = confirmed
                .with_context(|| format!("earning the points of order {order_id}: no order"))?;
            points_service::repair::earn_confirmed(&mut tx, confirmed).await?
        }
    };
    let done = match repaired {
        Repaired::Emitted(envelope) => Ok(envelope),
        Repaired::AlreadyConsistent(why) => Err(why),
    };
    match done {
        Ok(envelope) => {
            saga_kit::repair::sign(
                &mut tx,
                service.service(),
                action.as_str(),
                &envelope,
                actor.as_str(),
            )
            .await
            .with_context(|| {
                format!(
                    "{} of order {order_id}: signing it for {actor} in the {service} database",
                    action.as_str()
                )
            })?;
            tx.commit().await.with_context(|| {
                format!(
                    "{} of order {order_id}: committing in the {service} database",
                    action.as_str()
                )
            })?;
            Ok(emitted(&envelope))
        }
        Err(found) => {
            tx.rollback().await.ok();
            Ok(RepairOutcome::AlreadyConsistent(found))
        }
    }
}

/// The order as the order service confirmed it, from the order database.
async fn confirmed_order(orders: &PgPool, order_id: OrderId) -> anyhow::Result<OrderConfirmed> {
    let order = order_service::store::find_order(orders, order_id)
        .await
        .with_context(|| format!("reading order {order_id} from the order database"))?
        .with_context(|| format!("order {order_id} is not in the order database"))?;
    Ok(OrderConfirmed {
        order_id,
        customer_id: order.customer_id,
        total: order.total,
        discount: order.discount.unwrap_or_default(),
        voucher_code: order.voucher_code,
        points_spent: order.points_spent.unwrap_or_default(),
    })
}

fn emitted(envelope: &Envelope) -> RepairOutcome {
    RepairOutcome::Emitted {
        event_id: envelope.id.to_string(),
        ce_type: envelope.ce_type.clone(),
    }
}
