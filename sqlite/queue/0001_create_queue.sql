-- The embedded broker's queue (queue.db, beside boxoffice.db): see broker.go.

-- +goose Up
CREATE TABLE messages (
    seq          INTEGER PRIMARY KEY,          -- publication order
    topic        TEXT    NOT NULL,
    id           TEXT    NOT NULL,             -- the publisher's, kept across redeliveries
    body         BLOB    NOT NULL,
    headers      TEXT    NOT NULL DEFAULT '{}', -- a JSON object of strings
    attempt      INTEGER NOT NULL DEFAULT 1,   -- the handler attempt of the next delivery
    deliveries   INTEGER NOT NULL DEFAULT 0,   -- every delivery so far
    unsettled    INTEGER NOT NULL DEFAULT 0,   -- deliveries since the last outcome (a retry)
    available_at INTEGER NOT NULL,             -- unix ms: not delivered before; while held, the lease's end
    lease        TEXT,                         -- the token of the delivery that holds it; NULL when waiting
    published_at INTEGER NOT NULL              -- unix ms
);
CREATE INDEX messages_next ON messages (topic, available_at, seq);

CREATE TABLE dead_letters (
    seq          INTEGER PRIMARY KEY,          -- dead-lettering order
    topic        TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    body         BLOB    NOT NULL,
    headers      TEXT    NOT NULL,             -- the publisher's, with boxoffice-error (and -stack)
    attempt      INTEGER NOT NULL,             -- the attempt it died at
    deliveries   INTEGER NOT NULL,
    error        TEXT    NOT NULL,
    died_at      INTEGER NOT NULL,             -- unix ms
    published_at INTEGER NOT NULL
);
CREATE INDEX dead_letters_topic ON dead_letters (topic, seq);

-- +goose Down
DROP TABLE dead_letters;
DROP TABLE messages;
