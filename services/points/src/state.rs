//! The points service's business state, as `jetsaga replay --verify` compares it between the live
//! database and one rebuilt from the streams: `(key, state)` per row, ordered by key, without the
//! columns that only say when a row was written.

use saga_kit::facts::StateTable;

/// Every account, award and hold.
pub const TABLES: &[StateTable] = &[
    StateTable {
        name: "accounts",
        query: "SELECT customer_id::text AS key,
                       jsonb_build_object('available', available, 'held', held) AS state
                FROM accounts ORDER BY key",
    },
    StateTable {
        name: "awards",
        query: "SELECT award_id::text AS key,
                       jsonb_build_object('customer_id', customer_id, 'points', points,
                                          'actor', actor) AS state
                FROM awards ORDER BY key",
    },
    StateTable {
        name: "holds",
        query: "SELECT order_id::text AS key,
                       jsonb_build_object('customer_id', customer_id, 'points', points,
                                          'status', status, 'earned', earned) AS state
                FROM holds ORDER BY key",
    },
];
