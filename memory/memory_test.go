package memory_test

import (
	"context"
	"log/slog"
	"testing"

	"boxoffice/memory"
	"boxoffice/task"
	"boxoffice/task/tasktest"
)

type broker struct{ *memory.Broker }

func (b broker) DeadLetters(_ context.Context, topic string) ([]task.Message, error) {
	return b.Broker.DeadLetters(topic), nil
}

func TestBroker(t *testing.T) {
	tasktest.TestBroker(t, func(t *testing.T, retry task.RetryPolicy) tasktest.Broker {
		return broker{memory.NewBroker(retry, 16, slog.New(slog.DiscardHandler))}
	})
}

func TestLocker(t *testing.T) {
	tasktest.TestLocker(t, func(t *testing.T) task.Locker { return memory.NewLocker() })
}
