//! One module per producing service. Each event carries enough data for its producer to rebuild its
//! business state from its own stream (for example, StockReserved carries each SKU and quantity).

pub mod order;
pub mod payment;
pub mod points;
pub mod stock;
pub mod voucher;

use crate::{Money, Sku};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One line of an order, priced when the order was accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    pub sku: Sku,
    pub quantity: u32,
    pub unit_price: Money,
}

/// A SKU and a quantity, as stock holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockLine {
    pub sku: Sku,
    pub quantity: u32,
}

macro_rules! keyed_by_order {
    ($($t:ty),+ $(,)?) => {
        $(impl $crate::event_set::Keyed for $t {
            fn key(&self) -> String {
                self.order_id.to_string()
            }
        })+
    };
}
pub(crate) use keyed_by_order;

#[cfg(test)]
mod tests {
    use super::order::*;
    use super::*;
    use crate::{CustomerId, DecodeError, EventSet, OrderId};

    fn created() -> OrderEvent {
        OrderEvent::OrderCreated(OrderCreated {
            order_id: OrderId::new_random(),
            customer_id: CustomerId::new_random(),
            lines: vec![OrderLine {
                sku: Sku::parse("SKU-1").unwrap(),
                quantity: 2,
                unit_price: Money::from_cents(250).unwrap(),
            }],
            total: Money::from_cents(500).unwrap(),
            voucher_code: None,
            points: None,
            deadline: time::OffsetDateTime::UNIX_EPOCH,
            idempotency_key: None,
        })
    }

    #[test]
    fn event_round_trips_through_its_ce_type() {
        let e = created();
        assert_eq!(e.ce_type(), "jetsaga.orders.created.v1");
        assert!(e.subject().starts_with("orders.created."));
        let back = OrderEvent::from_payload(e.ce_type(), &e.to_payload()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn an_order_created_without_an_idempotency_key_reads_and_writes_as_before() {
        let e = created();
        let json: serde_json::Value = serde_json::from_slice(&e.to_payload()).unwrap();
        assert!(json.get("idempotency_key").is_none(), "{json}");
        // An event written before the key was carried decodes, without one.
        let back = OrderEvent::from_payload(e.ce_type(), &e.to_payload()).unwrap();
        assert_eq!(back, e);

        let OrderEvent::OrderCreated(mut keyed) = e else {
            unreachable!()
        };
        keyed.idempotency_key = Some("client-key".into());
        let keyed = OrderEvent::OrderCreated(keyed);
        let json: serde_json::Value = serde_json::from_slice(&keyed.to_payload()).unwrap();
        assert_eq!(json["idempotency_key"], "client-key");
        assert_eq!(
            OrderEvent::from_payload(keyed.ce_type(), &keyed.to_payload()).unwrap(),
            keyed
        );
    }

    #[test]
    fn unknown_type_and_garbage_are_told_apart() {
        let e = created();
        assert!(matches!(
            OrderEvent::from_payload("jetsaga.payments.succeeded.v1", &e.to_payload()),
            Err(DecodeError::UnknownType { .. })
        ));
        assert!(matches!(
            OrderEvent::from_payload("jetsaga.orders.created.v1", b"{not json"),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn every_ce_type_names_its_own_domain() {
        fn check<E: EventSet>() {
            for t in E::ce_types() {
                assert!(
                    t.starts_with(&format!("jetsaga.{}.", E::PRODUCER.domain())),
                    "{t}"
                );
            }
        }
        check::<OrderEvent>();
        check::<crate::VoucherEvent>();
        check::<crate::PaymentEvent>();
        check::<crate::PointsEvent>();
        check::<crate::StockEvent>();
    }
}
