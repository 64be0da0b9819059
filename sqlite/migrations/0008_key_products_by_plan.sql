-- Products are stored with their plan: plans get an integer key of their own (seq, the
-- rowid made explicit, so that a VACUUM keeps it) and products are keyed by their plan's
-- seq, then their id. A new plan takes the next seq, so the products of new plans append
-- at the end of their table, where before each product went to a random place in two
-- B-trees (products by id, products_plan by plan id): now it adds one entry at a random
-- place, in products_id. Filling a store with 200k plans of the bench's catalog
-- (BenchmarkColdIngest) writes half the bytes (docs/BENCHMARKS.md). The plan's id is read
-- through the join on seq. Both tables are rebuilt once, with their rows and rowids.

-- +goose Up
CREATE TABLE plans_new (
    seq                  INTEGER PRIMARY KEY, -- the rowid: a new plan takes the next one
    id                   BLOB    NOT NULL UNIQUE, -- catalog.ID, 16 bytes: memcmp order is ID order
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

INSERT INTO plans_new (seq, id, provider, base_plan_id, plan_id, title, organizer_company_id, sell_mode,
    ever_online, starts_at, ends_at, sell_from, sell_to, sold_out, zones, min_price_cents, max_price_cents,
    revision, version, fingerprint)
SELECT rowid, id, provider, base_plan_id, plan_id, title, organizer_company_id, sell_mode,
    ever_online, starts_at, ends_at, sell_from, sell_to, sold_out, zones, min_price_cents, max_price_cents,
    revision, version, fingerprint
FROM plans ORDER BY rowid;

-- One row per zone of an ever-online plan, kept in step with plans by UpsertPlans.
CREATE TABLE products_new (
    plan_seq         INTEGER NOT NULL REFERENCES plans_new (seq),
    id               BLOB    NOT NULL,               -- pricing.NewProductID, 16 bytes: memcmp order is ID order
    position         INTEGER NOT NULL,               -- the zone's place in the plan's zones, from 0
    zone_id          TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    numbered         INTEGER NOT NULL,
    base_price_cents INTEGER NOT NULL,               -- the provider's price
    capacity         INTEGER NOT NULL,
    surcharge_bp     INTEGER NOT NULL DEFAULT 0,     -- written by recalculations only
    price_cents      INTEGER NOT NULL DEFAULT 0,     -- the list price; 0 until priced
    version          INTEGER NOT NULL DEFAULT 0,     -- pricing version of surcharge and price; 0: never
    PRIMARY KEY (plan_seq, id)
) STRICT, WITHOUT ROWID;

INSERT INTO products_new (plan_seq, id, position, zone_id, name, numbered, base_price_cents, capacity,
    surcharge_bp, price_cents, version)
SELECT p.seq, pr.id, pr.position, pr.zone_id, pr.name, pr.numbered, pr.base_price_cents, pr.capacity,
    pr.surcharge_bp, pr.price_cents, pr.version
FROM products pr JOIN plans_new p ON p.id = pr.plan_id ORDER BY p.seq, pr.id;

DROP TABLE products;
DROP TABLE plans;
ALTER TABLE plans_new RENAME TO plans;
ALTER TABLE products_new RENAME TO products;

-- Product, SavePrices and ProductsAfter: a product by its id.
CREATE UNIQUE INDEX products_id ON products (id);

-- Search: a range on starts_at in (starts_at, id) order, ends_at filtered from the index.
CREATE INDEX plans_window ON plans (starts_at, id, ends_at) WHERE ever_online = 1;

-- ChangedSince: the searchable plans above a version.
CREATE INDEX plans_version ON plans (version) WHERE ever_online = 1;

-- +goose Down
CREATE TABLE plans_old (
    id                   BLOB    PRIMARY KEY,
    provider             TEXT    NOT NULL,
    base_plan_id         TEXT    NOT NULL,
    plan_id              TEXT    NOT NULL,
    title                TEXT    NOT NULL,
    organizer_company_id TEXT,
    sell_mode            TEXT    NOT NULL,
    ever_online          INTEGER NOT NULL,
    starts_at            INTEGER NOT NULL,
    ends_at              INTEGER NOT NULL,
    sell_from            INTEGER NOT NULL,
    sell_to              INTEGER NOT NULL,
    sold_out             INTEGER NOT NULL,
    zones                TEXT    NOT NULL,
    min_price_cents      INTEGER,
    max_price_cents      INTEGER,
    revision             INTEGER NOT NULL,
    version              INTEGER NOT NULL,
    fingerprint          INTEGER NOT NULL
) STRICT;

INSERT INTO plans_old (rowid, id, provider, base_plan_id, plan_id, title, organizer_company_id, sell_mode,
    ever_online, starts_at, ends_at, sell_from, sell_to, sold_out, zones, min_price_cents, max_price_cents,
    revision, version, fingerprint)
SELECT seq, id, provider, base_plan_id, plan_id, title, organizer_company_id, sell_mode,
    ever_online, starts_at, ends_at, sell_from, sell_to, sold_out, zones, min_price_cents, max_price_cents,
    revision, version, fingerprint
FROM plans ORDER BY seq;

CREATE TABLE products_old (
    id               BLOB    PRIMARY KEY,
    plan_id          BLOB    NOT NULL REFERENCES plans_old (id),
    position         INTEGER NOT NULL,
    zone_id          TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    numbered         INTEGER NOT NULL,
    base_price_cents INTEGER NOT NULL,
    capacity         INTEGER NOT NULL,
    surcharge_bp     INTEGER NOT NULL DEFAULT 0,
    price_cents      INTEGER NOT NULL DEFAULT 0,
    version          INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

INSERT INTO products_old (id, plan_id, position, zone_id, name, numbered, base_price_cents, capacity,
    surcharge_bp, price_cents, version)
SELECT pr.id, p.id, pr.position, pr.zone_id, pr.name, pr.numbered, pr.base_price_cents, pr.capacity,
    pr.surcharge_bp, pr.price_cents, pr.version
FROM products pr JOIN plans p ON p.seq = pr.plan_seq;

DROP TABLE products;
DROP TABLE plans;
ALTER TABLE plans_old RENAME TO plans;
ALTER TABLE products_old RENAME TO products;
CREATE INDEX products_plan ON products (plan_id, position);
CREATE INDEX plans_window ON plans (starts_at, id, ends_at) WHERE ever_online = 1;
CREATE INDEX plans_version ON plans (version) WHERE ever_online = 1;
