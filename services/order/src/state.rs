//! The order service's business state, as `jetsaga replay --verify` compares it between the live
//! database and one rebuilt from the streams: one query per table, `(key, state)` per business
//! row, ordered by key, without the columns that only say when a row was written.

use saga_kit::facts::StateTable;

/// The products and every order with its lines and its Idempotency-Key record.
///
/// `stock_reserved` is shown only while the order is PENDING: it records a StockReserved that
/// overtook the discount, and decides nothing once the order has ended. After the end it only
/// tells which input came first (a confirmation by StockReserved leaves it false, one by
/// PointsReserved finds it true), which no fact records, so two databases with the same
/// outcome may differ there.
pub const TABLES: &[StateTable] = &[
    StateTable {
        name: "products",
        query: "SELECT sku AS key,
                       jsonb_build_object('name', name, 'price_cents', price_cents) AS state
                FROM products ORDER BY key",
    },
    StateTable {
        name: "orders",
        query: "SELECT o.order_id::text AS key,
                       jsonb_build_object(
                           'customer_id', o.customer_id,
                           'status', o.status,
                           'total_cents', o.total_cents,
                           'discount_cents', o.discount_cents,
                           'voucher_code', o.voucher_code,
                           'points_requested', o.points_requested,
                           'points_spent', o.points_spent,
                           'cancel_reason', o.cancel_reason,
                           'deadline',
                               to_char(o.deadline AT TIME ZONE 'UTC',
                                       'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
                           'idempotency_key', o.idempotency_key,
                           'request_hash', o.request_hash,
                           'stock_reserved',
                               CASE WHEN o.status = 'PENDING' THEN o.stock_reserved END,
                           'lines', (
                               SELECT jsonb_agg(jsonb_build_object(
                                          'sku', l.sku,
                                          'quantity', l.quantity,
                                          'unit_price_cents', l.unit_price_cents)
                                      ORDER BY l.line_no)
                               FROM order_lines l WHERE l.order_id = o.order_id)) AS state
                FROM orders o ORDER BY key",
    },
];
