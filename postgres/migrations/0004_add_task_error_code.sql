-- A task's failure as clients see it: a stable code (task.Code*), served with its
-- public message. The error column keeps the internal text for operators only.

-- +goose Up
ALTER TABLE tasks ADD COLUMN error_code text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE tasks DROP COLUMN error_code;
