-- The outbox (task.Outbox): when the broker confirmed a task's message, NULL until it
-- did. A pending task never published, or published long ago and not attempted since,
-- is published again by a task.Redriver. Tasks pending before this migration count as
-- never published: the first re-drive publishes them again, which is harmless.

-- +goose Up
ALTER TABLE tasks ADD COLUMN published_at INTEGER;
CREATE INDEX tasks_pending ON tasks (kind, gen) WHERE state = 'pending';

-- +goose Down
DROP INDEX tasks_pending;
ALTER TABLE tasks DROP COLUMN published_at;
