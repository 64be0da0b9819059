// Package memory holds the in-process adapters of the embedded mode: a task broker and
// a lock. They are production code for one process, not test doubles: they keep the
// same contracts as the RabbitMQ and Redis adapters, except that nothing survives the
// process (the next provider sync re-sends what a crash lost).
package memory
