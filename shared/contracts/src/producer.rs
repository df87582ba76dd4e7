//! A producing service: the one stream it owns and the subject prefix of its events.
//!
//! A producer is data, declared once by its event set (`event_set!`): the kit works from that
//! declaration and never enumerates producers. [`Producer::ALL`] is jetsaga's own list, for its
//! tools.

use std::fmt;

use crate::{EventSet, OrderEvent, PaymentEvent, PointsEvent, StockEvent, VoucherEvent};

/// A service that produces events. Its identity on the wire is the stream and the subject prefix an
/// event arrives on; consumers take it from there, never from a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Producer {
    service: &'static str,
    stream: &'static str,
    domain: &'static str,
    source: &'static str,
}

impl Producer {
    /// Declared by `event_set!`, which also derives every `ce-type` and subject from `domain`.
    #[doc(hidden)]
    pub const fn declare(
        service: &'static str,
        stream: &'static str,
        domain: &'static str,
        source: &'static str,
    ) -> Self {
        Producer {
            service,
            stream,
            domain,
            source,
        }
    }

    pub const ORDER: Producer = OrderEvent::PRODUCER;
    pub const VOUCHER: Producer = VoucherEvent::PRODUCER;
    pub const POINTS: Producer = PointsEvent::PRODUCER;
    pub const PAYMENT: Producer = PaymentEvent::PRODUCER;
    pub const STOCK: Producer = StockEvent::PRODUCER;

    /// jetsaga's producing services, in saga order.
    pub const ALL: [Producer; 5] = [
        Producer::ORDER,
        Producer::VOUCHER,
        Producer::POINTS,
        Producer::PAYMENT,
        Producer::STOCK,
    ];

    /// The JetStream stream holding this producer's events.
    pub const fn stream(self) -> &'static str {
        self.stream
    }

    /// The first subject token: `<domain>.<event>.<key>`.
    pub const fn domain(self) -> &'static str {
        self.domain
    }

    /// The short service name: `order`, `voucher`, `points`, `payment`, `stock`.
    pub const fn service(self) -> &'static str {
        self.service
    }

    /// The CloudEvents `ce-source` of this producer's events.
    pub const fn source(self) -> &'static str {
        self.source
    }

    /// Every subject of this producer: `<domain>.>`, the subjects of its stream.
    pub fn subjects(self) -> String {
        format!("{}.>", self.domain)
    }

    /// Whether `subject` is one of this producer's (its first token is the domain).
    pub fn owns_subject(self, subject: &str) -> bool {
        subject.split('.').next() == Some(self.domain)
    }

    /// Which of `producers` owns a subject, by its first token.
    pub fn owning(producers: &[Producer], subject: &str) -> Option<Producer> {
        producers.iter().copied().find(|p| p.owns_subject(subject))
    }

    /// jetsaga's producer that owns a subject.
    pub fn from_subject(subject: &str) -> Option<Producer> {
        Producer::owning(&Producer::ALL, subject)
    }

    /// jetsaga's producer of a stream.
    pub fn from_stream(stream: &str) -> Option<Producer> {
        Producer::ALL.into_iter().find(|p| p.stream() == stream)
    }

    /// jetsaga's producer of a service name.
    pub fn from_service(service: &str) -> Option<Producer> {
        Producer::ALL.into_iter().find(|p| p.service() == service)
    }
}

impl fmt::Display for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.service())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_is_found_by_subject_stream_and_name() {
        assert_eq!(
            Producer::from_subject("payments.succeeded.x"),
            Some(Producer::PAYMENT)
        );
        assert_eq!(Producer::from_subject("paymentsx.succeeded"), None);
        assert_eq!(Producer::from_stream("STOCK"), Some(Producer::STOCK));
        assert_eq!(Producer::from_service("voucher"), Some(Producer::VOUCHER));
    }

    #[test]
    fn each_producer_is_declared_once_by_its_event_set() {
        assert_eq!(Producer::ORDER.stream(), "ORDERS");
        assert_eq!(Producer::ORDER.source(), "jetsaga/order");
        assert_eq!(Producer::STOCK.subjects(), "stock.>");
        let domains: std::collections::BTreeSet<_> =
            Producer::ALL.iter().map(|p| p.domain()).collect();
        assert_eq!(
            domains.len(),
            Producer::ALL.len(),
            "one domain per producer"
        );
    }
}
