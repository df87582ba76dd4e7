//! The data a load needs, seeded through the public APIs: customers with money and without,
//! many SKUs (a few of them hot), one SKU nobody stocked, vouchers, and loyalty points for the
//! customers with money.

use super::mix::Outcome;
use futures::stream::{self, StreamExt, TryStreamExt};
use jetsaga_scenarios::Api;
use rand::seq::IndexedRandom;
use rand::Rng;
use serde_json::{json, Value};
use std::sync::Mutex;

/// How much to seed.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub skus: usize,
    pub hot_skus: usize,
    pub customers: usize,
    pub vouchers: usize,
}

/// What was seeded.
#[derive(Debug)]
pub struct Catalogue {
    run: String,
    pub rich: Vec<String>,
    pub poor: Vec<String>,
    pub skus: Vec<String>,
    pub hot: Vec<String>,
    pub unstocked: String,
    /// Unused vouchers: (code, customer).
    vouchers: Mutex<Vec<(String, String)>>,
}

/// Points each customer with money is awarded: more than a load spends.
const POINTS_AWARDED: i64 = 1_000_000_000;

/// Requests at once while seeding.
const SEED_CONCURRENCY: usize = 16;

impl Catalogue {
    /// Seeds through `api`. Names carry a run id, so a run against a shared deployment does not
    /// collide with an earlier one.
    pub async fn seed(api: &Api, sizes: Sizes) -> anyhow::Result<Catalogue> {
        let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let skus: Vec<String> = (0..sizes.skus).map(|i| format!("B{run}-{i}")).collect();
        let hot: Vec<String> = (0..sizes.hot_skus).map(|i| format!("H{run}-{i}")).collect();
        let unstocked = format!("U{run}-0");
        let rich: Vec<String> = (0..sizes.customers).map(|_| new_id()).collect();
        let poor: Vec<String> = (0..sizes.customers.div_ceil(10))
            .map(|_| new_id())
            .collect();

        let stocked: Vec<(usize, &String)> = skus.iter().chain(&hot).enumerate().collect();
        stream::iter(stocked)
            .map(|(i, sku)| async move {
                let price = 100 + (i as i64 * 37) % 4_900;
                api.put_product(sku, "bench product", price).await?.ok()?;
                api.adjust(sku, 100_000_000).await?.ok()?;
                anyhow::Ok(())
            })
            .buffer_unordered(SEED_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        api.put_product(&unstocked, "never stocked", 999)
            .await?
            .ok()?;
        let credits: Vec<(&String, i64)> = rich
            .iter()
            .map(|c| (c, 1_000_000_000_000))
            .chain(poor.iter().map(|c| (c, 1)))
            .collect();
        stream::iter(credits)
            .map(|(customer, cents)| async move {
                api.credit(customer, cents).await?.ok()?;
                // The customers with money also have points to spend; the others have none.
                if cents > 1 {
                    api.award_points(customer, POINTS_AWARDED).await?.ok()?;
                }
                anyhow::Ok(())
            })
            .buffer_unordered(SEED_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        let vouchers: Vec<(String, String)> = (0..sizes.vouchers)
            .map(|i| (format!("V{run}-{i}"), rich[i % rich.len().max(1)].clone()))
            .collect();
        stream::iter(vouchers.iter())
            .map(|(code, customer)| async move {
                api.issue_voucher(code, customer, 50, None).await?.ok()?;
                anyhow::Ok(())
            })
            .buffer_unordered(SEED_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(Catalogue {
            run,
            rich,
            poor,
            skus,
            hot,
            unstocked,
            vouchers: Mutex::new(vouchers),
        })
    }

    /// The body of `POST /orders` for an order built to end as `outcome`.
    pub fn order_body(&self, outcome: Outcome, rng: &mut impl Rng) -> Value {
        let line = |rng: &mut dyn rand::RngCore| {
            let pool = if !self.hot.is_empty() && rng.random_ratio(1, 5) {
                &self.hot
            } else {
                &self.skus
            };
            let sku = pool.choose(rng).cloned().unwrap_or_default();
            json!({"sku": sku, "quantity": rng.random_range(1..=3)})
        };
        // Each SKU once per order (the API refuses a SKU on two lines).
        let lines = |rng: &mut dyn rand::RngCore| -> Vec<Value> {
            let n = rng.random_range(1..=3);
            let mut lines: Vec<Value> = Vec::with_capacity(n);
            while lines.len() < n {
                let candidate = line(rng);
                if lines.iter().all(|l| l["sku"] != candidate["sku"]) {
                    lines.push(candidate);
                }
            }
            lines
        };
        let pick = |list: &[String], rng: &mut dyn rand::RngCore| {
            list.choose(rng).cloned().unwrap_or_default()
        };
        match outcome {
            Outcome::Confirmed => {
                let voucher = if rng.random_ratio(1, 10) {
                    self.vouchers.lock().ok().and_then(|mut v| v.pop())
                } else {
                    None
                };
                let mut body = match voucher {
                    Some((code, customer)) => json!({
                        "customer_id": customer, "items": lines(rng), "voucher_code": code
                    }),
                    None => json!({"customer_id": pick(&self.rich, rng), "items": lines(rng)}),
                };
                // One in five pays part with points.
                if rng.random_ratio(1, 5) {
                    body["points"] = json!(rng.random_range(1..=200));
                }
                body
            }
            Outcome::PointsRejected => json!({
                "customer_id": pick(&self.poor, rng),
                "items": lines(rng),
                "points": rng.random_range(1..=200),
            }),
            Outcome::VoucherRejected => json!({
                "customer_id": pick(&self.rich, rng),
                "items": lines(rng),
                "voucher_code": format!("NONE{}-{}", self.run, rng.random::<u32>()),
            }),
            Outcome::PaymentFailed => {
                json!({"customer_id": pick(&self.poor, rng), "items": lines(rng)})
            }
            Outcome::StockFailed => json!({
                "customer_id": pick(&self.rich, rng),
                "items": [{"sku": self.unstocked, "quantity": 1}],
            }),
        }
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
