-- The payment service's own tables. The kit's tables (kit_outbox, kit_inbox, kit_dead_letters,
-- kit_barrier) come from the kit's migration and live beside these, so a balance change, its payment
-- row and the events that announce it commit in one local transaction.

-- One balance per customer. A customer never credited has no row and a balance of 0.
-- Conservation: sum(credits) = sum(balance) + sum(payments CHARGED).
CREATE TABLE accounts (
    customer_id   UUID        PRIMARY KEY,
    -- Never negative: an order the balance cannot cover is a FAILED payment, not a debt.
    balance_cents BIGINT      NOT NULL CHECK (balance_cents >= 0),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The ledger of credits (admin changes, each announced as AccountCredited).
CREATE TABLE credits (
    credit_id    UUID        PRIMARY KEY,
    customer_id  UUID        NOT NULL,
    amount_cents BIGINT      NOT NULL CHECK (amount_cents > 0),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX credits_customer ON credits (customer_id);

-- The payment ledger: one row per order that reached the payment step. A reconciler compares it
-- with the provider's settlement file by payment_id, so the ids and both timestamps are kept.
CREATE TABLE payments (
    order_id     UUID        PRIMARY KEY,
    payment_id   UUID        NOT NULL UNIQUE,
    customer_id  UUID        NOT NULL,
    amount_cents BIGINT      NOT NULL CHECK (amount_cents >= 0),
    status       TEXT        NOT NULL CHECK (status IN ('CHARGED', 'FAILED', 'REFUNDED')),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX payments_customer ON payments (customer_id);
