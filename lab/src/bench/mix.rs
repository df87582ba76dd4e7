//! The outcome mix of the load: which saga each order is built to end in.

use rand::Rng;
use std::str::FromStr;

/// The outcome an order is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A customer with money, SKUs in stock, sometimes a valid voucher.
    Confirmed,
    /// A voucher code that does not exist.
    VoucherRejected,
    /// A customer without points who asks to spend some.
    PointsRejected,
    /// A customer without money.
    PaymentFailed,
    /// A SKU nobody stocked.
    StockFailed,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Confirmed,
        Outcome::VoucherRejected,
        Outcome::PointsRejected,
        Outcome::PaymentFailed,
        Outcome::StockFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Confirmed => "confirmed",
            Outcome::VoucherRejected => "voucher_rejected",
            Outcome::PointsRejected => "points_rejected",
            Outcome::PaymentFailed => "payment_failed",
            Outcome::StockFailed => "stock_failed",
        }
    }
}

/// Weights of the outcomes, e.g.
/// `confirmed=80,voucher_rejected=5,points_rejected=5,payment_failed=5,stock_failed=5`.
/// The cancel reason `timeout` needs a fault, so it is not part of a load's mix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix(pub Vec<(Outcome, u32)>);

impl Default for Mix {
    /// About 80% confirmed, 20% spread over the cancel reasons a load can cause.
    fn default() -> Self {
        Mix(vec![
            (Outcome::Confirmed, 80),
            (Outcome::VoucherRejected, 5),
            (Outcome::PointsRejected, 5),
            (Outcome::PaymentFailed, 5),
            (Outcome::StockFailed, 5),
        ])
    }
}

impl Mix {
    /// The mix of the peers' driver (`../shared/peers`), which has no points step.
    pub fn peers() -> Self {
        Mix(vec![
            (Outcome::Confirmed, 80),
            (Outcome::VoucherRejected, 7),
            (Outcome::PaymentFailed, 7),
            (Outcome::StockFailed, 6),
        ])
    }
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut weights = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not outcome=weight"))?;
            let outcome = Outcome::ALL
                .into_iter()
                .find(|o| o.as_str() == name.trim())
                .ok_or_else(|| {
                    format!("`{name}` is not an outcome (confirmed, voucher_rejected, points_rejected, payment_failed, stock_failed)")
                })?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("`{weight}` is not a whole-number weight"))?;
            weights.push((outcome, weight));
        }
        if weights.iter().map(|(_, w)| *w).sum::<u32>() == 0 {
            return Err("the mix has no weight at all".into());
        }
        Ok(Mix(weights))
    }
}

impl Mix {
    /// One outcome, drawn by weight.
    pub fn draw(&self, rng: &mut impl Rng) -> Outcome {
        let total: u32 = self.0.iter().map(|(_, w)| *w).sum();
        let mut pick = rng.random_range(0..total.max(1));
        for (outcome, weight) in &self.0 {
            if pick < *weight {
                return *outcome;
            }
            pick -= weight;
        }
        Outcome::Confirmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn mix_parses_weights_and_refuses_unknown_outcomes() {
        let mix: Mix = "confirmed=9,payment_failed=1".parse().unwrap();
        assert_eq!(
            mix.0,
            vec![(Outcome::Confirmed, 9), (Outcome::PaymentFailed, 1)]
        );
        assert!("timeout=1".parse::<Mix>().is_err());
        assert!("confirmed=x".parse::<Mix>().is_err());
        assert!("confirmed=0".parse::<Mix>().is_err());
    }

    #[test]
    fn draws_follow_the_weights() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mix = Mix::default();
        let confirmed = (0..10_000)
            .filter(|_| mix.draw(&mut rng) == Outcome::Confirmed)
            .count();
        assert!((7_600..8_400).contains(&confirmed), "{confirmed}");
    }
}
