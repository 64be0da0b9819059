-- The last sync of each provider, as the ingest leader recorded it when the sync ended,
-- for GET /api/v1/providers: every process reads it, whichever ran the sync.

-- +goose Up
CREATE TABLE provider_status (
    provider        TEXT    PRIMARY KEY,
    sync_id         TEXT    NOT NULL,
    started_at      INTEGER NOT NULL,        -- Unix microseconds
    finished_at     INTEGER NOT NULL,
    outcome         TEXT    NOT NULL,        -- ok, not_modified, failed
    error           TEXT    NOT NULL,        -- '' unless failed
    format          TEXT    NOT NULL,        -- '' when no document was read
    parsed          INTEGER NOT NULL,
    skipped         INTEGER NOT NULL,
    batches         INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    next_at         INTEGER NOT NULL,
    last_success_at INTEGER                  -- NULL before the first sync that did not fail
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE provider_status;
