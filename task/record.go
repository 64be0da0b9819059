package task

import (
	"encoding/json"
	"errors"
	"time"
)

// State is where a recorded task is in its life.
type State string

// A task is pending until a worker starts it, running while one works on it, and ends
// succeeded, failed (out of attempts, or a permanent error) or skipped (another run
// covered what it asked for). A retried task is pending again between attempts.
const (
	Pending   State = "pending"
	Running   State = "running"
	Succeeded State = "succeeded"
	Failed    State = "failed"
	Skipped   State = "skipped"
)

// Terminal reports whether s is an end state.
func (s State) Terminal() bool { return s == Succeeded || s == Failed || s == Skipped }

// Record is what the store keeps of a task that a client can ask about: GET
// /api/v1/tasks/{id} answers with it.
type Record struct {
	ID          string          // a random UUID, the task_id clients see
	Kind        string          // what it does: "recalculate"
	Trigger     string          // who asked: "api", "market-event", ...
	State       State           //
	Gen         int64           // the trigger's place in the order of requests of its kind
	Attempts    int             // runs started, retries included
	RequestedAt time.Time       //
	StartedAt   time.Time       // of the last attempt; zero before the first
	FinishedAt  time.Time       // zero until the task ends
	Result      json.RawMessage // the run's own account, a JSON object; nil until it ends
	Error       string          // the last attempt's error, if it failed
}

// ErrNotFound is returned for a task id that no store knows.
var ErrNotFound = errors.New("task not found")
