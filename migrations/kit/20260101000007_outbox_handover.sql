-- A consumer runner hands the events it committed to its own process's relay, which publishes
-- them at once instead of claiming them (`RelayWake::hand_over`). Such a row is leased to that
-- relay for a moment: other relays' claims skip it until the lease ends, and its later rows of the
-- same key wait for it as for any row another relay holds. A lease that ends unpublished (the
-- process died, the stream refused it) leaves the row to the claims, as before.
ALTER TABLE kit_outbox ADD COLUMN leased_until TIMESTAMPTZ;

-- Whether no other transaction's unpublished row of the key is waiting, seen after the key's
-- advisory lock is held: then a row written now is the next of its key to be published, and may
-- be handed over. VOLATILE and PL/pgSQL, so its query takes a snapshot of its own: the rows of the
-- transaction that held the key's lock before are visible to it, though the calling statement's
-- snapshot began before that transaction committed. Parked rows hold back nothing, as in a claim.
CREATE FUNCTION kit_outbox_key_clear(key TEXT) RETURNS BOOLEAN LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN NOT EXISTS (
        SELECT 1 FROM kit_outbox
        WHERE order_key = key AND published_at IS NULL AND parked_at IS NULL
          AND xmin <> pg_current_xact_id()::xid
    );
END $$;
