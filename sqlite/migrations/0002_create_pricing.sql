-- Pricing: the products of ever-online plans with their last computed prices, market
-- data per location and the events that move it, the progress of recalculations, and
-- the tasks clients ask about. Times are Unix microseconds, NULL for none.

-- +goose Up
-- One row per zone of an ever-online plan, kept in step with plans by UpsertPlans.
CREATE TABLE products (
    id               BLOB    PRIMARY KEY,            -- pricing.NewProductID, 16 bytes: memcmp order is ID order
    plan_id          BLOB    NOT NULL REFERENCES plans (id),
    position         INTEGER NOT NULL,               -- the zone's place in the plan's zones, from 0
    zone_id          TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    numbered         INTEGER NOT NULL,
    base_price_cents INTEGER NOT NULL,               -- the provider's price
    capacity         INTEGER NOT NULL,
    surcharge_bp     INTEGER NOT NULL DEFAULT 0,     -- written by recalculations only
    price_cents      INTEGER NOT NULL DEFAULT 0,     -- the list price; 0 until priced
    priced_version   INTEGER NOT NULL DEFAULT 0      -- pricing version of surcharge and price; 0: never
) STRICT, WITHOUT ROWID;

-- EventProducts and the upsert's diff: a plan's products in zone order.
CREATE INDEX products_plan ON products (plan_id, position);

-- Market data folded from the events; a location without a row uses '*', then neutral.
CREATE TABLE markets (
    location      TEXT    PRIMARY KEY,               -- '*' is the global market
    multiplier_bp INTEGER NOT NULL,
    demand_bp     INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,                  -- the now of the run that folded event_id
    event_id      INTEGER NOT NULL                   -- the last event folded in
) STRICT, WITHOUT ROWID;

-- Every market event received, in order; BeginRun folds those above applied_event.
CREATE TABLE market_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, so ids only increase
    location      TEXT    NOT NULL,
    multiplier_bp INTEGER,                           -- NULL: leaves the value as it is
    demand_bp     INTEGER,
    source        TEXT    NOT NULL,
    received_at   INTEGER
) STRICT;

CREATE TABLE pricing_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    done          INTEGER NOT NULL,                  -- generation covered by the last completed run
    version       INTEGER NOT NULL,                  -- the published pricing version
    applied_event INTEGER NOT NULL,                  -- the last market event folded into markets
    completed_at  INTEGER                            -- of the last completed run
) STRICT;

INSERT INTO pricing_state (id, done, version, applied_event) VALUES (1, 0, 0, 0);

-- The generation of the last task of each kind: CreateTask takes the next one.
CREATE TABLE task_generations (
    kind TEXT    PRIMARY KEY,
    gen  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE tasks (
    id           TEXT    PRIMARY KEY,                -- canonical lowercase UUID
    kind         TEXT    NOT NULL,
    triggered_by TEXT    NOT NULL,                   -- "trigger" is an SQL keyword
    state        TEXT    NOT NULL,
    gen          INTEGER NOT NULL,
    attempts     INTEGER NOT NULL,
    requested_at INTEGER,
    started_at   INTEGER,
    finished_at  INTEGER,
    result       TEXT,                               -- JSON; NULL until the task ends
    error        TEXT    NOT NULL,
    UNIQUE (kind, gen)
) STRICT;

-- +goose Down
DROP TABLE tasks;
DROP TABLE task_generations;
DROP TABLE pricing_state;
DROP TABLE market_events;
DROP TABLE markets;
DROP TABLE products;
