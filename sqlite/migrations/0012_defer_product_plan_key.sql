-- A product's reference to its plan is checked at commit (DEFERRABLE INITIALLY
-- DEFERRED) rather than at each statement. An immediate foreign key makes a statement
-- that inserts many rows keep a statement journal, to undo its own rows alone when a
-- row fails the check: the plan upsert inserts the products of new plans with
-- multi-row statements, and each wrote every page it changed to a temporary file
-- (about 7 KiB a plan, BenchmarkColdIngest). A deferred key is still checked: a commit
-- that leaves a product without its plan fails. SQLite cannot alter a constraint, so
-- the table is rebuilt once, with its rows.

-- +goose Up
CREATE TABLE products_new (
    plan_seq         INTEGER NOT NULL REFERENCES plans (seq) DEFERRABLE INITIALLY DEFERRED,
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

INSERT INTO products_new SELECT plan_seq, id, position, zone_id, name, numbered, base_price_cents, capacity,
    surcharge_bp, price_cents, version FROM products ORDER BY plan_seq, id;

DROP TABLE products;
ALTER TABLE products_new RENAME TO products;

-- Product, SavePrices and ProductsAfter: a product by its id.
CREATE UNIQUE INDEX products_id ON products (id);

-- +goose Down
CREATE TABLE products_old (
    plan_seq         INTEGER NOT NULL REFERENCES plans (seq),
    id               BLOB    NOT NULL,
    position         INTEGER NOT NULL,
    zone_id          TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    numbered         INTEGER NOT NULL,
    base_price_cents INTEGER NOT NULL,
    capacity         INTEGER NOT NULL,
    surcharge_bp     INTEGER NOT NULL DEFAULT 0,
    price_cents      INTEGER NOT NULL DEFAULT 0,
    version          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (plan_seq, id)
) STRICT, WITHOUT ROWID;

INSERT INTO products_old SELECT plan_seq, id, position, zone_id, name, numbered, base_price_cents, capacity,
    surcharge_bp, price_cents, version FROM products ORDER BY plan_seq, id;

DROP TABLE products;
ALTER TABLE products_old RENAME TO products;
CREATE UNIQUE INDEX products_id ON products (id);
