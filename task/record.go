package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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

// EndStates are the end states, for stores that select tasks by state.
var EndStates = []State{Succeeded, Failed, Skipped}

// Terminal reports whether s is an end state.
func (s State) Terminal() bool { return slices.Contains(EndStates, s) }

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
	ErrorCode   string          // why the last attempt failed, for clients: a Code constant; "" when none failed
	Error       string          // the last failure's own text, for operators: never served, as it may name hosts or queries
}

// The stable codes of a task's failures. Clients see the code and its message
// (PublicError), never the internal error.
const (
	CodeNotEnqueued      = "not_enqueued"      // the broker did not take the task: it will never run
	CodeAttemptFailed    = "attempt_failed"    // the last attempt failed and will be retried
	CodeInterrupted      = "interrupted"       // the worker stopped during the run, which will run again
	CodeRetriesExhausted = "retries_exhausted" // every attempt failed: the task has failed
	CodePermanent        = "permanent_error"   // an error that no retry can fix: the task has failed
	CodeUnknown          = "error"             // a failure recorded without a code
)

// codeMessages are the public messages of the codes: what happened and what comes
// next, in words that name no host, query or file.
var codeMessages = map[string]string{
	CodeNotEnqueued:      "the task could not be handed to a worker; request it again",
	CodeAttemptFailed:    "the last attempt failed on a temporary error; the task will be retried",
	CodeInterrupted:      "the worker stopped during the run; the task will run again",
	CodeRetriesExhausted: "every attempt failed on a temporary error (a store or cache unavailable); request the task again",
	CodePermanent:        "the run failed on an error that retrying cannot fix; operators can find it in the logs",
	CodeUnknown:          "the task failed; operators can find why in the logs",
}

// PublicError returns the code and the message that clients see of the task's last
// failure, both empty when none failed. A failure recorded without a known code is
// CodeUnknown.
func (r Record) PublicError() (code, message string) {
	if r.ErrorCode == "" && r.Error == "" {
		return "", ""
	}
	msg, ok := codeMessages[r.ErrorCode]
	if !ok {
		return CodeUnknown, codeMessages[CodeUnknown]
	}
	return r.ErrorCode, msg
}

// ErrNotFound is returned for a task id that no store knows.
var ErrNotFound = errors.New("task not found")

// ErrEnded is returned by Records.SaveTask for a task that has already ended: its
// record is final. A handler that gets it was a duplicate delivery of a task that
// another delivery ended meanwhile, and has nothing left to do.
var ErrEnded = errors.New("task has ended")

// ErrSuperseded is returned by Records.SaveTask for a task whose Attempts is no longer
// the one the caller wrote or read: another run of the task started since (a run that
// lost its lock, and the run that took it over). The record is that run's, and the
// caller has nothing left to write.
var ErrSuperseded = errors.New("task superseded by a later run")

// AnyRun is the attempts argument of a Records.SaveTask that ends a task whatever run
// it is in: a task that a completed run covers.
const AnyRun = -1

// Unsaved tells why a store's conditional save of a task (at attempts, or AnyRun) wrote
// nothing, from the task's state and attempts read after it: ErrEnded, ErrSuperseded,
// or a change that came and went, which a retry decides. Stores read; this decides.
func Unsaved(state State, n, attempts int) error {
	switch {
	case state.Terminal():
		return fmt.Errorf("%s: %w", state, ErrEnded)
	case attempts >= 0 && n != attempts:
		return fmt.Errorf("attempt %d, not %d: %w", n, attempts, ErrSuperseded)
	}
	return errors.New("changed concurrently") // and changed back: a retry decides
}

// Records keeps task records: the pricing recalculation's enqueue, its handler and the
// API's GET /api/v1/tasks/{id} use it. Implementations: sqlite.Store and
// postgres.Store; task/tasktest.TestRecords is its contract.
type Records interface {
	// CreateTask records a new pending task of kind, triggered by trigger at now, with
	// a random UUID and the next generation of kind: concurrent calls take distinct
	// generations, in commit order and without gaps, and a call that fails uses none.
	CreateTask(ctx context.Context, kind, trigger string, now time.Time) (Record, error)
	// Task returns a task, or an error wrapping ErrNotFound (also for an id that is
	// not a UUID). An adapter with a replica reads the primary when the replica does
	// not know the task yet.
	Task(ctx context.Context, id string) (Record, error)
	// StartTask records that a run of the task id starts at at, and returns its attempt
	// number: the task becomes Running, its Attempts the greater of attempt (the
	// broker's delivery count) and its Attempts + 1, its StartedAt at, with no finish
	// time, error code or error. It is one statement, so that no two runs of a task
	// ever share an attempt number, whatever copy of the record they read: that number
	// fences their later saves (SaveTask). A task that has ended is an error wrapping
	// ErrEnded, an unknown one ErrNotFound.
	StartTask(ctx context.Context, id string, attempt int, at time.Time) (attempts int, err error)
	// SaveTask writes a task's State, Attempts, StartedAt, FinishedAt, Result, ErrorCode
	// and Error; Kind, Trigger, Gen and RequestedAt stay as CreateTask wrote them. It
	// writes only a task that has not ended and whose Attempts is still attempts (the
	// caller's run's number, or the one it read; any, for AnyRun), in one statement: a task in an end
	// state keeps its record, and SaveTask returns an error wrapping ErrEnded, so that a
	// duplicate delivery working from a stale copy never relabels a task that ended; a
	// task that another run started since keeps that run's record, and SaveTask
	// returns an error wrapping ErrSuperseded, so that a run that lost its lock never
	// overwrites the run that took over. An unknown task is an error wrapping
	// ErrNotFound.
	SaveTask(ctx context.Context, r Record, attempts int) error
	// Published records that the messages of the tasks ids were confirmed by the broker
	// at at; the zero at records that they were not (a re-drive's publish failed), so
	// that the next Outbox.ClaimRedrive takes them again. Unknown ids are ignored. A
	// task recorded and never marked published is published again by a Redriver.
	Published(ctx context.Context, at time.Time, ids ...string) error
}
