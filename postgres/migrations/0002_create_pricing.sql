-- Pricing: the products (zones of ever-online plans) with their last computed prices,
-- market data per location and the market events that change it, recalculation tasks,
-- and the pricing's progress. Names are unqualified, as in 0001.

-- +goose Up
-- The catalog version at which a plan's products last had to change: UpsertPlans sets
-- it to the version it stamps when the plan becomes ever-online or its zones, sold_out
-- or starts_at change, and brings the products of those plans alone in step.
ALTER TABLE plans ADD COLUMN products_version bigint NOT NULL DEFAULT 0;

-- Kept in step with plans by UpsertPlans, in the transaction that changes the plan.
CREATE TABLE products (
    id               uuid      PRIMARY KEY, -- pricing.NewProductID
    plan_id          uuid      NOT NULL,    -- plans.id
    position         integer   NOT NULL,    -- the zone's place in the plan's zones, from 0
    zone_id          text      NOT NULL,
    name             text      NOT NULL,
    numbered         boolean   NOT NULL,
    base_price_cents bigint    NOT NULL,
    capacity         bigint    NOT NULL,
    sold_out         boolean   NOT NULL,    -- the plan's
    starts_at        timestamp NOT NULL,    -- the plan's, as plans.starts_at
    surcharge_bp     bigint    NOT NULL DEFAULT 0, -- from the last recalculation; 0 before
    price_cents      bigint    NOT NULL DEFAULT 0,
    version          bigint    NOT NULL DEFAULT 0  -- pricing version of the two; 0: never priced
);

-- EventProducts in zone order, and the replacement of a changed plan's products.
CREATE INDEX products_plan ON products (plan_id, position);

-- One row per location that market events ever touched; GlobalLocation is '*'.
CREATE TABLE markets (
    location      text   PRIMARY KEY,
    multiplier_bp bigint NOT NULL,
    demand_bp     bigint NOT NULL
);

-- Ids come from pricing_state.events, taken under its row lock, so they are assigned in
-- commit order and every event above pricing_state.applied is yet to be folded.
CREATE TABLE market_events (
    id            bigint      PRIMARY KEY,
    location      text        NOT NULL,
    multiplier_bp bigint,                -- NULL leaves the location's multiplier as it is
    demand_bp     bigint,                -- NULL leaves its demand as it is
    source        text        NOT NULL,
    received_at   timestamptz NOT NULL
);

-- The generation of the last task requested of each kind.
CREATE TABLE task_generations (
    kind      text   PRIMARY KEY,
    requested bigint NOT NULL
);

CREATE TABLE tasks (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    kind         text        NOT NULL,
    trigger      text        NOT NULL,
    state        text        NOT NULL,
    gen          bigint      NOT NULL,
    attempts     integer     NOT NULL DEFAULT 0,
    requested_at timestamptz NOT NULL,
    started_at   timestamptz,            -- NULL until the first attempt
    finished_at  timestamptz,            -- NULL until the task ends
    result       json,                   -- json, not jsonb: kept byte for byte
    error        text        NOT NULL DEFAULT ''
);

-- One row. BeginRun and CompleteRun lock it, and so does AddMarketEvent to take an id.
CREATE TABLE pricing_state (
    id      integer PRIMARY KEY CHECK (id = 1),
    done    bigint  NOT NULL, -- generation covered by the last completed run
    version bigint  NOT NULL, -- pricing version: the highest a completed run published
    events  bigint  NOT NULL, -- id of the last market event
    applied bigint  NOT NULL  -- id of the last market event folded into markets
);

INSERT INTO pricing_state (id, done, version, events, applied) VALUES (1, 0, 0, 0, 0);

-- +goose Down
DROP TABLE pricing_state;
DROP TABLE tasks;
DROP TABLE task_generations;
DROP TABLE market_events;
DROP TABLE markets;
DROP TABLE products;
ALTER TABLE plans DROP COLUMN products_version;
