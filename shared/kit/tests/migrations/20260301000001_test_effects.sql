-- A stand-in participant's business table for the kit's conformance suite: one row per order, with
-- how many times the effect was applied. Exactly-once means n is never above 1.
CREATE TABLE test_effects (
    order_id UUID PRIMARY KEY,
    sku      TEXT NOT NULL,
    n        INT NOT NULL
);

-- A check that runs only at COMMIT, so a test can make a handler's transaction fail after the
-- handler has returned its events: nothing it emitted may reach the stream.
CREATE FUNCTION test_effects_fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.sku = 'FAIL_AT_COMMIT' THEN
        RAISE EXCEPTION 'commit refused for order %', NEW.order_id;
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER test_effects_fail_at_commit AFTER INSERT ON test_effects
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_effects_fail_at_commit();
