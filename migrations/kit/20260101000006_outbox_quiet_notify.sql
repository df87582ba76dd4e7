-- A consumer runner that wakes its own process's relay directly (`Consumer::with_relay`) begins
-- its transactions with `SET LOCAL kit.outbox_notify = 'off'`: its outbox inserts then make no
-- NOTIFY, which spares the notification queue and the relays' listeners a wake-up per event. Every
-- other writer (an HTTP request, the CLI, another process) notifies as before.
DROP TRIGGER kit_outbox_notify ON kit_outbox;
CREATE TRIGGER kit_outbox_notify AFTER INSERT ON kit_outbox
    FOR EACH STATEMENT
    WHEN (current_setting('kit.outbox_notify', true) IS DISTINCT FROM 'off')
    EXECUTE FUNCTION kit_outbox_notify();
