-- The last sync of each provider, as the ingest leader recorded it when the sync ended,
-- for GET /api/v1/providers: every process reads it, whichever ran the sync.

-- +goose Up
CREATE TABLE provider_status (
    provider        text        PRIMARY KEY,
    sync_id         text        NOT NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    outcome         text        NOT NULL,   -- ok, not_modified, failed
    error           text        NOT NULL,   -- '' unless failed
    format          text        NOT NULL,   -- '' when no document was read
    parsed          integer     NOT NULL,
    skipped         integer     NOT NULL,
    batches         integer     NOT NULL,
    attempts        integer     NOT NULL,
    next_at         timestamptz NOT NULL,
    last_success_at timestamptz             -- NULL before the first sync that did not fail
);

-- +goose Down
DROP TABLE provider_status;
