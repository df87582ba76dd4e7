-- The voucher service's own state. EXPIRED is not stored: it is derived at read time for an
-- AVAILABLE voucher whose expires_at has passed, so no timer has to flip rows.

CREATE TABLE vouchers (
    code           TEXT        PRIMARY KEY,
    customer_id    UUID        NOT NULL,
    discount_cents BIGINT      NOT NULL CHECK (discount_cents > 0),
    expires_at     TIMESTAMPTZ,
    status         TEXT        NOT NULL DEFAULT 'AVAILABLE'
                               CHECK (status IN ('AVAILABLE', 'RESERVED', 'REDEEMED')),
    -- The order holding (RESERVED) or having used (REDEEMED) the voucher; NULL while AVAILABLE.
    order_id       UUID,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT vouchers_held_iff_not_available CHECK ((status = 'AVAILABLE') = (order_id IS NULL))
);

-- An order holds at most one voucher; the handlers find it by its order.
CREATE UNIQUE INDEX vouchers_order_id ON vouchers (order_id) WHERE order_id IS NOT NULL;
