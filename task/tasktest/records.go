package tasktest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"boxoffice/task"
)

// TestRecords runs the task.Records contract against an adapter. Every sub-test calls
// open for a store of its own, fresh, empty and migrated, which open closes through
// t.Cleanup; sub-tests run in parallel. Reads follow writes at once, so Task must see
// the store's own writes (an adapter with a replica reads the primary when the replica
// does not know a task yet).
//
// Besides what task.Records documents, the suite holds adapters to these decisions:
//
//   - Task ids are canonical lowercase UUIDs. Task of an id that is not a UUID is
//     task.ErrNotFound, like that of an unknown one.
//   - Generations count per kind, from 1.
//   - Times come back in UTC, exact to the microsecond at least; zero times stay zero.
//     Result comes back as equal JSON (not necessarily the same bytes); a nil Result
//     comes back empty.
func TestRecords(t *testing.T, open func(t *testing.T) task.Records) {
	run := func(name string, test func(t *testing.T, s task.Records)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, open(t))
		})
	}
	run("CreateTask", testCreateTask)
	run("ConcurrentCreateTask", testConcurrentCreateTask)
	run("TaskNotFound", testTaskNotFound)
	run("SaveTaskRoundTrip", testSaveTask)
	run("SaveTaskUnknown", testSaveTaskUnknown)
	run("SaveTaskKeepsEnded", testSaveTaskKeepsEnded)
	run("ConcurrentSavesEndOnce", testConcurrentSavesEndOnce)
	run("StartTask", testStartTask)
	run("StartTaskKeepsEnded", testStartTaskKeepsEnded)
	run("SaveTaskSuperseded", testSaveTaskSuperseded)
	run("ConcurrentStartsNumberRuns", testConcurrentStartsNumberRuns)
	run("SaveTaskAnyRun", testSaveTaskAnyRun)
	run("CanceledCreateTask", testCanceledCreateTask)
}

// The kinds the suite creates tasks of, and its times.
const (
	kind      = "recalculate"
	otherKind = "other"
)

var (
	cest  = time.FixedZone("CEST", 2*60*60)
	epoch = time.Date(2021, time.June, 30, 21, 0, 0, 0, time.UTC)
)

func testCreateTask(t *testing.T, s task.Records) {
	now := time.Date(2021, 6, 30, 23, 15, 7, 123456000, cest)
	ids := map[string]bool{}
	for i := range 3 {
		rec := CreateTask(t, s, kind, "api", now.Add(time.Duration(i)*time.Microsecond))
		want := task.Record{ID: rec.ID, Kind: kind, Trigger: "api", State: task.Pending, Gen: int64(i + 1),
			RequestedAt: now.Add(time.Duration(i) * time.Microsecond)}
		WantRecord(t, "CreateTask", want, rec)
		if !canonicalUUID(rec.ID) {
			t.Errorf("CreateTask().ID = %q, want a canonical lowercase UUID", rec.ID)
		}
		if ids[rec.ID] {
			t.Errorf("CreateTask().ID = %q, an id it returned before", rec.ID)
		}
		ids[rec.ID] = true
		wantTask(t, s, want)
	}
	// Generations count per kind.
	other := CreateTask(t, s, otherKind, "cron", now)
	if other.Gen != 1 || ids[other.ID] {
		t.Errorf("CreateTask(other kind) = gen %d id %q, want gen 1 and a new id", other.Gen, other.ID)
	}
	if rec := CreateTask(t, s, kind, "market-event", now); rec.Gen != 4 {
		t.Errorf("CreateTask(%q) after three and one of another kind = gen %d, want 4", kind, rec.Gen)
	}
}

func testConcurrentCreateTask(t *testing.T, s task.Records) {
	const n = 20
	recs := make([]task.Record, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			recs[i], errs[i] = s.CreateTask(t.Context(), kind, "api", epoch)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent CreateTask: %v", err)
	}
	gens := make([]int64, n)
	ids := map[string]bool{}
	for i, r := range recs {
		gens[i] = r.Gen
		ids[r.ID] = true
	}
	slices.Sort(gens)
	for i, g := range gens {
		if g != int64(i+1) {
			t.Errorf("concurrent CreateTask gave generations %v, want 1 to %d each once", gens, n)
			break
		}
	}
	if len(ids) != n {
		t.Errorf("concurrent CreateTask gave %d distinct ids, want %d", len(ids), n)
	}
}

func testTaskNotFound(t *testing.T, s task.Records) {
	CreateTask(t, s, kind, "api", epoch)
	for _, id := range []string{"7b1e4a52-0c8d-4a61-9e27-55d410a9c37f", "not-a-uuid", ""} {
		if got, err := s.Task(t.Context(), id); !errors.Is(err, task.ErrNotFound) {
			t.Errorf("Task(%q) = %+v, %v; want task.ErrNotFound", id, got, err)
		}
	}
}

func testSaveTask(t *testing.T, s task.Records) {
	requested := time.Date(2021, 6, 30, 21, 0, 0, 1000, time.UTC)
	rec := CreateTask(t, s, kind, "market-event", requested)
	failed := CreateTask(t, s, kind, "api", requested)
	untouched := CreateTask(t, s, kind, "api", requested)

	steps := []task.Record{
		{ID: rec.ID, State: task.Running, Attempts: 1, StartedAt: time.Date(2021, 7, 1, 0, 0, 1, 999999000, cest),
			Result: json.RawMessage(`{"products": 1}`)},
		{ID: rec.ID, State: task.Pending, Attempts: 1, StartedAt: time.Date(2021, 7, 1, 0, 0, 1, 999999000, cest),
			ErrorCode: task.CodeAttemptFailed, Error: `recalculate: product 1: "boom" — ñ`},
		{ID: rec.ID, State: task.Succeeded, Attempts: 2, StartedAt: time.Date(2021, 6, 30, 22, 0, 2, 0, time.UTC),
			FinishedAt: time.Date(2021, 6, 30, 22, 0, 3, 500000, time.UTC),
			Result:     json.RawMessage(`{"products": 12, "batches":1,"version":3, "note":"ñ \"q\""}`)},
		{ID: failed.ID, State: task.Failed, Attempts: 6, StartedAt: time.Date(2021, 6, 30, 22, 0, 2, 0, time.UTC),
			FinishedAt: time.Date(2021, 6, 30, 22, 0, 3, 0, time.UTC), ErrorCode: task.CodeRetriesExhausted, Error: "out of attempts"},
	}
	attempts := map[string]int{} // each task's stored attempts: the fence of its next save
	for i, step := range steps {
		// The identity CreateTask fixed stays, whatever the caller sends.
		step.Kind, step.Trigger, step.Gen, step.RequestedAt = "changed", "changed", 99, requested.Add(time.Hour)
		if err := s.SaveTask(t.Context(), step, attempts[step.ID]); err != nil {
			t.Fatalf("SaveTask(step %d): %v", i, err)
		}
		attempts[step.ID] = step.Attempts
		want := step
		created := rec
		if step.ID == failed.ID {
			created = failed
		}
		want.Kind, want.Trigger, want.Gen, want.RequestedAt = created.Kind, created.Trigger, created.Gen, created.RequestedAt
		wantTask(t, s, want)
		if i == 1 {
			if got := getTask(t, s, rec.ID); len(got.Result) != 0 {
				t.Errorf("Task() after saving a nil Result over one = Result %s, want empty", got.Result)
			}
		}
	}
	wantTask(t, s, untouched)
}

// testSaveTaskKeepsEnded saves over a task in each end state: the record stays as it
// ended, and SaveTask says why.
func testSaveTaskKeepsEnded(t *testing.T, s task.Records) {
	finished := epoch.Add(time.Minute)
	for _, end := range task.EndStates {
		rec := CreateTask(t, s, kind, "api", epoch)
		rec.State, rec.Attempts, rec.StartedAt, rec.FinishedAt = end, 1, epoch, finished
		rec.Result = json.RawMessage(`{"version":7}`)
		if err := s.SaveTask(t.Context(), rec, 0); err != nil {
			t.Fatalf("SaveTask(%s): %v", end, err)
		}
		for _, over := range []task.Record{
			{ID: rec.ID, State: task.Running, Attempts: 2, StartedAt: finished},
			{ID: rec.ID, State: task.Pending, Attempts: 1, ErrorCode: task.CodeAttemptFailed, Error: "late"},
			{ID: rec.ID, State: task.Skipped, FinishedAt: finished.Add(time.Second), Result: json.RawMessage(`{"covered_by_version":7}`)},
			{ID: rec.ID, State: task.Failed, Attempts: 6, FinishedAt: finished.Add(time.Second), ErrorCode: task.CodePermanent},
		} {
			if err := s.SaveTask(t.Context(), over, rec.Attempts); !errors.Is(err, task.ErrEnded) {
				t.Errorf("SaveTask(%s over %s) = %v, want task.ErrEnded", over.State, end, err)
			}
		}
		wantTask(t, s, rec)
	}
}

// testConcurrentSavesEndOnce ends one task from many goroutines at once, each with its
// own end state: one save wins, every other gets task.ErrEnded, and the record is the
// winner's.
func testConcurrentSavesEndOnce(t *testing.T, s task.Records) {
	rec := CreateTask(t, s, kind, "api", epoch)
	const n = 12
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := rec
			r.State, r.Attempts, r.FinishedAt = task.EndStates[i%len(task.EndStates)], i, epoch.Add(time.Minute)
			errs[i] = s.SaveTask(t.Context(), r, 0)
		})
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Errorf("saves %d and %d both ended the task", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, task.ErrEnded):
			t.Errorf("save %d: %v, want nil or task.ErrEnded", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no save ended the task")
	}
	got := getTask(t, s, rec.ID)
	if got.Attempts != won || got.State != task.EndStates[won%len(task.EndStates)] {
		t.Errorf("Task() = %s after %d attempts, want the winning save's %s after %d",
			got.State, got.Attempts, task.EndStates[won%len(task.EndStates)], won)
	}
}

// testStartTask starts runs of a task: each is running from its start, with no finish
// or error, numbered after the last run or by the broker's delivery count, whichever is
// greater; the result and the identity stay.
func testStartTask(t *testing.T, s task.Records) {
	rec := CreateTask(t, s, kind, "api", epoch)
	for i, tt := range []struct {
		attempt, want int
	}{
		{attempt: 1, want: 1},
		{attempt: 1, want: 2}, // a re-driven message's deliveries count from 1 again
		{attempt: 5, want: 5},
	} {
		at := epoch.Add(time.Duration(i+1) * time.Minute)
		got, err := s.StartTask(t.Context(), rec.ID, tt.attempt, at)
		if err != nil || got != tt.want {
			t.Fatalf("StartTask(attempt %d) = %d, %v; want %d", tt.attempt, got, err, tt.want)
		}
		want := rec
		want.State, want.Attempts, want.StartedAt = task.Running, tt.want, at
		wantTask(t, s, want)
		// The run fails, to be retried: a record to start over.
		failed := want
		failed.State, failed.ErrorCode, failed.Error = task.Pending, task.CodeAttemptFailed, "boom"
		failed.Result = json.RawMessage(`{"products":1}`)
		if err := s.SaveTask(t.Context(), failed, tt.want); err != nil {
			t.Fatalf("SaveTask(failed attempt %d): %v", tt.want, err)
		}
		rec = failed
		rec.ErrorCode, rec.Error = "", ""
	}
	if _, err := s.StartTask(t.Context(), "7b1e4a52-0c8d-4a61-9e27-55d410a9c37f", 1, epoch); !errors.Is(err, task.ErrNotFound) {
		t.Errorf("StartTask(unknown task) = %v, want task.ErrNotFound", err)
	}
}

// testStartTaskKeepsEnded starts a run of a task in each end state: the record stays
// as it ended, and StartTask says why.
func testStartTaskKeepsEnded(t *testing.T, s task.Records) {
	for _, end := range task.EndStates {
		rec := CreateTask(t, s, kind, "api", epoch)
		rec.State, rec.Attempts, rec.StartedAt, rec.FinishedAt = end, 1, epoch, epoch.Add(time.Minute)
		if err := s.SaveTask(t.Context(), rec, 0); err != nil {
			t.Fatalf("SaveTask(%s): %v", end, err)
		}
		if n, err := s.StartTask(t.Context(), rec.ID, 2, epoch.Add(time.Hour)); !errors.Is(err, task.ErrEnded) {
			t.Errorf("StartTask(%s) = %d, %v; want task.ErrEnded", end, n, err)
		}
		wantTask(t, s, rec)
	}
}

// testSaveTaskSuperseded has run A start, then run B take the task over (A lost its
// lock): every save of A, running, retried or ended, gets task.ErrSuperseded and
// leaves B's record; B's own saves go through.
func testSaveTaskSuperseded(t *testing.T, s task.Records) {
	rec := CreateTask(t, s, kind, "api", epoch)
	a, err := s.StartTask(t.Context(), rec.ID, 1, epoch)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.StartTask(t.Context(), rec.ID, 1, epoch.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if b <= a {
		t.Fatalf("StartTask numbered the run that took over %d, after %d; want a greater number", b, a)
	}
	want := rec
	want.State, want.Attempts, want.StartedAt = task.Running, b, epoch.Add(time.Minute)
	for _, over := range []task.Record{
		{ID: rec.ID, State: task.Running, Attempts: a, StartedAt: epoch},
		{ID: rec.ID, State: task.Pending, Attempts: a, StartedAt: epoch, ErrorCode: task.CodeAttemptFailed, Error: "lock lost"},
		{ID: rec.ID, State: task.Failed, Attempts: a, StartedAt: epoch, FinishedAt: epoch.Add(2 * time.Minute), ErrorCode: task.CodeRetriesExhausted},
		{ID: rec.ID, State: task.Succeeded, Attempts: a, StartedAt: epoch, FinishedAt: epoch.Add(2 * time.Minute), Result: json.RawMessage(`{"version":1}`)},
	} {
		if err := s.SaveTask(t.Context(), over, a); !errors.Is(err, task.ErrSuperseded) {
			t.Errorf("SaveTask(%s by the superseded run) = %v, want task.ErrSuperseded", over.State, err)
		}
		wantTask(t, s, want)
	}
	want.State, want.FinishedAt, want.Result = task.Succeeded, epoch.Add(3*time.Minute), json.RawMessage(`{"version":2}`)
	if err := s.SaveTask(t.Context(), want, b); err != nil {
		t.Fatalf("SaveTask(succeeded by the run that took over): %v", err)
	}
	wantTask(t, s, want)
	// Ended, the task answers task.ErrEnded to a superseded save too.
	if err := s.SaveTask(t.Context(), task.Record{ID: rec.ID, State: task.Failed, Attempts: a}, a); !errors.Is(err, task.ErrEnded) {
		t.Errorf("SaveTask(failed by the superseded run over succeeded) = %v, want task.ErrEnded", err)
	}
}

// testConcurrentStartsNumberRuns starts runs of one task from many goroutines at once,
// each from the same stale copy: each run gets its own number, and only the last
// started may save.
func testConcurrentStartsNumberRuns(t *testing.T, s task.Records) {
	rec := CreateTask(t, s, kind, "api", epoch)
	const n = 12
	nums := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { nums[i], errs[i] = s.StartTask(t.Context(), rec.ID, 1, epoch) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent StartTask: %v", err)
	}
	slices.Sort(nums)
	for i, got := range nums {
		if got != i+1 {
			t.Fatalf("concurrent StartTask numbered the runs %v, want 1 to %d each once", nums, n)
		}
	}
	for _, a := range nums[:n-1] {
		if err := s.SaveTask(t.Context(), task.Record{ID: rec.ID, State: task.Succeeded, Attempts: a}, a); !errors.Is(err, task.ErrSuperseded) {
			t.Errorf("SaveTask(by run %d of %d) = %v, want task.ErrSuperseded", a, n, err)
		}
	}
	if err := s.SaveTask(t.Context(), task.Record{ID: rec.ID, State: task.Succeeded, Attempts: n}, n); err != nil {
		t.Errorf("SaveTask(by the last run): %v", err)
	}
}

// testSaveTaskAnyRun ends a task in a run with task.AnyRun, as a completed run that
// covers it does, whatever run the task is in; an ended task still keeps its record.
func testSaveTaskAnyRun(t *testing.T, s task.Records) {
	rec := CreateTask(t, s, kind, "api", epoch)
	if _, err := s.StartTask(t.Context(), rec.ID, 3, epoch); err != nil {
		t.Fatal(err)
	}
	rec.State, rec.FinishedAt, rec.Result = task.Skipped, epoch.Add(time.Minute), json.RawMessage(`{"covered_by_version":7}`)
	if err := s.SaveTask(t.Context(), rec, task.AnyRun); err != nil {
		t.Fatalf("SaveTask(skipped, any run) over run 3: %v", err)
	}
	wantTask(t, s, rec)
	over := rec
	over.State = task.Succeeded
	if err := s.SaveTask(t.Context(), over, task.AnyRun); !errors.Is(err, task.ErrEnded) {
		t.Errorf("SaveTask(succeeded, any run) over skipped = %v, want task.ErrEnded", err)
	}
	wantTask(t, s, rec)
}

func testSaveTaskUnknown(t *testing.T, s task.Records) {
	r := task.Record{ID: "7b1e4a52-0c8d-4a61-9e27-55d410a9c37f", Kind: kind, State: task.Running, Gen: 1}
	if err := s.SaveTask(t.Context(), r, 0); !errors.Is(err, task.ErrNotFound) {
		t.Errorf("SaveTask(unknown task) = %v, want task.ErrNotFound", err)
	}
	if got, err := s.Task(t.Context(), r.ID); !errors.Is(err, task.ErrNotFound) {
		t.Errorf("Task() after SaveTask(unknown task) = %+v, %v; want task.ErrNotFound", got, err)
	}
}

func testCanceledCreateTask(t *testing.T, s task.Records) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if rec, err := s.CreateTask(ctx, kind, "api", epoch); err == nil {
		t.Errorf("CreateTask(canceled context) = %+v, nil; want an error", rec)
	}
	if rec := CreateTask(t, s, kind, "api", epoch); rec.Gen != 1 {
		t.Errorf("CreateTask() after a canceled one = gen %d, want 1", rec.Gen)
	}
}

// CreateTask creates a task, failing t on error.
func CreateTask(t testing.TB, s task.Records, kind, trigger string, now time.Time) task.Record {
	t.Helper()
	rec, err := s.CreateTask(t.Context(), kind, trigger, now)
	if err != nil {
		t.Fatalf("CreateTask(%q, %q): %v", kind, trigger, err)
	}
	return rec
}

func getTask(t *testing.T, s task.Records, id string) task.Record {
	t.Helper()
	rec, err := s.Task(t.Context(), id)
	if err != nil {
		t.Fatalf("Task(%q): %v", id, err)
	}
	return rec
}

func wantTask(t *testing.T, s task.Records, want task.Record) {
	t.Helper()
	WantRecord(t, "Task", want, getTask(t, s, want.ID))
}

// WantRecord compares task records as the suite does: times by instant and in UTC,
// Result as JSON. call names what returned got, for the message.
func WantRecord(t testing.TB, call string, want, got task.Record) {
	t.Helper()
	for name, tm := range map[string]time.Time{"RequestedAt": got.RequestedAt, "StartedAt": got.StartedAt, "FinishedAt": got.FinishedAt} {
		if !tm.IsZero() && tm.Location() != time.UTC {
			t.Errorf("%s(%s).%s in %s, want UTC", call, got.ID, name, tm.Location())
		}
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(sameJSON)); diff != "" {
		t.Errorf("%s(%s) mismatch (-want +got):\n%s", call, want.ID, diff)
	}
}

// sameJSON reports whether a and b are equal JSON values, or both empty.
func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return bytes.Equal(a, b)
	}
	return cmp.Equal(va, vb)
}

// canonicalUUID reports whether s is a UUID in canonical lowercase form:
// 8-4-4-4-12 lowercase hex digits.
func canonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range []byte(s) {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}
