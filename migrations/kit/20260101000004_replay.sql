-- What a replay needs from the kit's tables: where each consumer may safely start reading again.

-- Each durable consumer's ack floor, written by the runner every few seconds: every message of its
-- input stream up to `ack_floor` was settled, so its effect (or its dead letter) committed before
-- this row was written. A database restored from a backup holds the floor of the moment of the
-- backup, so `jetsaga replay` starts each consumer just after it, whatever `--since` says.
CREATE TABLE kit_consumer_floor (
    consumer    TEXT        PRIMARY KEY,
    stream      TEXT        NOT NULL,
    ack_floor   BIGINT      NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
