//! A typed client of the public HTTP API of the five services, exactly as the design's contract
//! describes it. Answers come back as status + JSON so scenarios can assert on both.

use crate::system::Svc;
use anyhow::Context;
use serde_json::{json, Value};
use std::time::Duration;

/// An HTTP answer: status and JSON body (Null when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn ok(self) -> anyhow::Result<Value> {
        anyhow::ensure!(
            (200..300).contains(&self.status),
            "expected success, got {} {}",
            self.status,
            self.body
        );
        Ok(self.body)
    }
}

/// The five base URLs and one HTTP client.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    order: String,
    payment: String,
    stock: String,
    voucher: String,
    points: String,
    nats_url: Option<String>,
    /// The operator's token the admin calls carry (`Authorization: Bearer`).
    operator_token: Option<String>,
}

impl Api {
    pub fn new(order: &str, payment: &str, stock: &str, voucher: &str, points: &str) -> Self {
        Api {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client without TLS always builds"),
            order: order.trim_end_matches('/').to_owned(),
            payment: payment.trim_end_matches('/').to_owned(),
            stock: stock.trim_end_matches('/').to_owned(),
            voucher: voucher.trim_end_matches('/').to_owned(),
            points: points.trim_end_matches('/').to_owned(),
            nats_url: None,
            operator_token: None,
        }
    }

    /// Admin calls (and raw sends) carry this operator's token.
    pub fn with_operator_token(mut self, token: &str) -> Self {
        self.operator_token = Some(token.to_owned());
        self
    }

    /// The operator's token its admin calls carry, if any.
    pub fn operator_token(&self) -> Option<&str> {
        self.operator_token.as_deref()
    }

    /// The same API without an operator's token, to see an admin route refuse.
    pub fn without_operator(&self) -> Self {
        Api {
            operator_token: None,
            ..self.clone()
        }
    }

    /// A request as an operator: with the token, when there is one.
    fn as_operator(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.operator_token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    /// Lets the checker look at consumer lag on the system's NATS.
    pub fn with_nats(mut self, nats_url: &str) -> Self {
        self.nats_url = Some(nats_url.to_owned());
        self
    }

    pub fn nats_url(&self) -> Option<&str> {
        self.nats_url.as_deref()
    }

    /// Points the calls to one service at another base URL (its instance moved to a new port).
    pub fn set_base(&mut self, svc: Svc, base: &str) {
        let base = base.trim_end_matches('/').to_owned();
        match svc {
            Svc::Order => self.order = base,
            Svc::Payment => self.payment = base,
            Svc::Stock => self.stock = base,
            Svc::Voucher => self.voucher = base,
            Svc::Points => self.points = base,
        }
    }

    pub fn base(&self, svc: Svc) -> &str {
        match svc {
            Svc::Order => &self.order,
            Svc::Payment => &self.payment,
            Svc::Stock => &self.stock,
            Svc::Voucher => &self.voucher,
            Svc::Points => &self.points,
        }
    }

    async fn answer(req: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
        let resp = req.send().await.context("HTTP request failed")?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }

    pub async fn get(&self, svc: Svc, path: &str) -> anyhow::Result<Answer> {
        Self::answer(self.http.get(format!("{}{path}", self.base(svc)))).await
    }

    /// Sends a raw body, for the bad-input scenarios.
    pub async fn send_raw(
        &self,
        svc: Svc,
        method: reqwest::Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> anyhow::Result<Answer> {
        let mut req = self.as_operator(
            self.http
                .request(method, format!("{}{path}", self.base(svc)))
                .body(body),
        );
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        Self::answer(req).await
    }

    pub async fn put_product(
        &self,
        sku: &str,
        name: &str,
        price_cents: i64,
    ) -> anyhow::Result<Answer> {
        Self::answer(
            self.as_operator(
                self.http
                    .put(format!("{}/products/{sku}", self.order))
                    .json(&json!({ "name": name, "price_cents": price_cents })),
            ),
        )
        .await
    }

    /// `POST /orders`; `items` as (sku, quantity).
    pub async fn place_order(
        &self,
        customer_id: &str,
        items: &[(&str, i64)],
        voucher_code: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> anyhow::Result<Answer> {
        self.place_order_with_points(customer_id, items, voucher_code, None, idempotency_key)
            .await
    }

    /// `POST /orders` spending `points` loyalty points (left out of the body when `None`).
    pub async fn place_order_with_points(
        &self,
        customer_id: &str,
        items: &[(&str, i64)],
        voucher_code: Option<&str>,
        points: Option<i64>,
        idempotency_key: Option<&str>,
    ) -> anyhow::Result<Answer> {
        let items: Vec<Value> = items
            .iter()
            .map(|(sku, q)| json!({ "sku": sku, "quantity": q }))
            .collect();
        let mut body = json!({ "customer_id": customer_id, "items": items });
        if let Some(code) = voucher_code {
            body["voucher_code"] = json!(code);
        }
        if let Some(points) = points {
            body["points"] = json!(points);
        }
        let mut req = self.http.post(format!("{}/orders", self.order)).json(&body);
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        Self::answer(req).await
    }

    pub async fn order(&self, order_id: &str) -> anyhow::Result<Answer> {
        self.get(Svc::Order, &format!("/orders/{order_id}")).await
    }

    pub async fn timeline(&self, order_id: &str) -> anyhow::Result<Answer> {
        self.get(Svc::Order, &format!("/orders/{order_id}/timeline"))
            .await
    }

    pub async fn credit(&self, customer_id: &str, amount_cents: i64) -> anyhow::Result<Answer> {
        Self::answer(
            self.as_operator(
                self.http
                    .post(format!("{}/accounts/{customer_id}/credit", self.payment))
                    .json(&json!({ "amount_cents": amount_cents })),
            ),
        )
        .await
    }

    pub async fn balance(&self, customer_id: &str) -> anyhow::Result<i64> {
        let body = self
            .get(Svc::Payment, &format!("/accounts/{customer_id}"))
            .await?
            .ok()?;
        body["balance_cents"]
            .as_i64()
            .context("balance_cents missing")
    }

    pub async fn adjust(&self, sku: &str, delta: i64) -> anyhow::Result<Answer> {
        Self::answer(
            self.as_operator(
                self.http
                    .post(format!("{}/stock/{sku}/adjust", self.stock))
                    .json(&json!({ "delta": delta })),
            ),
        )
        .await
    }

    /// (available, reserved).
    pub async fn stock(&self, sku: &str) -> anyhow::Result<(i64, i64)> {
        let body = self.get(Svc::Stock, &format!("/stock/{sku}")).await?.ok()?;
        Ok((
            body["available"].as_i64().context("available missing")?,
            body["reserved"].as_i64().context("reserved missing")?,
        ))
    }

    pub async fn issue_voucher(
        &self,
        code: &str,
        customer_id: &str,
        discount_cents: i64,
        expires_at: Option<&str>,
    ) -> anyhow::Result<Answer> {
        let mut body =
            json!({ "code": code, "customer_id": customer_id, "discount_cents": discount_cents });
        if let Some(t) = expires_at {
            body["expires_at"] = json!(t);
        }
        Self::answer(
            self.as_operator(
                self.http
                    .post(format!("{}/vouchers", self.voucher))
                    .json(&body),
            ),
        )
        .await
    }

    pub async fn voucher_status(&self, code: &str) -> anyhow::Result<String> {
        let body = self
            .get(Svc::Voucher, &format!("/vouchers/{code}"))
            .await?
            .ok()?;
        Ok(body["status"]
            .as_str()
            .context("status missing")?
            .to_owned())
    }

    /// `POST /points/{customer_id}/award` as the operator.
    pub async fn award_points(&self, customer_id: &str, points: i64) -> anyhow::Result<Answer> {
        Self::answer(
            self.as_operator(
                self.http
                    .post(format!("{}/points/{customer_id}/award", self.points))
                    .json(&json!({ "points": points })),
            ),
        )
        .await
    }

    /// A customer's points: (available, held).
    pub async fn points(&self, customer_id: &str) -> anyhow::Result<(i64, i64)> {
        let body = self
            .get(Svc::Points, &format!("/points/{customer_id}"))
            .await?
            .ok()?;
        Ok((
            body["available"].as_i64().context("available missing")?,
            body["held"].as_i64().context("held missing")?,
        ))
    }

    /// A counter from a service's `/metrics`, summed over the label sets that contain `labels`.
    pub async fn metric(&self, svc: Svc, name: &str, labels: &str) -> anyhow::Result<f64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.base(svc)))
            .send()
            .await?
            .text()
            .await?;
        Ok(text
            .lines()
            .filter(|l| {
                l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']) && l.contains(labels)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }
}
