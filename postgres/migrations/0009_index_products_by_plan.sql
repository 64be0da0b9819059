-- products_plan on plan_id alone: a plan's products share one key, which B-tree
-- deduplication stores once with a list of their rows, so the index is about half the
-- size of one on (plan_id, position), whose every entry is distinct. Every new plan
-- inserts its products at a random place in it, so a bulk load touches all of its pages:
-- the smaller it is, the fewer of them leave shared_buffers between two batches. Readers
-- of a plan's products sort its few rows by position themselves.

-- +goose Up
DROP INDEX products_plan;
CREATE INDEX products_plan ON products (plan_id);

-- +goose Down
DROP INDEX products_plan;
CREATE INDEX products_plan ON products (plan_id, position);
