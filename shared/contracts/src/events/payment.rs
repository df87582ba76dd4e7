//! Events of the payment service, on the PAYMENTS stream (`payments.>`).

use super::{keyed_by_order, OrderLine};
use crate::event_set::Keyed;
use crate::{event_set, Actor, CustomerId, Money, OrderId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An operator credited a customer's account (admin change, keyed by customer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountCredited {
    pub credit_id: Uuid,
    pub customer_id: CustomerId,
    pub amount: Money,
    /// The operator who made the change; `anonymous` when admin routes were open, and in events
    /// written before changes carried one.
    #[serde(default = "Actor::anonymous")]
    pub actor: Actor,
}

/// The customer was charged `amount` (the total minus the discount). Carries the lines for stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentSucceeded {
    pub order_id: OrderId,
    pub payment_id: Uuid,
    pub customer_id: CustomerId,
    pub amount: Money,
    pub lines: Vec<OrderLine>,
}

/// The balance was too low; nothing was charged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentFailed {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub amount: Money,
}

/// Compensation: the charge of a cancelled order went back to the balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRefunded {
    pub order_id: OrderId,
    pub payment_id: Uuid,
    pub customer_id: CustomerId,
    pub amount: Money,
}

keyed_by_order!(PaymentSucceeded, PaymentFailed, PaymentRefunded);

impl Keyed for AccountCredited {
    fn key(&self) -> String {
        self.customer_id.to_string()
    }
}

event_set! {
    /// Everything the payment service says.
    pub enum PaymentEvent {
        service: "payment", stream: "PAYMENTS", domain: "payments";
        AccountCredited(AccountCredited) = "credited",
        PaymentSucceeded(PaymentSucceeded) = "succeeded",
        PaymentFailed(PaymentFailed) = "failed",
        PaymentRefunded(PaymentRefunded) = "refunded",
    }
}
