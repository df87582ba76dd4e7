-- The points service's own state. Points are whole numbers, one point is worth one cent.

-- Each customer's points: available to spend, and held by orders whose saga is running.
CREATE TABLE accounts (
    customer_id UUID        PRIMARY KEY,
    available   BIGINT      NOT NULL DEFAULT 0 CHECK (available >= 0),
    held        BIGINT      NOT NULL DEFAULT 0 CHECK (held >= 0),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Points operators awarded (each also a PointsAwarded event, with its operator).
CREATE TABLE awards (
    award_id    UUID        PRIMARY KEY,
    customer_id UUID        NOT NULL,
    points      BIGINT      NOT NULL CHECK (points > 0),
    actor       TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- What each order did with points: HELD while its saga runs, RELEASED when it was cancelled,
-- SPENT when it was confirmed (then `earned` says what the confirmation awarded). An order that
-- spends no points has a row only once it is confirmed (SPENT, 0 points), for what it earned.
CREATE TABLE holds (
    order_id    UUID        PRIMARY KEY,
    customer_id UUID        NOT NULL,
    points      BIGINT      NOT NULL CHECK (points >= 0),
    status      TEXT        NOT NULL CHECK (status IN ('HELD', 'RELEASED', 'SPENT')),
    earned      BIGINT      CHECK (earned >= 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT holds_earned_iff_spent CHECK ((status = 'SPENT') = (earned IS NOT NULL))
);
CREATE INDEX holds_customer ON holds (customer_id);
