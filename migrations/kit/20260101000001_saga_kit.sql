-- The saga kit's tables. They live in every service database, beside the service's own tables, so
-- that the business change, the inbox row and the outgoing events commit in one local transaction.

-- Outgoing events, written in the business transaction and published by the relay.
CREATE TABLE kit_outbox (
    id           BIGSERIAL PRIMARY KEY,
    event_id     UUID        NOT NULL UNIQUE,
    subject      TEXT        NOT NULL,
    -- Per-key publish order is kept: the relay never publishes an event of a key while an earlier
    -- unpublished event of the same key is held by another relay.
    order_key    TEXT        NOT NULL,
    ce_type      TEXT        NOT NULL,
    headers      JSONB       NOT NULL,
    payload      BYTEA       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ,
    stream_seq   BIGINT
);
CREATE INDEX kit_outbox_unpublished ON kit_outbox (id) WHERE published_at IS NULL;
CREATE INDEX kit_outbox_unpublished_key ON kit_outbox (order_key, id) WHERE published_at IS NULL;

-- One notification per inserting statement wakes the relays; the relay's poll covers lost ones.
CREATE FUNCTION kit_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('kit_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER kit_outbox_notify AFTER INSERT ON kit_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION kit_outbox_notify();

-- Events consumed for effect: the primary key is the dedupe.
CREATE TABLE kit_inbox (
    consumer    TEXT        NOT NULL,
    event_id    UUID        NOT NULL,
    stream_seq  BIGINT,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Messages that will never succeed as they are: kept whole so a person can inspect and requeue them.
CREATE TABLE kit_dead_letters (
    id          BIGSERIAL PRIMARY KEY,
    consumer    TEXT        NOT NULL,
    stream      TEXT        NOT NULL,
    stream_seq  BIGINT      NOT NULL,
    subject     TEXT        NOT NULL,
    headers     JSONB       NOT NULL,
    payload     BYTEA       NOT NULL,
    event_id    UUID,
    kind        TEXT        NOT NULL CHECK (kind IN
                    ('undecodable', 'unknown_type', 'wrong_producer', 'rejected', 'max_deliveries')),
    reason      TEXT        NOT NULL,
    deliveries  BIGINT      NOT NULL DEFAULT 1,
    failed_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    status      TEXT        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'requeued', 'discarded')),
    UNIQUE (consumer, stream, stream_seq)
);

-- Who requeued or discarded which dead letter, and when.
CREATE TABLE kit_dead_letter_audit (
    id             BIGSERIAL PRIMARY KEY,
    dead_letter_id BIGINT      NOT NULL REFERENCES kit_dead_letters (id),
    action         TEXT        NOT NULL CHECK (action IN ('requeued', 'discarded')),
    actor          TEXT        NOT NULL,
    new_msg_id     TEXT,
    at             TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The saga barrier: which branch of which saga this participant has tried or compensated. It turns a
-- compensation that arrives before its forward step into a recorded no-op (null compensation) and a
-- forward step that arrives after its compensation into a recorded no-op (hanging step).
CREATE TABLE kit_barrier (
    saga_id    TEXT        NOT NULL,
    branch     TEXT        NOT NULL,
    op         TEXT        NOT NULL CHECK (op IN ('forward', 'compensate')),
    event_id   UUID        NOT NULL,
    at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (saga_id, branch, op)
);
