//! jetsaga's services as the tools see them: one entry per service, made of that service's own
//! declarations (its producer, migrations, consumers, facts and state tables). No tool matches on
//! a service: adding one is one entry here.

use jetsaga_contracts::{DecodeError, EventSet, Producer};
use jetsaga_runtime::{Defaults, Settings};
use saga_kit::facts::StateTable;
use saga_kit::replay::{Replay, Wiring};
use saga_kit::Handler;
use sqlx::migrate::Migrator;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A running service, as `jetsaga dev` starts it.
pub type Running = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// What the settings of `jetsaga dev` give a service to run with.
#[derive(Debug)]
pub struct DevRun {
    pub settings: Settings,
    pub listener: TcpListener,
    pub shutdown: CancellationToken,
    /// An order's saga deadline (the order service's own setting).
    pub order_deadline: Duration,
}

/// One service, from its own declarations.
pub struct Participant {
    pub producer: Producer,
    pub defaults: Defaults,
    pub migrations: &'static Migrator,
    /// The business state `replay --verify` compares.
    pub state: &'static [StateTable],
    /// Its consumers and its restorer, declared on a replay.
    pub wire_replay: fn(&mut Replay),
    /// Its consumers, as declared ([`declared`]).
    pub consumers: fn() -> Vec<Declared>,
    /// The subject filters of its admin events (changes an operator makes), for `jetsaga audit`.
    pub admin_events: &'static [&'static str],
    /// One of its events in a few words, for `jetsaga trace`.
    pub describe: fn(&str, &[u8]) -> Result<String, DecodeError>,
    /// Runs it until shutdown (`jetsaga dev`).
    pub run: fn(DevRun) -> Running,
}

impl std::fmt::Debug for Participant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Participant")
            .field("producer", &self.producer)
            .finish_non_exhaustive()
    }
}

/// Every jetsaga service, in saga order ([`Producer::ALL`]).
pub static ALL: [Participant; 5] = [
    Participant {
        producer: Producer::ORDER,
        defaults: order_service::DEFAULTS,
        migrations: &order_service::MIGRATIONS,
        state: order_service::state::TABLES,
        wire_replay: |r| {
            order_service::consumers::wire(r);
            r.restore_with(order_service::restore::Restorer);
        },
        consumers: || declared(order_service::consumers::wire),
        admin_events: &[jetsaga_contracts::events::order::ProductPriced::SUBJECT_FILTER],
        describe: crate::trace::describe::order,
        run: |d| {
            Box::pin(async move {
                let mut config = order_service::Config::new(d.settings);
                config.order_deadline = d.order_deadline;
                Ok(order_service::run(config, d.listener, d.shutdown).await?)
            })
        },
    },
    Participant {
        producer: Producer::VOUCHER,
        defaults: voucher_service::DEFAULTS,
        migrations: &voucher_service::MIGRATIONS,
        state: voucher_service::state::TABLES,
        wire_replay: |r| {
            voucher_service::consumers::wire(r);
            r.restore_with(voucher_service::restore::Restorer);
        },
        consumers: || declared(voucher_service::consumers::wire),
        admin_events: &[jetsaga_contracts::events::voucher::VoucherIssued::SUBJECT_FILTER],
        describe: crate::trace::describe::voucher,
        run: |d| {
            Box::pin(
                async move { Ok(voucher_service::run(d.settings, d.listener, d.shutdown).await?) },
            )
        },
    },
    Participant {
        producer: Producer::POINTS,
        defaults: points_service::DEFAULTS,
        migrations: &points_service::MIGRATIONS,
        state: points_service::state::TABLES,
        wire_replay: |r| {
            points_service::consumers::wire(r);
            r.restore_with(points_service::restore::Restorer);
        },
        consumers: || declared(points_service::consumers::wire),
        admin_events: &[jetsaga_contracts::events::points::PointsAwarded::SUBJECT_FILTER],
        describe: crate::trace::describe::points,
        run: |d| {
            Box::pin(
                async move { Ok(points_service::run(d.settings, d.listener, d.shutdown).await?) },
            )
        },
    },
    Participant {
        producer: Producer::PAYMENT,
        defaults: payment_service::DEFAULTS,
        migrations: &payment_service::MIGRATIONS,
        state: payment_service::state::TABLES,
        wire_replay: |r| {
            payment_service::consumers::wire(r);
            r.restore_with(payment_service::restore::Restorer);
        },
        consumers: || declared(payment_service::consumers::wire),
        admin_events: &[jetsaga_contracts::events::payment::AccountCredited::SUBJECT_FILTER],
        describe: crate::trace::describe::payment,
        run: |d| {
            Box::pin(
                async move { Ok(payment_service::run(d.settings, d.listener, d.shutdown).await?) },
            )
        },
    },
    Participant {
        producer: Producer::STOCK,
        defaults: stock_service::DEFAULTS,
        migrations: &stock_service::MIGRATIONS,
        state: stock_service::state::TABLES,
        wire_replay: |r| {
            stock_service::consumers::wire(r);
            r.restore_with(stock_service::restore::Restorer);
        },
        consumers: || declared(stock_service::consumers::wire),
        admin_events: &[jetsaga_contracts::events::stock::StockAdjusted::SUBJECT_FILTER],
        describe: crate::trace::describe::stock,
        run: |d| {
            Box::pin(
                async move { Ok(stock_service::run(d.settings, d.listener, d.shutdown).await?) },
            )
        },
    },
];

/// The entry of `producer`.
pub fn of(producer: Producer) -> &'static Participant {
    ALL.iter()
        .find(|p| p.producer == producer)
        .expect("every jetsaga producer has its entry in participants::ALL")
}

/// One durable consumer, as its service declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub durable: &'static str,
    /// The subjects it receives, e.g. `orders.created.*`.
    pub filters: Vec<String>,
    /// The producer whose stream it reads.
    pub input: Producer,
}

/// What a service's `wire` declares, without running anything.
pub fn declared(wire: fn(&mut Collect)) -> Vec<Declared> {
    let mut collect = Collect(Vec::new());
    wire(&mut collect);
    collect.0
}

/// A [`Wiring`] that only writes down what it is given.
#[derive(Debug, Default)]
pub struct Collect(Vec<Declared>);

impl Wiring for Collect {
    fn consumer<H: Handler>(&mut self, durable: &'static str, filter_subjects: &[&str], _: H) {
        self.0.push(Declared {
            durable,
            filters: filter_subjects.iter().map(|f| (*f).to_owned()).collect(),
            input: <H::Input as EventSet>::PRODUCER,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_producer_has_one_entry_in_saga_order() {
        let producers: Vec<Producer> = ALL.iter().map(|p| p.producer).collect();
        assert_eq!(producers, Producer::ALL.to_vec());
    }
}
