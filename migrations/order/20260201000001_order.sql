-- The order service's own tables. The kit's tables (outbox, inbox, dead letters, barrier) come from
-- the kit's migration and live beside these, so an order change and its events commit together.

-- Products and their current prices, set by operators (each change is also a ProductPriced event).
CREATE TABLE products (
    sku         TEXT        PRIMARY KEY,
    name        TEXT        NOT NULL CHECK (name <> ''),
    price_cents BIGINT      NOT NULL CHECK (price_cents > 0),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per order, and so per saga.
CREATE TABLE orders (
    order_id        UUID        PRIMARY KEY,
    customer_id     UUID        NOT NULL,
    status          TEXT        NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED')),
    total_cents     BIGINT      NOT NULL CHECK (total_cents >= 0),
    -- NULL until VoucherReserved has been handled (it carries the discount, 0 without a voucher);
    -- the order is only confirmed once it is known.
    discount_cents  BIGINT      CHECK (discount_cents >= 0),
    voucher_code    TEXT,
    cancel_reason   TEXT        CHECK (cancel_reason IN
                        ('voucher_rejected', 'payment_failed', 'stock_failed', 'timeout')),
    deadline        TIMESTAMPTZ NOT NULL,
    -- The client's Idempotency-Key and a hash of its canonical request: the same key with the same
    -- request answers the same order, with another request it is refused.
    idempotency_key TEXT        UNIQUE,
    request_hash    TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((status = 'CANCELLED') = (cancel_reason IS NOT NULL))
);

-- The deadline sweep reads only pending orders, oldest deadline first.
CREATE INDEX orders_pending_deadline ON orders (deadline) WHERE status = 'PENDING';

-- The lines of an order, priced when it was accepted.
CREATE TABLE order_lines (
    order_id         UUID    NOT NULL REFERENCES orders (order_id),
    line_no          INTEGER NOT NULL,
    sku              TEXT    NOT NULL,
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_cents BIGINT  NOT NULL CHECK (unit_price_cents > 0),
    PRIMARY KEY (order_id, line_no)
);
