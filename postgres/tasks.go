package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"boxoffice/catalog"
	"boxoffice/task"
)

var _ task.Records = (*Store)(nil)

// CreateTask records a pending task of kind on the primary, with a random UUID and the
// next generation of kind, in one statement: the counter's row lock makes concurrent
// callers take distinct generations, in commit order and without gaps.
func (s *Store) CreateTask(ctx context.Context, kind, trigger string, now time.Time) (task.Record, error) {
	r := task.Record{Kind: kind, Trigger: trigger, State: task.Pending, RequestedAt: storedTime(now)}
	err := s.primary.QueryRow(ctx, `WITH g AS (
			INSERT INTO task_generations (kind, requested) VALUES ($1, 1)
			ON CONFLICT (kind) DO UPDATE SET requested = task_generations.requested + 1
			RETURNING requested)
		INSERT INTO tasks (kind, triggered_by, state, gen, requested_at)
		SELECT $1, $2, $3, requested, $4 FROM g
		RETURNING id::text, gen`,
		kind, trigger, string(task.Pending), r.RequestedAt,
	).Scan(&r.ID, &r.Gen)
	if err != nil {
		return task.Record{}, fmt.Errorf("create %s task: %w", kind, err)
	}
	return r, nil
}

// taskColumns are the columns of tasks that readTask reads, in its order.
const taskColumns = `id::text, kind, triggered_by, state, gen, attempts, requested_at, started_at, finished_at, result,
	error_code, error`

// Task returns the task id from the replica (see Store) or, when the replica does not
// have it (it may not have replayed a task just created), from the primary; else
// task.ErrNotFound.
func (s *Store) Task(ctx context.Context, id string) (task.Record, error) {
	key, err := catalog.ParseID(id)
	if err != nil {
		return task.Record{}, fmt.Errorf("task %q: %w", id, task.ErrNotFound)
	}
	var (
		r         task.Record
		onReplica bool
	)
	err = s.read(ctx, func(ctx context.Context, pool *pgxpool.Pool) error {
		onReplica = pool == s.replica
		var err error
		r, err = readTask(ctx, pool, key)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) && onReplica {
		if r, err = readTask(ctx, s.primary, key); err == nil {
			s.primaryReads.Add(1)
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		err = task.ErrNotFound
	}
	if err != nil {
		return task.Record{}, fmt.Errorf("task %s: %w", id, err)
	}
	return r, nil
}

func readTask(ctx context.Context, pool *pgxpool.Pool, id catalog.ID) (task.Record, error) {
	var (
		r                 task.Record
		state             string
		started, finished *time.Time
		result            []byte
	)
	err := pool.QueryRow(ctx, `SELECT `+taskColumns+` FROM tasks WHERE id = $1`, [16]byte(id)).Scan(
		&r.ID, &r.Kind, &r.Trigger, &state, &r.Gen, &r.Attempts, &r.RequestedAt, &started, &finished, &result,
		&r.ErrorCode, &r.Error)
	if err != nil {
		return task.Record{}, err
	}
	r.State = task.State(state)
	r.RequestedAt = r.RequestedAt.UTC()
	if started != nil {
		r.StartedAt = started.UTC()
	}
	if finished != nil {
		r.FinishedAt = finished.UTC()
	}
	if result != nil {
		r.Result = result
	}
	return r, nil
}

// StartTask starts a run of the task id on the primary: running, attempts the greater
// of attempt and attempts + 1, computed in the statement that writes it, so that no
// two runs share an attempt number; task.ErrEnded for a task that ended.
func (s *Store) StartTask(ctx context.Context, id string, attempt int, at time.Time) (int, error) {
	key, err := catalog.ParseID(id)
	if err != nil {
		return 0, fmt.Errorf("start task %q: %w", id, task.ErrNotFound)
	}
	var attempts int
	err = s.primary.QueryRow(ctx, `UPDATE tasks SET state = $2, attempts = GREATEST(attempts + 1, $3), started_at = $4,
			finished_at = NULL, error_code = '', error = ''
		WHERE id = $1 AND state <> ALL($5::text[]) RETURNING attempts`,
		[16]byte(key), string(task.Running), attempt, nullTime(at), endStates()).Scan(&attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("start task %s: %w", id, s.unsaved(ctx, key, -1))
	}
	if err != nil {
		return 0, fmt.Errorf("start task %s: %w", id, err)
	}
	return attempts, nil
}

// SaveTask writes the state, attempts, start and finish times, result, error code and error of r
// on the primary, unless the task has ended (task.ErrEnded) or its attempts are no longer
// attempts (task.ErrSuperseded; task.AnyRun takes any): both are checked and written in one statement, so that
// no concurrent save relabels a task that ended or a run that took over.
func (s *Store) SaveTask(ctx context.Context, r task.Record, attempts int) error {
	id, err := catalog.ParseID(r.ID)
	if err != nil {
		return fmt.Errorf("save task %q: %w", r.ID, task.ErrNotFound)
	}
	var result any
	if len(r.Result) > 0 {
		result = string(r.Result)
	}
	tag, err := s.primary.Exec(ctx, `UPDATE tasks SET state = $2, attempts = $3, started_at = $4, finished_at = $5,
			result = $6::json, error_code = $7, error = $8
		WHERE id = $1 AND state <> ALL($9::text[]) AND ($10 < 0 OR attempts = $10)`,
		[16]byte(id), string(r.State), r.Attempts, nullTime(r.StartedAt), nullTime(r.FinishedAt), result, r.ErrorCode, r.Error,
		endStates(), attempts)
	if err != nil {
		return fmt.Errorf("save task %s: %w", r.ID, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	return fmt.Errorf("save task %s: %w", r.ID, s.unsaved(ctx, id, attempts))
}

// unsaved says why a conditional write of the task id changed nothing: it is unknown
// (task.ErrNotFound), it ended (task.ErrEnded: states never leave an end state), or
// its attempts are no longer attempts (task.ErrSuperseded; a negative attempts checks
// only the first two).
func (s *Store) unsaved(ctx context.Context, id catalog.ID, attempts int) error {
	var (
		state string
		n     int
	)
	switch err := s.primary.QueryRow(ctx, `SELECT state, attempts FROM tasks WHERE id = $1`, [16]byte(id)).Scan(&state, &n); {
	case errors.Is(err, pgx.ErrNoRows):
		return task.ErrNotFound
	case err != nil:
		return err
	}
	return task.Unsaved(task.State(state), n, attempts)
}

// endStates are task.EndStates as SQL text.
func endStates() []string {
	states := make([]string, len(task.EndStates))
	for i, st := range task.EndStates {
		states[i] = string(st)
	}
	return states
}

var _ task.Outbox = (*Store)(nil)

// Published records the tasks ids published at at (NULL for the zero time) on the
// primary, in one statement.
func (s *Store) Published(ctx context.Context, at time.Time, ids ...string) error {
	keys := make([]string, 0, len(ids))
	for _, id := range ids {
		if key, err := catalog.ParseID(id); err == nil { // else it names no task
			keys = append(keys, key.String())
		}
	}
	if _, err := s.primary.Exec(ctx, `UPDATE tasks SET published_at = $1 WHERE id = ANY($2::uuid[])`,
		nullTime(at), keys); err != nil {
		return fmt.Errorf("record %d tasks published: %w", len(ids), err)
	}
	return nil
}

// ClaimRedrive claims the tasks to publish again in one statement on the primary; rows
// that a concurrent claim holds are skipped, and one that it took no longer qualifies
// once re-read under the lock.
func (s *Store) ClaimRedrive(ctx context.Context, kind string, c task.RedriveClaim) ([]string, error) {
	rows, err := s.primary.Query(ctx, `UPDATE tasks SET published_at = $1 WHERE id IN (
			SELECT id FROM tasks WHERE kind = $2
				AND ((state = $3 AND ((published_at IS NULL AND requested_at < $4)
						OR (published_at < $5 AND (started_at IS NULL OR started_at < $5))))
					OR (state = $7 AND started_at < $5 AND (published_at IS NULL OR published_at < $5)))
			ORDER BY gen LIMIT $6 FOR UPDATE SKIP LOCKED)
		RETURNING id::text`,
		storedTime(c.Now), kind, string(task.Pending), storedTime(c.Unpublished), storedTime(c.Lost), c.Limit,
		string(task.Running))
	if err != nil {
		return nil, fmt.Errorf("claim %s tasks to re-drive: %w", kind, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("claim %s tasks to re-drive: %w", kind, err)
	}
	return ids, nil
}
