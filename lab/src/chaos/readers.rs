//! Who reads a subject: the services' durable consumers and their filters, taken from the
//! services' own wiring (`consumers::wire`, through [`jetsaga_cli::participants`]), so chaos never
//! retypes a consumer's name or filter.
//! A poison message is one dead letter for each consumer that reads its subject.

use jetsaga_contracts::Producer;

/// One durable consumer of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    /// The service that runs it.
    pub service: Producer,
    pub durable: &'static str,
    /// The subjects it receives, e.g. `orders.created.*`.
    pub filters: Vec<String>,
    /// The stream it reads: the one whose domain its filters name.
    pub stream: &'static str,
}

impl Reader {
    /// Whether a message on `subject` reaches this consumer.
    pub fn reads(&self, subject: &str) -> bool {
        self.filters.iter().any(|f| subject_matches(f, subject))
    }
}

/// Every durable consumer of every service, in [`Producer::ALL`] order.
pub fn all() -> Vec<Reader> {
    jetsaga_cli::participants::ALL
        .iter()
        .flat_map(|p| {
            (p.consumers)().into_iter().map(|d| Reader {
                service: p.producer,
                durable: d.durable,
                filters: d.filters,
                stream: d.input.stream(),
            })
        })
        .collect()
}

/// The consumers that read `subject`.
pub fn of_subject<'a>(readers: &'a [Reader], subject: &str) -> Vec<&'a Reader> {
    readers.iter().filter(|r| r.reads(subject)).collect()
}

/// NATS subject matching: `*` matches one token, `>` (last) one or more.
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut f = filter.split('.');
    let mut s = subject.split('.');
    loop {
        match (f.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_match_nats_wildcards() {
        assert!(subject_matches("orders.created.*", "orders.created.o1"));
        assert!(!subject_matches("orders.created.*", "orders.created.o1.x"));
        assert!(!subject_matches("orders.created.*", "orders.cancelled.o1"));
        assert!(subject_matches("orders.>", "orders.cancelled.o1"));
        assert!(!subject_matches("orders.>", "orders"));
    }

    #[test]
    fn every_service_declares_consumers_each_on_one_stream() {
        let readers = all();
        for service in Producer::ALL {
            assert!(
                readers.iter().any(|r| r.service == service),
                "{service:?} has no consumer"
            );
        }
        for r in &readers {
            assert_ne!(r.stream, r.service.stream(), "{r:?} reads its own stream");
        }
    }

    #[test]
    fn a_poison_order_created_reaches_the_voucher_service_only() {
        // As the issue says: orders.created.* is read by the voucher service alone; a
        // payments.succeeded.* by the stock service alone.
        let readers = all();
        let created = of_subject(&readers, "orders.created.o1");
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].service, Producer::VOUCHER);
        let paid = of_subject(&readers, "payments.succeeded.o1");
        assert_eq!(paid.len(), 1);
        assert_eq!(paid[0].service, Producer::STOCK);
    }
}
