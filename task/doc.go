// Package task runs work that arrives through a broker: batches of plans from ingest,
// and (later) price recalculations.
//
// Concepts:
//
//   - A Message is an opaque body on a topic, with headers for tracing and an Attempt
//     count that the broker keeps.
//   - Acks late: a broker hands a message to a Handler and acknowledges it only after the
//     handler returned nil, so a consumer that dies mid-task has its message redelivered.
//     Handlers are therefore idempotent.
//   - Retries: a handler error is retried after a countdown that grows with each attempt,
//     up to a maximum number of attempts; then the message is dead-lettered. An error
//     wrapped with Permanent is dead-lettered at once.
//   - Locks: a Locker gives a named lock with a token and an expiry, renewed by its
//     owner while it works and released only by it. ErrLocked means another owner holds
//     it, which callers treat as "skip", not as a failure.
//   - Tracing: Publish writes the publisher's trace context into a message's headers,
//     and the Worker processes each delivery in a span that continues it, so one trace
//     follows a task from the request that asked for it through every broker and
//     retry. Brokers only carry the headers.
package task
