-- A migration as slow as one that rewrites a big table (1.5 s), which needs the kit's inbox to
-- itself: two instances that start together must take turns, and one that finds the table held
-- must wait for it.
SELECT pg_sleep(1.5);
ALTER TABLE kit_inbox ADD COLUMN migrated_slowly BOOLEAN;
