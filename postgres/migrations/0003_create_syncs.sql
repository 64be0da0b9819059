-- Provider syncs: the batches of each sync that workers applied, and per provider the
-- newest sync whose every batch was applied, with the validators (ETag, Last-Modified)
-- of the document it fetched. A fetch may be conditional on those validators only.

-- +goose Up
CREATE TABLE sync_batches (
    provider text   NOT NULL,
    sync_id  text   NOT NULL,
    seq      integer NOT NULL,              -- 0-based position of the batch in its sync
    revision bigint NOT NULL,               -- the sync's revision: orders syncs
    PRIMARY KEY (provider, sync_id, seq)
);

CREATE INDEX sync_batches_revision ON sync_batches (provider, revision);

CREATE TABLE provider_syncs (
    provider      text        PRIMARY KEY,
    sync_id       text        NOT NULL,     -- the confirmed sync
    revision      bigint      NOT NULL,
    batches       integer     NOT NULL,
    etag          text        NOT NULL,     -- '' when the provider sent none
    last_modified text        NOT NULL,
    confirmed_at  timestamptz NOT NULL
);

-- +goose Down
DROP TABLE provider_syncs;
DROP TABLE sync_batches;
