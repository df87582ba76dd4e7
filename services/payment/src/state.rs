//! The payment service's business state, as `jetsaga replay --verify` compares it between the
//! live database and one rebuilt from the streams: one query per table, `(key, state)` per
//! business row, ordered by key, without the columns that only say when a row was written.

use saga_kit::facts::StateTable;

/// The balances, the credit ledger and the payment ledger.
pub const TABLES: &[StateTable] = &[
    StateTable {
        name: "accounts",
        query: "SELECT customer_id::text AS key,
                       jsonb_build_object('balance_cents', balance_cents) AS state
                FROM accounts ORDER BY key",
    },
    StateTable {
        name: "credits",
        query: "SELECT credit_id::text AS key,
                       jsonb_build_object('customer_id', customer_id,
                                          'amount_cents', amount_cents) AS state
                FROM credits ORDER BY key",
    },
    StateTable {
        name: "payments",
        query: "SELECT order_id::text AS key,
                       jsonb_build_object('payment_id', payment_id,
                                          'customer_id', customer_id,
                                          'amount_cents', amount_cents,
                                          'status', status) AS state
                FROM payments ORDER BY key",
    },
];
