-- Per provider, the highest revision of a sync that began to publish its batches
-- (ingest.Baseline.BeginPublish): until that sync is confirmed, a batch of it may still
-- write values, so the next sync publishes every plan it parsed.

-- +goose Up
CREATE TABLE sync_publications (
    provider TEXT    PRIMARY KEY,
    revision INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE sync_publications;
