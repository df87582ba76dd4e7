//! The voucher service's business state, as `jetsaga replay --verify` compares it between the
//! live database and one rebuilt from the streams: `(key, state)` per voucher, ordered by code,
//! without the columns that only say when a row was written.

use saga_kit::facts::StateTable;

/// Every voucher: its owner, discount, expiry, stored status and the order holding or having used
/// it. Times are written in UTC, so two servers in other time zones compare equal.
pub const TABLES: &[StateTable] = &[StateTable {
    name: "vouchers",
    query: "SELECT code AS key,
                   jsonb_build_object(
                       'customer_id', customer_id,
                       'discount_cents', discount_cents,
                       'expires_at',
                           to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
                       'status', status,
                       'order_id', order_id) AS state
            FROM vouchers ORDER BY key",
}];
