package tasktest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"boxoffice/task"
)

// Outbox is what an adapter under TestOutbox provides: task records with their outbox.
type Outbox interface {
	task.Records
	task.Outbox
}

// TestOutbox runs the task.Outbox contract against an adapter, with open as in
// TestRecords.
func TestOutbox(t *testing.T, open func(t *testing.T) Outbox) {
	run := func(name string, test func(t *testing.T, s Outbox)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, open(t))
		})
	}
	run("ClaimsUnpublished", testClaimsUnpublished)
	run("ClaimsPublishedOnceLost", testClaimsLost)
	run("ClaimsOnlyUnendedOfKind", testClaimsOnlyPending)
	run("ClaimsRunningOnceStalled", testClaimsRunning)
	run("ConcurrentClaimsDisjoint", testConcurrentClaims)
}

// claim calls ClaimRedrive for kind, failing t on error, and returns the ids sorted.
func claim(t *testing.T, s Outbox, c task.RedriveClaim) []string {
	t.Helper()
	ids, err := s.ClaimRedrive(t.Context(), kind, c)
	if err != nil {
		t.Fatalf("ClaimRedrive(%+v) = %v", c, err)
	}
	slices.Sort(ids)
	return ids
}

func sorted(ids ...string) []string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}

// at is epoch plus d.
func at(d time.Duration) time.Time { return epoch.Add(d) }

// never is a Lost bound that no published task is below.
var never = epoch.Add(-24 * time.Hour)

func testClaimsUnpublished(t *testing.T, s Outbox) {
	old := CreateTask(t, s, kind, "api", at(0))
	young := CreateTask(t, s, kind, "api", at(10*time.Second))
	c := task.RedriveClaim{Now: at(20 * time.Second), Unpublished: at(5 * time.Second), Lost: never, Limit: 10}
	if got := claim(t, s, c); !slices.Equal(got, []string{old.ID}) {
		t.Fatalf("claim of tasks never published before +5s = %v, want only the one requested at 0 (%s)", got, old.ID)
	}
	if got := claim(t, s, c); len(got) != 0 {
		t.Errorf("the same claim again = %v, want none: a claim records its tasks published", got)
	}
	// A claimed task whose publish failed is recorded unpublished, and claimed again.
	if err := s.Published(t.Context(), time.Time{}, old.ID); err != nil {
		t.Fatal(err)
	}
	c.Unpublished = at(15 * time.Second)
	if got := claim(t, s, c); !slices.Equal(got, sorted(old.ID, young.ID)) {
		t.Errorf("claim after the publish failed = %v, want both %v", got, sorted(old.ID, young.ID))
	}
}

func testClaimsLost(t *testing.T, s Outbox) {
	quiet := CreateTask(t, s, kind, "api", at(0))
	retried := CreateTask(t, s, kind, "api", at(0))
	if err := s.Published(t.Context(), at(time.Second), quiet.ID, retried.ID, "not-a-uuid", "7b1e4a52-0c8d-4a61-9e27-55d410a9c37f"); err != nil {
		t.Fatalf("Published() = %v, want unknown ids ignored", err)
	}
	// retried had an attempt at +1m, and waits for its retry.
	retried.Attempts, retried.StartedAt, retried.ErrorCode, retried.Error = 1, at(time.Minute), task.CodeAttemptFailed, "boom"
	if err := s.SaveTask(t.Context(), retried, 0); err != nil {
		t.Fatal(err)
	}
	far := at(time.Hour) // every task is old enough to count as never published
	if got := claim(t, s, task.RedriveClaim{Now: at(2 * time.Minute), Unpublished: far, Lost: at(time.Second), Limit: 10}); len(got) != 0 {
		t.Errorf("claim of tasks published before +1s = %v, want none: both were published at +1s", got)
	}
	if got := claim(t, s, task.RedriveClaim{Now: at(2 * time.Minute), Unpublished: far, Lost: at(30 * time.Second), Limit: 10}); !slices.Equal(got, []string{quiet.ID}) {
		t.Errorf("claim of tasks published and not attempted since +30s = %v, want only %s", got, quiet.ID)
	}
	if got := claim(t, s, task.RedriveClaim{Now: at(3 * time.Hour), Unpublished: far, Lost: at(2 * time.Hour), Limit: 10}); !slices.Equal(got, sorted(quiet.ID, retried.ID)) {
		t.Errorf("claim of tasks quiet since +2h = %v, want both %v", got, sorted(quiet.ID, retried.ID))
	}
}

func testClaimsOnlyPending(t *testing.T, s Outbox) {
	recs := make([]task.Record, 6)
	for i := range recs {
		recs[i] = CreateTask(t, s, kind, "api", at(0))
	}
	CreateTask(t, s, otherKind, "api", at(0))
	recs[0].State, recs[0].StartedAt = task.Running, at(50*time.Minute) // running, recently
	recs[1].State, recs[1].FinishedAt = task.Succeeded, at(time.Second)
	recs[2].State, recs[2].FinishedAt = task.Failed, at(time.Second)
	for _, r := range recs[:3] {
		if err := s.SaveTask(t.Context(), r, 0); err != nil {
			t.Fatal(err)
		}
	}
	c := task.RedriveClaim{Now: at(time.Hour), Unpublished: at(time.Minute), Lost: at(40 * time.Minute), Limit: 2}
	if got := claim(t, s, c); !slices.Equal(got, sorted(recs[3].ID, recs[4].ID)) {
		t.Errorf("claim of 2 = %v, want the two pending ones of the lowest generations %v", got, sorted(recs[3].ID, recs[4].ID))
	}
	if got := claim(t, s, c); !slices.Equal(got, []string{recs[5].ID}) {
		t.Errorf("next claim = %v, want the last pending one %s (not running since after Lost, ended, or of another kind)", got, recs[5].ID)
	}
}

// testClaimsRunning leaves tasks running, as workers that died in their runs, and
// claims each once its attempt started before Lost and it was not published since.
func testClaimsRunning(t *testing.T, s Outbox) {
	stalled := CreateTask(t, s, kind, "api", at(0))
	unrecorded := CreateTask(t, s, kind, "api", at(0)) // its publish was never recorded
	recent := CreateTask(t, s, kind, "api", at(0))
	if err := s.Published(t.Context(), at(time.Second), stalled.ID, recent.ID); err != nil {
		t.Fatal(err)
	}
	for r, started := range map[*task.Record]time.Duration{&stalled: time.Minute, &unrecorded: time.Minute, &recent: time.Hour} {
		r.State, r.Attempts, r.StartedAt = task.Running, 1, at(started)
		if err := s.SaveTask(t.Context(), *r, 0); err != nil {
			t.Fatal(err)
		}
	}
	far := at(-time.Hour) // no task counts as never published by its request time
	if got := claim(t, s, task.RedriveClaim{Now: at(50 * time.Minute), Unpublished: far, Lost: at(30 * time.Second), Limit: 10}); len(got) != 0 {
		t.Errorf("claim of tasks running since before +30s = %v, want none: all started later", got)
	}
	c := task.RedriveClaim{Now: at(50 * time.Minute), Unpublished: far, Lost: at(40 * time.Minute), Limit: 10}
	if got := claim(t, s, c); !slices.Equal(got, sorted(stalled.ID, unrecorded.ID)) {
		t.Errorf("claim of tasks running since before +40m = %v, want the two started at +1m %v", got, sorted(stalled.ID, unrecorded.ID))
	}
	if got := claim(t, s, c); len(got) != 0 {
		t.Errorf("the same claim again = %v, want none: a claim records its tasks published", got)
	}
	// Still running LostAfter after their re-drive (a long run, or one whose re-driven
	// message was lost too): claimed again, with the task that started at +1h.
	if got := claim(t, s, task.RedriveClaim{Now: at(3 * time.Hour), Unpublished: far, Lost: at(2 * time.Hour), Limit: 10}); !slices.Equal(got, sorted(stalled.ID, unrecorded.ID, recent.ID)) {
		t.Errorf("claim of tasks quiet since +2h = %v, want all three %v", got, sorted(stalled.ID, unrecorded.ID, recent.ID))
	}
}

func testConcurrentClaims(t *testing.T, s Outbox) {
	const n = 40
	want := make([]string, n)
	for i := range want {
		want[i] = CreateTask(t, s, kind, "api", at(0)).ID
	}
	slices.Sort(want)
	var (
		mu  sync.Mutex
		got []string
		wg  sync.WaitGroup
	)
	c := task.RedriveClaim{Now: at(time.Hour), Unpublished: at(time.Minute), Lost: never, Limit: 3}
	for range 6 {
		wg.Go(func() {
			for {
				ids, err := s.ClaimRedrive(t.Context(), kind, c)
				if err != nil {
					t.Errorf("concurrent ClaimRedrive: %v", err)
					return
				}
				if len(ids) == 0 {
					return
				}
				mu.Lock()
				got = append(got, ids...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("six concurrent claimers took %d tasks (%d distinct), want each of %d once", len(got), len(slices.Compact(slices.Clone(got))), n)
	}
}
