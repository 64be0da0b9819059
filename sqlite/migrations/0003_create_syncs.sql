-- Provider syncs: the batches of each sync that workers applied, and per provider the
-- newest sync whose every batch was applied, with the validators (ETag, Last-Modified)
-- of the document it fetched. A fetch may be conditional on those validators only.

-- +goose Up
CREATE TABLE sync_batches (
    provider TEXT    NOT NULL,
    sync_id  TEXT    NOT NULL,
    seq      INTEGER NOT NULL,               -- 0-based position of the batch in its sync
    revision INTEGER NOT NULL,               -- the sync's revision: orders syncs
    PRIMARY KEY (provider, sync_id, seq)
) STRICT, WITHOUT ROWID;

CREATE INDEX sync_batches_revision ON sync_batches (provider, revision);

CREATE TABLE provider_syncs (
    provider      TEXT    PRIMARY KEY,
    sync_id       TEXT    NOT NULL,          -- the confirmed sync
    revision      INTEGER NOT NULL,
    batches       INTEGER NOT NULL,
    etag          TEXT    NOT NULL,          -- '' when the provider sent none
    last_modified TEXT    NOT NULL,
    confirmed_at  INTEGER NOT NULL           -- Unix microseconds
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE provider_syncs;
DROP TABLE sync_batches;
