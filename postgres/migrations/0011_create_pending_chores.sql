-- Chores that Migrate finishes once: a row is one not finished yet, deleted when done,
-- so that a process that starts on a store where it is done never scans the plans for
-- it. backfill_products gives products to the ever-online plans stored without them
-- (before 0002); inserted here, it runs once more on a store upgraded from before 0011.

-- +goose Up
CREATE TABLE pending_chores (
    name text PRIMARY KEY
);

INSERT INTO pending_chores (name) VALUES ('backfill_products');

-- +goose Down
DROP TABLE pending_chores;
