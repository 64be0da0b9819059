package pricing

import (
	"context"
	"encoding/json"

	"boxoffice/task"
)

// Requeue publishes the recalculation tasks ids again, as Enqueue published them first,
// for tasks whose messages were lost with the queue that held them: a store restored
// from a backup starts with a new, empty queue, and the tasks it had not finished would
// otherwise stay pending for ever. A task that has ended by the time its message is
// handled is acknowledged without running (see Recalculator.Handle), so requeueing is
// safe even for a task whose message survived.
func Requeue(ctx context.Context, pub task.Publisher, ids ...string) error {
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
	return task.Publish(ctx, pub, TopicRecalculate, msgs...)
}
