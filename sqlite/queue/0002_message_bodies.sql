-- A message's body moves to a table of its own, written once at publication: the
-- claim, the lease's renewals, a retry and a release update the message's row, and
-- SQLite rewrites a whole row on an update, its body's overflow pages with it (a
-- 20 000-plan batch is 10 MB: the claim's UPDATE took 2.2 s of a 1M cold ingest). And
-- a message's seq is never given to another one (AUTOINCREMENT), where a plain INTEGER
-- PRIMARY KEY hands the highest seq out again once its message is deleted: a seq names
-- one message, and its body, for ever, so what a consumer read under a seq (a body read
-- ahead of its claim) is never another message's.
--
-- The old table is renamed before the new ones reference the name: dropping a parent
-- table deletes its rows first, and the ON DELETE CASCADE would take the bodies along.

-- +goose Up
DROP INDEX messages_next;
ALTER TABLE messages RENAME TO messages_with_bodies;
CREATE TABLE messages (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT, -- publication order; never reused
    topic        TEXT    NOT NULL,
    id           TEXT    NOT NULL,             -- the publisher's, kept across redeliveries
    headers      TEXT    NOT NULL DEFAULT '{}', -- a JSON object of strings
    attempt      INTEGER NOT NULL DEFAULT 1,   -- the handler attempt of the next delivery
    deliveries   INTEGER NOT NULL DEFAULT 0,   -- every delivery so far
    unsettled    INTEGER NOT NULL DEFAULT 0,   -- deliveries since the last outcome (a retry)
    available_at INTEGER NOT NULL,             -- unix ms: not delivered before; while held, the lease's end
    lease        TEXT,                         -- the token of the delivery that holds it; NULL when waiting
    published_at INTEGER NOT NULL              -- unix ms
);
CREATE INDEX messages_next ON messages (topic, available_at, seq);
CREATE TABLE message_bodies (
    seq  INTEGER PRIMARY KEY REFERENCES messages (seq) ON DELETE CASCADE,
    body BLOB    NOT NULL                      -- never updated
);
INSERT INTO messages (seq, topic, id, headers, attempt, deliveries, unsettled, available_at, lease, published_at)
    SELECT seq, topic, id, headers, attempt, deliveries, unsettled, available_at, lease, published_at FROM messages_with_bodies;
INSERT INTO message_bodies (seq, body) SELECT seq, body FROM messages_with_bodies;
DROP TABLE messages_with_bodies;

-- +goose Down
DROP INDEX messages_next;
ALTER TABLE messages RENAME TO messages_without_bodies;
CREATE TABLE messages (
    seq          INTEGER PRIMARY KEY,
    topic        TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    body         BLOB    NOT NULL,
    headers      TEXT    NOT NULL DEFAULT '{}',
    attempt      INTEGER NOT NULL DEFAULT 1,
    deliveries   INTEGER NOT NULL DEFAULT 0,
    unsettled    INTEGER NOT NULL DEFAULT 0,
    available_at INTEGER NOT NULL,
    lease        TEXT,
    published_at INTEGER NOT NULL
);
CREATE INDEX messages_next ON messages (topic, available_at, seq);
INSERT INTO messages SELECT m.seq, m.topic, m.id, b.body, m.headers, m.attempt, m.deliveries, m.unsettled, m.available_at, m.lease, m.published_at
    FROM messages_without_bodies m JOIN message_bodies b USING (seq);
DROP TABLE message_bodies;
DROP TABLE messages_without_bodies;
