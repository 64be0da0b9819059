// Package task runs work that arrives through a broker: batches of plans from ingest
// and price recalculations. Its ports are the brokers' two ends (Publisher,
// Subscriber), their dead letters (DeadLetters), a lock (Locker) and the task records
// (Records); the embedded broker is sqlite.Broker, the distributed one
// rabbitmq.Broker, and both pass the contract suites in tasktest. The records are kept
// by the stores, sqlite.Store and postgres.Store, which pass tasktest.TestRecords.
//
// Concepts:
//
//   - A Message is an opaque body on a topic, with headers for tracing and an Attempt
//     count that the broker keeps.
//   - Acks late: a broker hands a message to a Handler and acknowledges it only after the
//     handler returned nil, so a consumer that dies mid-task has its message redelivered.
//     Handlers are therefore idempotent.
//   - Retries: a handler error is retried after a countdown that grows with each attempt,
//     up to a maximum number of attempts (RetryPolicy); then the message is
//     dead-lettered. An error wrapped with Permanent is dead-lettered at once.
//   - Dead letters keep the message with the error that killed it (headers ErrorHeader
//     and, for a panic, StackHeader), for an operator to list, replay or purge
//     (DeadLetters).
//   - Panics: the Worker recovers a handler's panic (Recover) and treats it as a
//     permanent failure, so a poison message is dead-lettered instead of killing every
//     worker in turn.
//   - Records: a task that a client follows (a recalculation) has a Record with its
//     State, attempts, result and times, kept by a Records store; the Worker's broker
//     message carries its id. Each kind of task counts its generations: the order in
//     which tasks of that kind were requested.
//   - Locks: a Locker gives a named lock with a token and an expiry, renewed by its
//     owner while it works and released only by it. ErrLocked means another owner holds
//     it, which callers treat as "skip", not as a failure.
//   - Tracing: Publish writes the publisher's trace context into a message's headers,
//     and the Worker processes each delivery in a span that continues it, so one trace
//     follows a task from the request that asked for it through every broker and
//     retry. Brokers only carry the headers.
package task
