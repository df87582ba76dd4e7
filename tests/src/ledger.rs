//! What a scenario did through the public API: the checker compares the services' state with it.
//! Every method performs the call, asserts it was accepted, and records it.

use crate::api::Api;
use anyhow::Context;
use std::collections::BTreeMap;

/// An order the scenario placed and the services accepted.
#[derive(Debug, Clone)]
pub struct PlacedOrder {
    pub order_id: String,
    pub customer_id: String,
    /// (sku, quantity, unit price in cents at the time of the order).
    pub lines: Vec<(String, i64, i64)>,
    pub voucher: Option<String>,
    /// The loyalty points the order asked to spend.
    pub points: Option<i64>,
}

/// A voucher the scenario issued.
#[derive(Debug, Clone)]
pub struct IssuedVoucher {
    pub customer_id: String,
    pub discount_cents: i64,
    pub expired: bool,
}

/// The scenario's record of every accepted change.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub credits: BTreeMap<String, i64>,
    pub stock_added: BTreeMap<String, i64>,
    pub prices: BTreeMap<String, i64>,
    pub vouchers: BTreeMap<String, IssuedVoucher>,
    /// Loyalty points operators awarded, per customer.
    pub points_awarded: BTreeMap<String, i64>,
    pub orders: Vec<PlacedOrder>,
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A SKU unique to this scenario run, so scenarios against a shared deployment do not collide.
pub fn new_sku(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

impl Ledger {
    pub async fn product(&mut self, api: &Api, sku: &str, price_cents: i64) -> anyhow::Result<()> {
        api.put_product(sku, &format!("Product {sku}"), price_cents)
            .await?
            .ok()
            .with_context(|| format!("pricing {sku}"))?;
        self.prices.insert(sku.to_owned(), price_cents);
        Ok(())
    }

    pub async fn stock(&mut self, api: &Api, sku: &str, delta: i64) -> anyhow::Result<()> {
        api.adjust(sku, delta)
            .await?
            .ok()
            .with_context(|| format!("adjusting {sku}"))?;
        *self.stock_added.entry(sku.to_owned()).or_default() += delta;
        Ok(())
    }

    /// A product with a price and units in stock.
    pub async fn sku(
        &mut self,
        api: &Api,
        sku: &str,
        price_cents: i64,
        units: i64,
    ) -> anyhow::Result<()> {
        self.product(api, sku, price_cents).await?;
        if units > 0 {
            self.stock(api, sku, units).await?;
        }
        Ok(())
    }

    pub async fn credit(
        &mut self,
        api: &Api,
        customer_id: &str,
        amount_cents: i64,
    ) -> anyhow::Result<()> {
        api.credit(customer_id, amount_cents)
            .await?
            .ok()
            .with_context(|| format!("crediting {customer_id}"))?;
        *self.credits.entry(customer_id.to_owned()).or_default() += amount_cents;
        Ok(())
    }

    /// A new customer with a balance.
    pub async fn customer(&mut self, api: &Api, balance_cents: i64) -> anyhow::Result<String> {
        let id = new_id();
        if balance_cents > 0 {
            self.credit(api, &id, balance_cents).await?;
        } else {
            self.credits.insert(id.clone(), 0);
        }
        Ok(id)
    }

    pub async fn voucher(
        &mut self,
        api: &Api,
        code: &str,
        customer_id: &str,
        discount_cents: i64,
        expires_at: Option<&str>,
    ) -> anyhow::Result<()> {
        api.issue_voucher(code, customer_id, discount_cents, expires_at)
            .await?
            .ok()
            .with_context(|| format!("issuing voucher {code}"))?;
        let expired = expires_at
            .and_then(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .is_some_and(|t| t <= time::OffsetDateTime::now_utc());
        self.vouchers.insert(
            code.to_owned(),
            IssuedVoucher {
                customer_id: customer_id.to_owned(),
                discount_cents,
                expired,
            },
        );
        Ok(())
    }

    /// Awards loyalty points to a customer, as the operator.
    pub async fn award_points(
        &mut self,
        api: &Api,
        customer_id: &str,
        points: i64,
    ) -> anyhow::Result<()> {
        api.award_points(customer_id, points)
            .await?
            .ok()
            .with_context(|| format!("awarding {points} points to {customer_id}"))?;
        *self
            .points_awarded
            .entry(customer_id.to_owned())
            .or_default() += points;
        Ok(())
    }

    /// Places an order (202 expected) and records it.
    pub async fn order(
        &mut self,
        api: &Api,
        customer_id: &str,
        items: &[(&str, i64)],
        voucher: Option<&str>,
    ) -> anyhow::Result<String> {
        self.order_with_points(api, customer_id, items, voucher, None)
            .await
    }

    /// Places an order that spends `points` loyalty points (202 expected) and records it.
    pub async fn order_with_points(
        &mut self,
        api: &Api,
        customer_id: &str,
        items: &[(&str, i64)],
        voucher: Option<&str>,
        points: Option<i64>,
    ) -> anyhow::Result<String> {
        let answer = api
            .place_order_with_points(customer_id, items, voucher, points, None)
            .await?;
        anyhow::ensure!(
            answer.status == 202,
            "order refused: {} {}",
            answer.status,
            answer.body
        );
        let order_id = answer.body["order_id"]
            .as_str()
            .context("order_id missing")?
            .to_owned();
        self.record_order(&order_id, customer_id, items, voucher);
        if let Some(placed) = self.orders.last_mut() {
            placed.points = points;
        }
        Ok(order_id)
    }

    pub fn record_order(
        &mut self,
        order_id: &str,
        customer_id: &str,
        items: &[(&str, i64)],
        voucher: Option<&str>,
    ) {
        self.orders.push(PlacedOrder {
            order_id: order_id.to_owned(),
            customer_id: customer_id.to_owned(),
            lines: items
                .iter()
                .map(|(sku, q)| {
                    (
                        (*sku).to_owned(),
                        *q,
                        self.prices.get(*sku).copied().unwrap_or(0),
                    )
                })
                .collect(),
            voucher: voucher.map(str::to_owned),
            points: None,
        });
    }
}
