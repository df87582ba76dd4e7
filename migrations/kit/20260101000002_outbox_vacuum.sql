-- The outbox is a queue: every row is inserted, then updated once when published, so the partial
-- indexes the relay claims through fill with dead entries between vacuums and every claim walks
-- them. Vacuum it after a thousand changes, not after a fifth of the table, and without sleeping.
ALTER TABLE kit_outbox SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 5000,
    autovacuum_vacuum_cost_delay = 0
);
