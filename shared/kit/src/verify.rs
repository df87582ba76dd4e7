//! The rebuilt-state check: a service's business state rebuilt from the streams alone, compared row
//! by row with the live database (seed 002's `rebuildOrderState` and "Order state mismatch").

use crate::facts::StateTable;
use serde::Serialize;
use sqlx::PgPool;
use std::collections::BTreeMap;

/// One business row that is not the same in both databases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    pub table: &'static str,
    pub key: String,
    /// The row in the live database; `None` when only the rebuild has it.
    pub live: Option<serde_json::Value>,
    /// The row rebuilt from the streams; `None` when only the live database has it.
    pub rebuilt: Option<serde_json::Value>,
}

impl Difference {
    /// `missing in the rebuild`, `missing in the live database` or `differs`.
    pub fn what(&self) -> &'static str {
        match (&self.live, &self.rebuilt) {
            (Some(_), None) => "missing in the rebuild",
            (None, Some(_)) => "missing in the live database",
            _ => "differs",
        }
    }
}

/// What a comparison covered.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Compared {
    /// Rows compared per table (the larger side).
    pub rows: BTreeMap<&'static str, u64>,
    pub differences: Vec<Difference>,
}

/// Why a comparison could not run.
#[derive(Debug, thiserror::Error)]
#[error("comparing table {table} ({side} database): {source}")]
pub struct VerifyError {
    pub table: &'static str,
    pub side: &'static str,
    #[source]
    pub source: sqlx::Error,
}

async fn rows(
    pool: &PgPool,
    table: &StateTable,
    side: &'static str,
) -> Result<BTreeMap<String, serde_json::Value>, VerifyError> {
    let rows: Vec<(String, serde_json::Value)> = sqlx::query_as(table.query)
        .fetch_all(pool)
        .await
        .map_err(|source| VerifyError {
            table: table.name,
            side,
            source,
        })?;
    Ok(rows.into_iter().collect())
}

/// Compares every table of `tables` between `live` and `rebuilt`.
pub async fn compare(
    live: &PgPool,
    rebuilt: &PgPool,
    tables: &[StateTable],
) -> Result<Compared, VerifyError> {
    let mut compared = Compared::default();
    for table in tables {
        let live_rows = rows(live, table, "live").await?;
        let rebuilt_rows = rows(rebuilt, table, "rebuilt").await?;
        compared
            .rows
            .insert(table.name, live_rows.len().max(rebuilt_rows.len()) as u64);
        compared
            .differences
            .extend(differences(table.name, &live_rows, &rebuilt_rows));
    }
    Ok(compared)
}

/// The rows of one table that differ, in key order.
fn differences(
    table: &'static str,
    live: &BTreeMap<String, serde_json::Value>,
    rebuilt: &BTreeMap<String, serde_json::Value>,
) -> Vec<Difference> {
    let mut keys: Vec<&String> = live.keys().chain(rebuilt.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| {
            let (l, r) = (live.get(key), rebuilt.get(key));
            (l != r).then(|| Difference {
                table,
                key: key.clone(),
                live: l.cloned(),
                rebuilt: r.cloned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_missing_on_either_side_or_different_are_differences() {
        let live = BTreeMap::from([
            ("a".to_owned(), json!({"balance": 5})),
            ("b".to_owned(), json!({"balance": 7})),
            ("c".to_owned(), json!({"balance": 1})),
        ]);
        let rebuilt = BTreeMap::from([
            ("a".to_owned(), json!({"balance": 5})),
            ("b".to_owned(), json!({"balance": 9})),
            ("d".to_owned(), json!({"balance": 1})),
        ]);
        let d = differences("accounts", &live, &rebuilt);
        let summary: Vec<(&str, &str)> = d.iter().map(|d| (d.key.as_str(), d.what())).collect();
        assert_eq!(
            summary,
            [
                ("b", "differs"),
                ("c", "missing in the rebuild"),
                ("d", "missing in the live database")
            ]
        );
    }
}
