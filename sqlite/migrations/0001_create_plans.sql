-- Plans keep their latest known values and whether they were ever seen online; the
-- catalog version counts committed changes to the searchable (ever-online) plans.

-- +goose Up
CREATE TABLE plans (
    id                   BLOB    PRIMARY KEY, -- catalog.ID, 16 bytes: memcmp order is ID order
    provider             TEXT    NOT NULL,
    base_plan_id         TEXT    NOT NULL,
    plan_id              TEXT    NOT NULL,
    title                TEXT    NOT NULL,
    organizer_company_id TEXT,                -- NULL when the provider omits it
    sell_mode            TEXT    NOT NULL,    -- as last observed: online or offline
    ever_online          INTEGER NOT NULL,    -- 1 once any observation was online; sticky
    starts_at            INTEGER NOT NULL,    -- Unix seconds of the provider wall clock as UTC
    ends_at              INTEGER NOT NULL,
    sell_from            INTEGER NOT NULL,
    sell_to              INTEGER NOT NULL,
    sold_out             INTEGER NOT NULL,
    zones                TEXT    NOT NULL,    -- JSON array, in provider order, prices in cents
    min_price_cents      INTEGER,             -- NULL without zones
    max_price_cents      INTEGER,
    revision             INTEGER NOT NULL,    -- the observation the values come from
    version              INTEGER NOT NULL,    -- catalog version of the last searchable change
    fingerprint          INTEGER NOT NULL     -- hash of the values, to skip unchanged rewrites
) STRICT;

-- Search: a range on starts_at in (starts_at, id) order, ends_at filtered from the index.
CREATE INDEX plans_window ON plans (starts_at, id, ends_at) WHERE ever_online = 1;

-- ChangedSince: the searchable plans above a version.
CREATE INDEX plans_version ON plans (version) WHERE ever_online = 1;

CREATE TABLE catalog_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
) STRICT;

INSERT INTO catalog_version (id, version) VALUES (1, 0);

-- +goose Down
DROP TABLE catalog_version;
DROP TABLE plans;
