-- The pricing columns as SQLite has them (sqlite 0005_align_pricing_columns.sql renames
-- its own to PostgreSQL's names): a task's trigger is triggered_by ("trigger" is a
-- keyword in SQLite), and markets and pricing_state say when a run last changed them.
--
-- What stays different, by design: products keep sold_out and starts_at on the row here
-- (replica reads without a join), where SQLite reads them from the plan; market event
-- ids are counted in pricing_state.events here, AUTOINCREMENT there; times are
-- timestamptz here, Unix microseconds there.

-- +goose Up
ALTER TABLE tasks RENAME COLUMN trigger TO triggered_by;
ALTER TABLE markets
    ADD COLUMN updated_at timestamptz,              -- the now of the run that folded event_id; NULL before this migration
    ADD COLUMN event_id   bigint NOT NULL DEFAULT 0; -- the last event folded in; 0 before this migration
ALTER TABLE pricing_state ADD COLUMN completed_at timestamptz; -- of the last completed run

-- +goose Down
ALTER TABLE pricing_state DROP COLUMN completed_at;
ALTER TABLE markets DROP COLUMN event_id, DROP COLUMN updated_at;
ALTER TABLE tasks RENAME COLUMN triggered_by TO trigger;
