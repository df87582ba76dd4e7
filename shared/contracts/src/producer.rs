//! The producing services: each owns one stream and one subject prefix.

use std::fmt;

/// A service that produces events. Its identity on the wire is the stream and the subject prefix an
/// event arrives on; consumers take it from there, never from a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Producer {
    Order,
    Voucher,
    Payment,
    Stock,
}

impl Producer {
    pub const ALL: [Producer; 4] = [
        Producer::Order,
        Producer::Voucher,
        Producer::Payment,
        Producer::Stock,
    ];

    /// The JetStream stream holding this producer's events.
    pub const fn stream(self) -> &'static str {
        match self {
            Producer::Order => "ORDERS",
            Producer::Voucher => "VOUCHERS",
            Producer::Payment => "PAYMENTS",
            Producer::Stock => "STOCK",
        }
    }

    /// The first subject token: `<domain>.<event>.<key>`.
    pub const fn domain(self) -> &'static str {
        match self {
            Producer::Order => "orders",
            Producer::Voucher => "vouchers",
            Producer::Payment => "payments",
            Producer::Stock => "stock",
        }
    }

    /// The short service name: `order`, `voucher`, `payment`, `stock`.
    pub const fn service(self) -> &'static str {
        match self {
            Producer::Order => "order",
            Producer::Voucher => "voucher",
            Producer::Payment => "payment",
            Producer::Stock => "stock",
        }
    }

    /// The CloudEvents `ce-source` of this producer's events.
    pub const fn source(self) -> &'static str {
        match self {
            Producer::Order => "jetsaga/order",
            Producer::Voucher => "jetsaga/voucher",
            Producer::Payment => "jetsaga/payment",
            Producer::Stock => "jetsaga/stock",
        }
    }

    /// The producer that owns a subject, by its first token.
    pub fn from_subject(subject: &str) -> Option<Producer> {
        let domain = subject.split('.').next()?;
        Producer::ALL.into_iter().find(|p| p.domain() == domain)
    }

    pub fn from_stream(stream: &str) -> Option<Producer> {
        Producer::ALL.into_iter().find(|p| p.stream() == stream)
    }

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
            Some(Producer::Payment)
        );
        assert_eq!(Producer::from_subject("paymentsx.succeeded"), None);
        assert_eq!(Producer::from_stream("STOCK"), Some(Producer::Stock));
        assert_eq!(Producer::from_service("voucher"), Some(Producer::Voucher));
    }
}
