//! The stock service's business state, as `jetsaga replay --verify` compares it between the live
//! database and one rebuilt from the streams: one query per table, `(key, state)` per business
//! row, ordered by key, without the columns that only say when a row was written.

use saga_kit::facts::StateTable;

/// The units per SKU, the adjustments ledger and every order's reservations.
pub const TABLES: &[StateTable] = &[
    StateTable {
        name: "stock",
        query: "SELECT sku AS key,
                       jsonb_build_object('available', available, 'reserved', reserved) AS state
                FROM stock ORDER BY key",
    },
    StateTable {
        name: "adjustments",
        query: "SELECT adjustment_id::text AS key,
                       jsonb_build_object('sku', sku, 'delta', delta) AS state
                FROM adjustments ORDER BY key",
    },
    StateTable {
        name: "reservations",
        query: "SELECT order_id::text || '/' || sku AS key,
                       jsonb_build_object('quantity', quantity, 'status', status) AS state
                FROM reservations ORDER BY key",
    },
];
