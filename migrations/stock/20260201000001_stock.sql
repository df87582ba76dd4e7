-- The stock service's own tables. The kit's tables (outbox, inbox, dead letters, barrier) come from
-- the kit's migration, in the same database.
--
-- Conservation, per SKU: the sum of `adjustments.delta` (stock added) equals `available` plus the
-- units held by reservations. A confirmed order's units stay in `reserved`; only a cancellation
-- moves them back to `available`.

-- The units of one SKU: free to reserve, and held for orders.
CREATE TABLE stock (
    sku        TEXT        PRIMARY KEY,
    available  BIGINT      NOT NULL CHECK (available >= 0),
    reserved   BIGINT      NOT NULL CHECK (reserved >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The ledger of operator adjustments ("stock added"), one row per StockAdjusted event.
CREATE TABLE adjustments (
    adjustment_id UUID        PRIMARY KEY,
    sku           TEXT        NOT NULL REFERENCES stock (sku),
    delta         BIGINT      NOT NULL CHECK (delta <> 0),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX adjustments_by_sku ON adjustments (sku);

-- What each order holds, per SKU. HELD units are counted in `stock.reserved`; RELEASED ones went
-- back to `stock.available` when the order was cancelled.
CREATE TABLE reservations (
    order_id   UUID        NOT NULL,
    sku        TEXT        NOT NULL REFERENCES stock (sku),
    quantity   BIGINT      NOT NULL CHECK (quantity > 0),
    status     TEXT        NOT NULL CHECK (status IN ('HELD', 'RELEASED')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, sku)
);
CREATE INDEX reservations_by_sku ON reservations (sku) WHERE status = 'HELD';
