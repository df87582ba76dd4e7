//! `GET /api/sagas`: the sagas, newest first, filtered, a page at a time; and `GET /api/outcomes`:
//! how many ended each minute.
//!
//! A page is asked by key, never by offset: the cursor is the last row's `(created_at, order_id)`
//! and the next page starts strictly below it, so with 100,000 orders the hundredth page costs
//! what the first does (the index `orders_created_at_order_id` of the order database), and an
//! order created while someone pages shifts nothing.

use super::error::{ConsoleError, ConsoleResult};
use super::params::{self, given};
use super::session::Signed;
use super::Shared;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use jetsaga_contracts::Producer;
use order_service::domain::{parse_cancel_reason, OrderStatus};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

/// The page size when none is asked.
pub const DEFAULT_LIMIT: i64 = 50;
/// The largest page.
pub const MAX_LIMIT: i64 = 200;

/// The query of `GET /api/sagas`, as sent (each checked in [`Filter::parse`]).
#[derive(Debug, Default, Deserialize)]
pub struct SagasQuery {
    pub status: Option<String>,
    pub reason: Option<String>,
    pub overdue: Option<String>,
    pub customer: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub after: Option<String>,
    pub limit: Option<String>,
}

/// Where a page starts: strictly after this row, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: OffsetDateTime,
    pub order_id: Uuid,
}

impl Cursor {
    /// `<microseconds since the epoch>_<order id>`: the database keeps microseconds, so the
    /// cursor names the row exactly.
    pub fn encode(&self) -> String {
        format!(
            "{}_{}",
            self.created_at.unix_timestamp_nanos() / 1000,
            self.order_id.simple()
        )
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        let (micros, id) = s.split_once('_')?;
        let micros: i128 = micros.parse().ok()?;
        let created_at =
            OffsetDateTime::from_unix_timestamp_nanos(micros.checked_mul(1000)?).ok()?;
        Some(Cursor {
            created_at,
            order_id: Uuid::parse_str(id).ok()?,
        })
    }
}

/// The checked filters of a sagas page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub status: Option<OrderStatus>,
    pub reason: Option<&'static str>,
    pub overdue: bool,
    pub customer: Option<Uuid>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    pub after: Option<Cursor>,
    pub limit: i64,
}

fn bad(message: String) -> ConsoleError {
    ConsoleError::bad_request("bad_filter", message)
}

impl Filter {
    /// Each filter checked; bad input is refused before the database is asked.
    pub fn parse(q: &SagasQuery) -> ConsoleResult<Filter> {
        let status = given(&q.status)
            .map(|s| {
                OrderStatus::parse(&s.to_ascii_uppercase()).map_err(|_| {
                    bad(format!(
                        "status={s:?}: the statuses are PENDING, CONFIRMED, CANCELLED"
                    ))
                })
            })
            .transpose()?;
        let reason = given(&q.reason)
            .map(|r| {
                parse_cancel_reason(r).map(|r| r.as_str()).map_err(|_| {
                    bad(format!(
                        "reason={r:?}: the cancel reasons are voucher_rejected, points_rejected, \
                         payment_failed, stock_failed, timeout"
                    ))
                })
            })
            .transpose()?;
        let overdue = match given(&q.overdue) {
            None | Some("false") => false,
            Some("true") => true,
            Some(o) => return Err(bad(format!("overdue={o:?}: true or false"))),
        };
        let customer = given(&q.customer)
            .map(|c| {
                Uuid::parse_str(c).map_err(|_| bad(format!("customer={c:?} is not a customer id")))
            })
            .transpose()?;
        let from = given(&q.from)
            .map(|s| params::time("from", s))
            .transpose()?;
        let to = given(&q.to).map(|s| params::time("to", s)).transpose()?;
        let after = given(&q.after)
            .map(|a| {
                Cursor::decode(a)
                    .ok_or_else(|| bad(format!("after={a:?} is not a cursor this console gave")))
            })
            .transpose()?;
        let limit = match given(&q.limit) {
            None => DEFAULT_LIMIT,
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l))
                .ok_or_else(|| bad(format!("limit={l:?}: a number from 1 to {MAX_LIMIT}")))?,
        };
        Ok(Filter {
            status,
            reason,
            overdue,
            customer,
            from,
            to,
            after,
            limit,
        })
    }

    /// The page's statement: only the conditions asked for, so the planner sees plain
    /// conditions and walks the `(created_at, order_id)` index backwards.
    fn query(&self) -> QueryBuilder<'static, Postgres> {
        self.statement("")
    }

    /// The page's statement under `EXPLAIN`: what a test reads to see the page walk the index
    /// instead of sorting every order.
    pub fn explain(&self) -> QueryBuilder<'static, Postgres> {
        self.statement("EXPLAIN ")
    }

    fn statement(&self, prefix: &str) -> QueryBuilder<'static, Postgres> {
        let mut q = QueryBuilder::new(prefix.to_owned());
        q.push(
            "SELECT order_id, customer_id, status, cancel_reason, total_cents, created_at,
                    (status = 'PENDING' AND deadline < now()) AS overdue
             FROM orders WHERE true",
        );
        if let Some(status) = self.status {
            q.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(reason) = self.reason {
            q.push(" AND cancel_reason = ").push_bind(reason);
        }
        if self.overdue {
            q.push(" AND status = 'PENDING' AND deadline < now()");
        }
        if let Some(customer) = self.customer {
            q.push(" AND customer_id = ").push_bind(customer);
        }
        if let Some(from) = self.from {
            q.push(" AND created_at >= ").push_bind(from);
        }
        if let Some(to) = self.to {
            q.push(" AND created_at < ").push_bind(to);
        }
        if let Some(after) = self.after {
            q.push(" AND (created_at, order_id) < (")
                .push_bind(after.created_at)
                .push(", ")
                .push_bind(after.order_id)
                .push(")");
        }
        // One more than the page, to know whether another page follows.
        q.push(" ORDER BY created_at DESC, order_id DESC LIMIT ")
            .push_bind(self.limit + 1);
        q
    }
}

/// One saga in the list.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SagaRow {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub status: String,
    pub cancel_reason: Option<String>,
    pub total_cents: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// PENDING past its deadline.
    pub overdue: bool,
}

/// A page of sagas and the cursor of the next, if any.
#[derive(Debug, Serialize)]
pub struct Page {
    pub sagas: Vec<SagaRow>,
    pub next: Option<String>,
}

/// One page of sagas matching `filter`.
pub async fn page(pool: &sqlx::PgPool, filter: &Filter) -> ConsoleResult<Page> {
    let mut sagas: Vec<SagaRow> = filter
        .query()
        .build_query_as()
        .fetch_all(pool)
        .await
        .map_err(|e| ConsoleError::unavailable("reading the sagas from the order database", e))?;
    let more = sagas.len() as i64 > filter.limit;
    sagas.truncate(filter.limit as usize);
    let next = more.then(|| sagas.last()).flatten().map(|last| {
        Cursor {
            created_at: last.created_at,
            order_id: last.order_id,
        }
        .encode()
    });
    Ok(Page { sagas, next })
}

/// `GET /api/sagas`.
pub async fn list(
    Signed(_): Signed,
    State(state): State<Shared>,
    query: Result<Query<SagasQuery>, QueryRejection>,
) -> ConsoleResult<Json<Page>> {
    let Query(query) = query?;
    let filter = Filter::parse(&query)?;
    Ok(Json(
        page(state.sources.pool(Producer::ORDER), &filter).await?,
    ))
}

/// The query of `GET /api/outcomes`.
#[derive(Debug, Deserialize)]
pub struct OutcomesQuery {
    pub minutes: Option<String>,
}

/// The sagas that ended in one minute.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Minute {
    #[serde(with = "time::serde::rfc3339")]
    pub minute: OffsetDateTime,
    pub confirmed: i64,
    pub cancelled: i64,
}

#[derive(Debug, Serialize)]
pub struct Outcomes {
    pub minutes: Vec<Minute>,
}

/// `GET /api/outcomes?minutes=60`: per minute that had any, the sagas confirmed and cancelled
/// (an order's last change is when its saga ended).
pub async fn outcomes(
    Signed(_): Signed,
    State(state): State<Shared>,
    query: Result<Query<OutcomesQuery>, QueryRejection>,
) -> ConsoleResult<Json<Outcomes>> {
    let Query(query) = query?;
    let minutes = match query.minutes.as_deref() {
        None => 60,
        Some(m) => m
            .parse::<i32>()
            .ok()
            .filter(|m| (1..=1440).contains(m))
            .ok_or_else(|| bad(format!("minutes={m:?}: a number from 1 to 1440")))?,
    };
    let minutes = sqlx::query_as::<_, Minute>(
        "SELECT date_trunc('minute', updated_at) AS minute,
                count(*) FILTER (WHERE status = 'CONFIRMED') AS confirmed,
                count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled
         FROM orders
         WHERE status <> 'PENDING' AND updated_at >= now() - make_interval(mins => $1)
         GROUP BY 1 ORDER BY 1",
    )
    .bind(minutes)
    .fetch_all(state.sources.pool(Producer::ORDER))
    .await
    .map_err(|e| ConsoleError::unavailable("counting the sagas' outcomes", e))?;
    Ok(Json(Outcomes { minutes }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> SagasQuery {
        let mut q = SagasQuery::default();
        for (k, v) in pairs {
            let v = Some((*v).to_owned());
            match *k {
                "status" => q.status = v,
                "reason" => q.reason = v,
                "overdue" => q.overdue = v,
                "customer" => q.customer = v,
                "from" => q.from = v,
                "to" => q.to = v,
                "after" => q.after = v,
                "limit" => q.limit = v,
                _ => unreachable!(),
            }
        }
        q
    }

    #[test]
    fn a_cursor_names_its_row_to_the_microsecond() {
        let c = Cursor {
            created_at: time::macros::datetime!(2026-12-06 17:30:01.123456 UTC),
            order_id: Uuid::new_v4(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("nonsense"), None);
        assert_eq!(Cursor::decode("12_notauuid"), None);
    }

    #[test]
    fn filters_are_checked_before_the_database_is_asked() {
        let f =
            Filter::parse(&q(&[("status", "cancelled"), ("reason", "payment_failed")])).unwrap();
        assert_eq!(f.status, Some(OrderStatus::Cancelled));
        assert_eq!(f.reason, Some("payment_failed"));
        assert_eq!(f.limit, DEFAULT_LIMIT);
        for bad in [
            ("status", "LOST"),
            ("reason", "bored"),
            ("overdue", "yes"),
            ("customer", "x"),
            ("from", "yesterday"),
            ("after", "x"),
            ("limit", "0"),
            ("limit", "201"),
        ] {
            assert!(Filter::parse(&q(&[bad])).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_statement_has_only_the_conditions_asked_for() {
        let plain = Filter::parse(&q(&[])).unwrap().query().into_sql();
        assert!(!plain.contains("cancel_reason ="), "{plain}");
        let paged = Filter::parse(&q(&[(
            "after",
            &Cursor {
                created_at: OffsetDateTime::UNIX_EPOCH,
                order_id: Uuid::nil(),
            }
            .encode(),
        )]))
        .unwrap()
        .query()
        .into_sql();
        assert!(
            paged.contains("(created_at, order_id) < ($1, $2)"),
            "{paged}"
        );
        assert!(
            paged.contains("ORDER BY created_at DESC, order_id DESC"),
            "{paged}"
        );
    }
}
