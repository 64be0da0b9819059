package task

import (
	"context"
	"time"
)

// DeadLetter is a message that failed for good, as a broker keeps it for an operator.
type DeadLetter struct {
	// Message is the message as it was last delivered: Attempt is the attempt it
	// failed at, Headers are the publisher's plus ErrorHeader (and StackHeader after a
	// panic).
	Message
	// Error says why it died: the handler's last error, its panic, or the broker's
	// account of a message whose consumers kept dying (its delivery limit).
	Error string
	// DiedAt is when it was dead-lettered.
	DiedAt time.Time
}

// DeadLetters is the operator's port onto the messages a broker dead-lettered: what
// `boxoffice dead-letters` lists, replays and purges, and what the dead-letter gauge
// counts. Every broker adapter implements it; tasktest.TestDeadLetters is its contract.
// Errors are the broker's (unreachable, closed); a topic without dead letters is empty,
// not an error.
type DeadLetters interface {
	// ListDeadLetters returns up to limit of topic's dead letters, oldest first,
	// leaving them where they are.
	ListDeadLetters(ctx context.Context, topic string, limit int) ([]DeadLetter, error)
	// CountDeadLetters returns the number of topic's dead letters.
	CountDeadLetters(ctx context.Context, topic string) (int, error)
	// ReplayDeadLetters moves topic's dead letters back to its work queue, each with
	// its ID, body and publisher's headers unchanged and a fresh attempt count, as if
	// just published, and returns how many it moved. Dead letters that arrive while it
	// runs may stay for the next call.
	ReplayDeadLetters(ctx context.Context, topic string) (int, error)
	// PurgeDeadLetters deletes topic's dead letters and returns how many it deleted.
	PurgeDeadLetters(ctx context.Context, topic string) (int, error)
}

// ReplayReporter is a DeadLetters whose replay reports its progress, for a command that
// draws it on a terminal: a replay moves dead letters one at a time (RabbitMQ), which
// takes a while when there are many. Found by type assertion; both broker adapters
// implement it, and tasktest.TestDeadLetters checks it on each.
type ReplayReporter interface {
	// ReplayDeadLettersReporting is ReplayDeadLetters calling progress after each dead
	// letter it moves, with the number moved so far and the number it moves at most.
	// progress runs on the replay's goroutine; a nil one is never called.
	ReplayDeadLettersReporting(ctx context.Context, topic string, progress func(moved, total int)) (int, error)
}
