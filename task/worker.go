package task

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"boxoffice/spans"
)

// Worker consumes topics from a Subscriber with a Handler per topic and Concurrency
// consumers per topic. Each delivery runs in a consumer span, a child of the span that
// published the message (see Publish), and each failed attempt is logged once, at the
// edge, with that span's trace.
//
// A handler that panics does not take the process down: the Worker recovers the panic,
// logs it with its stack, and returns it to the broker as a permanent failure (a
// *PanicError wrapped by Permanent), so the message is dead-lettered at once with the
// panic and its stack in its headers (ErrorHeader, StackHeader) and the consumer goes
// on with the next message. A poison message therefore costs one delivery, not a
// crash loop of every worker it reaches.
type Worker struct {
	sub      Subscriber
	handlers map[string]Handler
	cfg      WorkerConfig
	tracer   trace.Tracer
	log      *slog.Logger
}

// WorkerConfig tunes a Worker. The zero value runs one consumer per topic, without
// spans.
type WorkerConfig struct {
	Concurrency int // consumers per topic; 0 is 1
	// TracerProvider makes the consumer spans; nil is tracing off.
	TracerProvider trace.TracerProvider
	// Panicked, when set, is told of each handler panic, with the topic.
	Panicked func(topic string)
}

// NewWorker returns a Worker that runs cfg.Concurrency consumers for each topic in
// handlers on sub. It panics on a nil sub or a negative Concurrency: a programming
// mistake.
func NewWorker(sub Subscriber, handlers map[string]Handler, cfg WorkerConfig, log *slog.Logger) *Worker {
	if sub == nil {
		panic("task: NewWorker: nil Subscriber")
	}
	if cfg.Concurrency < 0 {
		panic(fmt.Sprintf("task: NewWorker: Concurrency %d is negative", cfg.Concurrency))
	}
	cfg.Concurrency = max(cfg.Concurrency, 1)
	return &Worker{sub: sub, handlers: handlers, cfg: cfg, tracer: spans.Tracer(cfg.TracerProvider, tracerName), log: log}
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
		for range w.cfg.Concurrency {
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

// traced wraps h in the delivery's consumer span, recovers its panics and logs its
// failures.
func (w *Worker) traced(h Handler) Handler {
	return func(ctx context.Context, m Message) error {
		ctx, span := startProcess(ctx, w.tracer, m)
		defer span.End()
		start := time.Now()
		err := call(ctx, h, m)
		if p := (*PanicError)(nil); errors.As(err, &p) {
			w.log.ErrorContext(ctx, "task handler panicked; dead-lettering the message", "topic", m.Topic,
				"message_id", m.ID, "attempt", m.Attempt, "panic", p.Error(), "stack", p.Stack)
			if w.cfg.Panicked != nil {
				w.cfg.Panicked(m.Topic)
			}
			spans.Fail(span, err)
			return Permanent(err)
		}
		if err != nil {
			spans.Fail(span, err)
			if ctx.Err() == nil {
				w.log.WarnContext(ctx, "task attempt", "topic", m.Topic, "message_id", m.ID, "attempt", m.Attempt,
					"permanent", IsPermanent(err), "duration_ms", time.Since(start).Milliseconds(), "err", err)
			}
		}
		return err
	}
}

// call runs h on m, turning a panic into a *PanicError.
func call(ctx context.Context, h Handler, m Message) (err error) {
	defer Recover(&err)
	return h(ctx, m)
}
