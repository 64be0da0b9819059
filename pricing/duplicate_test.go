package pricing_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"boxoffice/pricing"
	"boxoffice/task"
	"boxoffice/task/tasktest"
	"boxoffice/testenv"
)

// pausedRecords holds the first read of a task until resume is closed, after telling
// read: a delivery that read the task, then was descheduled (or waited for the lock)
// while another delivery of the same task ran it.
type pausedRecords struct {
	task.Records
	read, resume chan struct{}
	reads        int
}

func (p *pausedRecords) Task(ctx context.Context, id string) (task.Record, error) {
	rec, err := p.Records.Task(ctx, id)
	if p.reads++; p.reads == 1 {
		close(p.read)
		<-p.resume
	}
	return rec, err
}

// readable waits until the rig's store reads the task id without an error: a replica
// may still be replaying the schema's migrations, and these tests hand messages to
// Handle themselves, with no broker to retry them.
func (r *rig) readable(t *testing.T, id string) {
	t.Helper()
	testenv.Poll(t, "the store to read task "+id, func() bool {
		_, err := r.store.Task(t.Context(), id)
		return err == nil
	})
}

func recalculateMessage(t *testing.T, id string, attempt int) task.Message {
	body, err := json.Marshal(pricing.RecalculateMessage{TaskID: id})
	if err != nil {
		t.Fatal(err)
	}
	return task.Message{ID: id, Body: body, Attempt: attempt}
}

// TestDuplicateOfASucceededTaskChangesNothing delivers a recalculation twice (a
// re-driven message and the original): the duplicate reads the task while it is
// pending, then the other delivery runs it to success; the duplicate, resumed, finds a
// completed run covering the task and must leave its record as the run left it, not
// relabel it skipped with a result of its own.
func TestDuplicateOfASucceededTaskChangesNothing(t *testing.T) {
	eachRig(t, func(t *testing.T, r *rig) {
		seed(t, r.store, 3)
		rec := tasktest.CreateTask(t, r.store, pricing.Kind, "api", time.Now())
		r.readable(t, rec.ID)
		tasks := &pausedRecords{Records: r.store, read: make(chan struct{}), resume: make(chan struct{})}
		dup := pricing.NewRecalculator(r.store, tasks, r.cache, r.locker, r.recalcConfig(), r.log)
		dupDone := make(chan error, 1)
		go func() { dupDone <- dup.Handle(t.Context(), recalculateMessage(t, rec.ID, 1)) }()
		<-tasks.read

		if err := r.recalculator(r.store).Handle(t.Context(), recalculateMessage(t, rec.ID, 1)); err != nil {
			t.Fatalf("the first delivery: %v", err)
		}
		want, err := r.primary.Task(t.Context(), rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want.State != task.Succeeded || want.Attempts != 1 {
			t.Fatalf("the first delivery left the task %s after %d attempts, want succeeded after 1", want.State, want.Attempts)
		}
		close(tasks.resume)
		if err := <-dupDone; err != nil {
			t.Errorf("the duplicate delivery: %v, want it acknowledged", err)
		}
		got, err := r.primary.Task(t.Context(), rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		tasktest.WantRecord(t, "Task() after the duplicate", want, got)
	})
}
