package pricing

import (
	"context"
	"encoding/json"
	"time"

	"go.opentelemetry.io/otel/trace"

	"boxoffice/task"
)

// TopicRecalculate is the broker topic of recalculation tasks. A message's body is a
// RecalculateMessage.
const TopicRecalculate = "pricing.recalculate"

// RecalculateMessage asks a worker to run the recalculation task TaskID.
type RecalculateMessage struct {
	TaskID string `json:"task_id"`
}

// Kind is the task kind of a recalculation.
const Kind = "recalculate"

// Enqueue records a recalculation task triggered by trigger, publishes it with the trace
// context of ctx in a producer span of tp (see task.Publish), and records it published. When the publish fails
// the task is recorded as failed, with the reason, and the error returned. A process
// that dies between the record and the publish leaves the task pending and unpublished:
// a task.Redriver publishes it again.
func Enqueue(ctx context.Context, s task.Records, pub task.Publisher, tp trace.TracerProvider, trigger string, now time.Time) (task.Record, error) {
	rec, err := s.CreateTask(ctx, Kind, trigger, now)
	if err != nil {
		return task.Record{}, err
	}
	body, _ := json.Marshal(RecalculateMessage{TaskID: rec.ID})
	if err := task.Publish(ctx, pub, tp, TopicRecalculate, task.Message{ID: rec.ID, Body: body}); err != nil {
		rec.State, rec.ErrorCode = task.Failed, task.CodeNotEnqueued
		rec.Error = "not enqueued: " + err.Error()
		rec.FinishedAt = now
		_ = s.SaveTask(context.WithoutCancel(ctx), rec, rec.Attempts)
		return rec, err
	}
	// Unrecorded, the publish looks lost: a task.Redriver publishes the task again, which
	// is harmless (see Requeue), so the enqueue stands.
	_ = s.Published(context.WithoutCancel(ctx), now, rec.ID)
	return rec, nil
}

// Requeue publishes the recalculation tasks ids again, as Enqueue published them first,
// for tasks whose messages were lost with the queue that held them: a store restored
// from a backup starts with a new, empty queue, and the tasks it had not finished would
// otherwise stay pending for ever. A task that has ended by the time its message is
// handled is acknowledged without running (see Recalculator.Handle), so requeueing is
// safe even for a task whose message survived.
func Requeue(ctx context.Context, pub task.Publisher, tp trace.TracerProvider, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	msgs := make([]task.Message, len(ids))
	for i, id := range ids {
		body, err := json.Marshal(RecalculateMessage{TaskID: id})
		if err != nil {
			return err
		}
		msgs[i] = task.Message{ID: id, Body: body}
	}
	return task.Publish(ctx, pub, tp, TopicRecalculate, msgs...)
}
