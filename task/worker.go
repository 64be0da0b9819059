package task

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/codes"
)

// Worker consumes topics from a Subscriber with a Handler per topic and Concurrency
// consumers per topic. Each delivery runs in a consumer span, a child of the span that
// published the message (see Publish), and each failed attempt is logged once, at the
// edge, with that span's trace.
type Worker struct {
	sub         Subscriber
	handlers    map[string]Handler
	concurrency int
	log         *slog.Logger
}

// NewWorker returns a Worker that runs concurrency consumers for each topic in handlers.
func NewWorker(sub Subscriber, handlers map[string]Handler, concurrency int, log *slog.Logger) *Worker {
	return &Worker{sub: sub, handlers: handlers, concurrency: max(concurrency, 1), log: log}
}

// Run consumes until ctx is done and returns nil then, or the first subscription error
// (after stopping the other consumers).
func (w *Worker) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for topic, h := range w.handlers {
		h := w.traced(h)
		for range w.concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := w.sub.Subscribe(ctx, topic, h); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}()
		}
	}
	wg.Wait()
	return first
}

// traced wraps h in the delivery's consumer span and logs its failures.
func (w *Worker) traced(h Handler) Handler {
	return func(ctx context.Context, m Message) error {
		ctx, span := startProcess(ctx, m)
		defer span.End()
		start := time.Now()
		err := h(ctx, m)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			if ctx.Err() == nil {
				w.log.WarnContext(ctx, "task attempt", "topic", m.Topic, "message_id", m.ID, "attempt", m.Attempt,
					"permanent", IsPermanent(err), "duration_ms", time.Since(start).Milliseconds(), "err", err)
			}
		}
		return err
	}
}
