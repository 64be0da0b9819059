-- Plans keep their latest known values and whether they were ever seen online; the
-- catalog version counts committed changes to the searchable (ever-online) plans.
-- Names are unqualified: everything goes to the first schema of the search_path.

-- +goose Up
CREATE TABLE plans (
    id                   uuid      PRIMARY KEY, -- catalog.ID; uuid order is the IDs' byte order
    provider             text      NOT NULL,
    base_plan_id         text      NOT NULL,
    plan_id              text      NOT NULL,
    title                text      NOT NULL,
    organizer_company_id text,                  -- NULL when the provider omits it
    sell_mode            text      NOT NULL,    -- as last observed: online or offline
    ever_online          boolean   NOT NULL,    -- true once any observation was online; sticky
    starts_at            timestamp NOT NULL,    -- the provider's wall clock, whole seconds, no zone
    ends_at              timestamp NOT NULL,
    sell_from            timestamp NOT NULL,
    sell_to              timestamp NOT NULL,
    sold_out             boolean   NOT NULL,
    zones                jsonb     NOT NULL,    -- array in provider order, prices in integer cents
    min_price_cents      bigint,                -- NULL without zones
    max_price_cents      bigint,
    revision             bigint    NOT NULL,    -- the observation the values come from
    version              bigint    NOT NULL,    -- catalog version of the last searchable change
    fingerprint          bigint    NOT NULL     -- hash of the values, to skip unchanged rewrites
);

-- Search: a range on starts_at read in (starts_at, id) order, so ORDER BY needs no sort.
CREATE INDEX plans_window ON plans (starts_at, id) INCLUDE (ends_at) WHERE ever_online;

-- ChangedSince: the searchable plans above a version.
CREATE INDEX plans_version ON plans (version) WHERE ever_online;

-- One row. Writers lock it first (SELECT ... FOR UPDATE), which orders their commits.
CREATE TABLE catalog_version (
    id      integer PRIMARY KEY CHECK (id = 1),
    version bigint  NOT NULL
);

INSERT INTO catalog_version (id, version) VALUES (1, 0);

-- +goose Down
DROP TABLE catalog_version;
DROP TABLE plans;
