-- The pricing columns take the names PostgreSQL gives the same facts (postgres
-- 0005_align_pricing_columns.sql adds what it lacked), so that both schemas read alike:
-- products.version, pricing_state.applied and task_generations.requested.
--
-- What stays different, by design: SQLite's products read sold_out and starts_at from
-- their plan (a join on one file costs nothing), where PostgreSQL keeps them on the row
-- for replica reads without a join; SQLite takes market event ids from AUTOINCREMENT
-- (one writer commits in id order), where PostgreSQL counts them in pricing_state.events
-- under its row lock; and times are Unix microseconds here, timestamptz there.

-- +goose Up
ALTER TABLE products RENAME COLUMN priced_version TO version;
ALTER TABLE pricing_state RENAME COLUMN applied_event TO applied;
ALTER TABLE task_generations RENAME COLUMN gen TO requested;

-- +goose Down
ALTER TABLE task_generations RENAME COLUMN requested TO gen;
ALTER TABLE pricing_state RENAME COLUMN applied TO applied_event;
ALTER TABLE products RENAME COLUMN version TO priced_version;
