package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"boxoffice/catalog"
	"boxoffice/task"
)

// Alike postgres/tasks.go in shape only: SQLite's SQL and driver, and adapters never import each other.
var _ task.Records = (*Store)(nil)

// CreateTask records a pending task with a random UUID and the next generation of
// kind, both in one immediate transaction, so concurrent calls take distinct
// generations without gaps.
func (s *Store) CreateTask(ctx context.Context, kind, trigger string, now time.Time) (task.Record, error) {
	r := task.Record{ID: newTaskID(), Kind: kind, Trigger: trigger, State: task.Pending, RequestedAt: atMicros(now)}
	if err := s.createTask(ctx, &r); err != nil {
		return task.Record{}, fmt.Errorf("create %s task: %w", kind, err)
	}
	return r, nil
}

func (s *Store) createTask(ctx context.Context, r *task.Record) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `INSERT INTO task_generations (kind, requested) VALUES (?, 1)
		ON CONFLICT (kind) DO UPDATE SET requested = requested + 1 RETURNING requested`, r.Kind).Scan(&r.Gen); err != nil {
		return fmt.Errorf("next generation: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tasks (id, kind, triggered_by, state, gen, attempts, requested_at, error)
		VALUES (?, ?, ?, ?, ?, 0, ?, '')`, r.ID, r.Kind, r.Trigger, string(r.State), r.Gen, micros(r.RequestedAt)); err != nil {
		return err
	}
	if err := s.ckpt.commit(tx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// newTaskID returns a random (version 4) UUID in canonical form.
func newTaskID() string {
	var id catalog.ID
	_, _ = rand.Read(id[:]) // never fails
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id.String()
}

// Task returns a task, or task.ErrNotFound; an id that is not a UUID names no task.
func (s *Store) Task(ctx context.Context, id string) (task.Record, error) {
	key, err := catalog.ParseID(id)
	if err != nil {
		return task.Record{}, fmt.Errorf("task %q: %w", id, task.ErrNotFound)
	}
	var (
		r                            task.Record
		state                        string
		requested, started, finished sql.NullInt64
		result                       sql.NullString
	)
	err = s.read.QueryRowContext(ctx, `SELECT id, kind, triggered_by, state, gen, attempts, requested_at, started_at,
		finished_at, result, error_code, error FROM tasks WHERE id = ?`, key.String()).Scan(&r.ID, &r.Kind, &r.Trigger, &state,
		&r.Gen, &r.Attempts, &requested, &started, &finished, &result, &r.ErrorCode, &r.Error)
	if errors.Is(err, sql.ErrNoRows) {
		return task.Record{}, fmt.Errorf("task %s: %w", id, task.ErrNotFound)
	}
	if err != nil {
		return task.Record{}, fmt.Errorf("task %s: %w", id, err)
	}
	r.State = task.State(state)
	r.RequestedAt, r.StartedAt, r.FinishedAt = fromNullMicros(requested), fromNullMicros(started), fromNullMicros(finished)
	if result.Valid {
		r.Result = []byte(result.String)
	}
	return r, nil
}

// StartTask starts a run of the task id: running, attempts the greater of attempt and
// attempts + 1, computed in the statement that writes it, so that no two runs share an
// attempt number; task.ErrEnded for a task that ended.
func (s *Store) StartTask(ctx context.Context, id string, attempt int, at time.Time) (int, error) {
	key, err := catalog.ParseID(id)
	if err != nil {
		return 0, fmt.Errorf("start task %q: %w", id, task.ErrNotFound)
	}
	var attempts int
	err = s.write.QueryRowContext(ctx, `UPDATE tasks SET state = ?, attempts = MAX(attempts + 1, ?), started_at = ?,
		finished_at = NULL, error_code = '', error = '' WHERE id = ? AND state NOT IN (SELECT value FROM json_each(?))
		RETURNING attempts`, string(task.Running), attempt, micros(at), key.String(), endStates()).Scan(&attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("start task %s: %w", id, s.unsaved(ctx, key, -1))
	}
	if err != nil {
		return 0, fmt.Errorf("start task %s: %w", id, err)
	}
	return attempts, nil
}

// SaveTask writes r's State, Attempts, StartedAt, FinishedAt, Result, ErrorCode and Error; the
// kind, trigger, generation and request time stay as CreateTask wrote them. A task that
// has ended keeps its record (task.ErrEnded), and so does one whose attempts are no
// longer attempts (task.ErrSuperseded; task.AnyRun takes any): both are checked and written in one statement.
// An unknown task is task.ErrNotFound.
func (s *Store) SaveTask(ctx context.Context, r task.Record, attempts int) error {
	key, err := catalog.ParseID(r.ID)
	if err != nil {
		return fmt.Errorf("save task %q: %w", r.ID, task.ErrNotFound)
	}
	var result any
	if len(r.Result) > 0 {
		result = string(r.Result)
	}
	res, err := s.write.ExecContext(ctx, `UPDATE tasks SET state = ?, attempts = ?, started_at = ?, finished_at = ?,
		result = ?, error_code = ?, error = ? WHERE id = ? AND state NOT IN (SELECT value FROM json_each(?)) AND (? < 0 OR attempts = ?)`,
		string(r.State), r.Attempts, micros(r.StartedAt), micros(r.FinishedAt), result, r.ErrorCode, r.Error, key.String(),
		endStates(), attempts, attempts)
	if err != nil {
		return fmt.Errorf("save task %s: %w", r.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("save task %s: %w", r.ID, err)
	} else if n == 1 {
		return nil
	}
	return fmt.Errorf("save task %s: %w", r.ID, s.unsaved(ctx, key, attempts))
}

// unsaved says why a conditional write of the task id changed nothing: it is unknown
// (task.ErrNotFound), it ended (task.ErrEnded: states never leave an end state), or
// its attempts are no longer attempts (task.ErrSuperseded; a negative attempts checks
// only the first two).
func (s *Store) unsaved(ctx context.Context, key catalog.ID, attempts int) error {
	var (
		state string
		n     int
	)
	switch err := s.write.QueryRowContext(ctx, `SELECT state, attempts FROM tasks WHERE id = ?`, key.String()).Scan(&state, &n); {
	case errors.Is(err, sql.ErrNoRows):
		return task.ErrNotFound
	case err != nil:
		return err
	}
	return task.Unsaved(task.State(state), n, attempts)
}

// endStates returns task.EndStates as a JSON array, for json_each.
func endStates() string {
	b, _ := json.Marshal(task.EndStates) // strings never fail
	return string(b)
}

var _ task.Outbox = (*Store)(nil)

// Published records the tasks ids published at at (NULL for the zero time), in one
// transaction.
func (s *Store) Published(ctx context.Context, at time.Time, ids ...string) error {
	if err := s.published(ctx, at, ids); err != nil {
		return fmt.Errorf("record %d tasks published: %w", len(ids), err)
	}
	return nil
}

func (s *Store) published(ctx context.Context, at time.Time, ids []string) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	for _, id := range ids {
		key, err := catalog.ParseID(id)
		if err != nil {
			continue // names no task
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tasks SET published_at = ? WHERE id = ?`, micros(at), key.String()); err != nil {
			return err
		}
	}
	return s.ckpt.commit(tx)
}

// ClaimRedrive claims the tasks to publish again in one statement; the store's single
// writer makes concurrent claims take turns.
func (s *Store) ClaimRedrive(ctx context.Context, kind string, c task.RedriveClaim) ([]string, error) {
	rows, err := s.write.QueryContext(ctx, `UPDATE tasks SET published_at = ? WHERE id IN (
			SELECT id FROM tasks WHERE kind = ?
				AND ((state = ? AND ((published_at IS NULL AND requested_at < ?)
						OR (published_at < ? AND (started_at IS NULL OR started_at < ?))))
					OR (state = ? AND started_at < ? AND (published_at IS NULL OR published_at < ?)))
			ORDER BY gen LIMIT ?)
		RETURNING id`,
		micros(c.Now), kind, string(task.Pending), micros(c.Unpublished), micros(c.Lost), micros(c.Lost),
		string(task.Running), micros(c.Lost), micros(c.Lost), c.Limit)
	ids, err := taskIDs(rows, err)
	if err != nil {
		return nil, fmt.Errorf("claim %s tasks to re-drive: %w", kind, err)
	}
	return ids, nil
}

// taskIDs reads the ids that a query of one column returned (rows and err are its
// results), and closes rows.
func taskIDs(rows *sql.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
