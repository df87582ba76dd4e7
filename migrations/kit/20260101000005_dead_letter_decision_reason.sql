-- Why an operator requeued or discarded a dead letter, in their words (the console asks for it;
-- `jetsaga dlq requeue|discard --reason`). NULL for decisions made before it was asked.
ALTER TABLE kit_dead_letter_audit ADD COLUMN IF NOT EXISTS reason TEXT;
