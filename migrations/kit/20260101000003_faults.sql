-- What ordinary operations need from the kit's tables: a message's failures counted by the runner
-- (not by the server), and outbox rows that cannot be published set aside instead of holding the
-- relay.

-- Deliveries of a message that started while the database answered and did not finish: the runner
-- counts them itself and dead-letters the message at its budget. A row exists only while a message
-- is failing; it is removed in the transaction that applies, dedupes or dead-letters the message.
CREATE TABLE kit_delivery_failures (
    consumer   TEXT        NOT NULL,
    stream     TEXT        NOT NULL,
    stream_seq BIGINT      NOT NULL,
    failures   INTEGER     NOT NULL,
    last_error TEXT,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, stream, stream_seq)
);

-- A row the stream refused is tried again after a back-off of its own (other keys go on meanwhile);
-- a row that can never be published (larger than the server accepts) is parked with its reason,
-- for `jetsaga dlq` and `jetsaga stats` to show and a person to decide.
ALTER TABLE kit_outbox
    ADD COLUMN attempts        INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at TIMESTAMPTZ,
    ADD COLUMN last_error      TEXT,
    ADD COLUMN parked_at       TIMESTAMPTZ,
    ADD COLUMN park_reason     TEXT;

DROP INDEX kit_outbox_unpublished;
CREATE INDEX kit_outbox_unpublished ON kit_outbox (id)
    WHERE published_at IS NULL AND parked_at IS NULL;
CREATE INDEX kit_outbox_parked ON kit_outbox (id) WHERE parked_at IS NOT NULL;
