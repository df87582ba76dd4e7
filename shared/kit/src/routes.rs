//! A service's routing, declared once: which input events go to which handler function, on which
//! durable consumer. Everything else follows from that declaration and the contracts: the subject
//! filters (from each input variant's [`EventSet::subject_filter`]), the dispatch, the events a
//! consumer ignores (every variant it does not name), which inputs are compensations, and the
//! `wire` function that hands the consumers to whoever runs them (the service, a replay, a tool).
//!
//! ```text
//! saga_kit::routes! {
//!     emits PaymentEvent, committed count_outcomes;
//!     /// PointsReserved → charge.
//!     consumer OnPoints("payment-on-points"): PointsEvent {
//!         PointsReserved => step handlers::points_reserved::handle,
//!     }
//!     /// OrderCancelled → refund.
//!     consumer OnOrders("payment-on-orders"): OrderEvent {
//!         OrderCancelled => compensation handlers::order_cancelled::handle,
//!     }
//! }
//! ```
//!
//! Each handler function is `async fn(&mut PgConnection, Payload, &EventContext) ->
//! Result<Vec<Output>, E>` with `HandlerError: From<E>`. A `step` moves the saga forward; a
//! `compensation` undoes this service's step through the barrier (a replay handles those first).
//! A durable's name is part of its identity: renaming one re-delivers its whole stream and
//! changes every id derived from it.

use crate::handler::Handler;
use jetsaga_contracts::EventSet;

/// Where a service declares its consumers once, for whoever runs them: the service process
/// (durable consumers), a replay (ephemeral consumers over the same subjects, same handlers) or a
/// tool that only lists them.
pub trait Wiring {
    /// `handler` consumes `filter_subjects` of its input stream as durable consumer `durable`.
    fn consumer<H: Handler>(&mut self, durable: &'static str, filter_subjects: &[&str], handler: H);

    /// A consumer declared by [`routes!`](crate::routes!): its durable and filters come with it.
    fn route<R: Route>(&mut self, route: R) {
        let filters = R::filter_subjects();
        self.consumer(R::DURABLE, &filters, route);
    }
}

/// A consumer declared by [`routes!`](crate::routes!).
pub trait Route: Handler {
    /// The durable consumer's name.
    const DURABLE: &'static str;
    /// The input variants it handles, by name as in the input's enum.
    const VARIANTS: &'static [&'static str];

    /// The subjects it receives: one filter per handled variant, from the contracts.
    fn filter_subjects() -> Vec<&'static str> {
        Self::VARIANTS
            .iter()
            .map(|v| {
                <Self::Input as EventSet>::subject_filter(v)
                    .unwrap_or_else(|| panic!("{v} is a variant of {}'s input", Self::DURABLE))
            })
            .collect()
    }
}

/// Declares a service's consumers: see the [module documentation](self).
#[macro_export]
macro_rules! routes {
    (
        emits $output:ty $(, committed $committed:path)?;
        $(
            $(#[$doc:meta])*
            consumer $name:ident($durable:literal): $input:ident {
                $( $variant:ident => $kind:ident $handler:path ),+ $(,)?
            }
        )+
    ) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy, Default)]
            pub struct $name;

            impl $name {
                /// The durable consumer's name.
                pub const DURABLE: &'static str = $durable;
            }

            impl $crate::Handler for $name {
                type Input = $input;
                type Output = $output;

                fn compensates(&self, event: &$input) -> bool {
                    #[allow(unreachable_patterns)]
                    match event {
                        $( $input::$variant(_) => $crate::routes!(@compensation $kind), )+
                        _ => false,
                    }
                }

                fn committed(&self, emitted: &[$output], metrics: &$crate::Metrics) {
                    __routes_committed(metrics, emitted)
                }

                async fn handle(
                    &self,
                    tx: &mut $crate::__sqlx::PgConnection,
                    event: $input,
                    ctx: &$crate::EventContext,
                ) -> Result<Vec<$output>, $crate::HandlerError> {
                    #[allow(unreachable_patterns)]
                    match event {
                        $( $input::$variant(e) => Ok($handler(tx, e, ctx).await?), )+
                        // Outside this consumer's filters: nothing here depends on it.
                        _ => Ok(vec![]),
                    }
                }
            }

            impl $crate::routes::Route for $name {
                const DURABLE: &'static str = $durable;
                const VARIANTS: &'static [&'static str] = &[ $( stringify!($variant) ),+ ];
            }
        )+

        /// After a transaction of any of these consumers commits: the business counters.
        fn __routes_committed(metrics: &$crate::Metrics, emitted: &[$output]) {
            let _ = (metrics, emitted);
            $( $committed(metrics, emitted); )?
        }

        /// Declares this service's consumers once, for whoever runs them: the service (durable
        /// consumers), `jetsaga replay` (the same handlers over the same subjects) or a tool.
        pub fn wire(wiring: &mut impl $crate::routes::Wiring) {
            $( wiring.route($name); )+
        }
    };
    (@compensation step) => { false };
    (@compensation compensation) => { true };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::EventContext;
    use crate::HandlerError;
    use jetsaga_contracts::events::order;
    use jetsaga_contracts::{OrderEvent, PaymentEvent};
    use sqlx::PgConnection;

    async fn cancelled(
        _: &mut PgConnection,
        _: order::OrderCancelled,
        _: &EventContext,
    ) -> Result<Vec<PaymentEvent>, HandlerError> {
        Ok(vec![])
    }

    async fn created(
        _: &mut PgConnection,
        _: order::OrderCreated,
        _: &EventContext,
    ) -> Result<Vec<PaymentEvent>, HandlerError> {
        Ok(vec![])
    }

    fn count(_: &crate::Metrics, _: &[PaymentEvent]) {}

    crate::routes! {
        emits PaymentEvent, committed count;
        /// A consumer of two order events.
        consumer OnOrders("test-on-orders"): OrderEvent {
            OrderCreated => step created,
            OrderCancelled => compensation cancelled,
        }
    }

    #[derive(Default)]
    struct Listed(Vec<(&'static str, Vec<String>)>);

    impl Wiring for Listed {
        fn consumer<H: Handler>(&mut self, durable: &'static str, filters: &[&str], _: H) {
            self.0
                .push((durable, filters.iter().map(|f| (*f).to_owned()).collect()));
        }
    }

    #[test]
    fn a_declared_consumer_filters_the_subjects_of_the_variants_it_names() {
        let mut listed = Listed::default();
        wire(&mut listed);
        assert_eq!(
            listed.0,
            vec![(
                "test-on-orders",
                vec![
                    "orders.created.*".to_owned(),
                    "orders.cancelled.*".to_owned()
                ]
            )]
        );
        assert_eq!(OnOrders::DURABLE, "test-on-orders");
    }

    #[test]
    fn only_the_variants_declared_as_compensations_are() {
        let cancel = OrderEvent::OrderCancelled(order::OrderCancelled {
            order_id: jetsaga_contracts::OrderId::new_random(),
            reason: jetsaga_contracts::CancelReason::Timeout,
        });
        assert!(OnOrders.compensates(&cancel));
        let priced = OrderEvent::ProductPriced(order::ProductPriced {
            sku: jetsaga_contracts::Sku::parse("MUG-1").unwrap(),
            name: "Mug".to_owned(),
            price: jetsaga_contracts::Money::from_cents(100).unwrap(),
            actor: jetsaga_contracts::Actor::anonymous(),
        });
        assert!(!OnOrders.compensates(&priced));
    }
}
