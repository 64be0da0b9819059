// Package rabbitmq runs the task ports (task.Publisher, task.Subscriber) on RabbitMQ
// with amqp091-go, for the distributed mode (BROKER_URL).
//
// Concepts:
//
//   - Topology. Each topic owns durable queues named after Config.Prefix: the work queue
//     "<prefix>.<topic>", one retry queue "<prefix>.<topic>.retry.<ms>ms" per distinct
//     countdown of the retry policy, and the dead-letter queue "<prefix>.<topic>.dead".
//     A Broker declares them (idempotently) the first time it uses a topic on a
//     connection, so again after every reconnection. Messages go through the default
//     exchange, persistent, with their ID, their headers and an attempt header.
//   - Countdowns. RabbitMQ has no native delay, so a retry queue has no consumer and a
//     fixed x-message-ttl; when a message's time is up RabbitMQ dead-letters it, through
//     the default exchange, back to the work queue. One queue per distinct delay means a
//     short countdown never waits behind a long one (RabbitMQ expires messages only from
//     the head of a queue). Nothing sleeps while holding a message unacknowledged.
//   - Publisher confirms. Publish returns nil only once the broker has confirmed every
//     message, which for a persistent message on a durable queue means it is stored.
//     Confirms are pipelined (up to 512 messages in flight per Publish call). Messages
//     are published mandatory: one whose queue was deleted behind the Broker's back
//     comes back, and is sent again once the topology is declared again, never lost.
//   - Acks late. A consumer acknowledges a delivery after its handler returned nil. A
//     failed delivery is first copied, confirmed, into its retry queue (attempt+1) or,
//     when the error is task.Permanent or the attempts are spent, into the dead-letter
//     queue with the error text; only then is the original acknowledged. A consumer that
//     stops or dies mid-task leaves its deliveries unacknowledged, and RabbitMQ hands
//     them to another consumer.
//   - Reconnection. When the connection drops, the Broker redials with backoff and every
//     running Subscribe resumes on the new connection by itself; Publish waits for the
//     new connection (as long as its context allows) and sends again what was not
//     confirmed.
//
// Attempts count handler failures, not deliveries: a message redelivered because its
// consumer died keeps its attempt number. A handler's panic is not a death: task.Worker
// recovers it and the message is dead-lettered with the panic in its headers. A message
// that kills its process by other means (OOM, SIGKILL) is redelivered for ever.
//
// Delivery is at least once, never at most once: a message may be handled twice (a
// consumer died after its handler's effects but before the ack reached the broker, or a
// Publish was cut off after the broker stored a message but before its confirm came
// back). Redeliveries keep the message ID, and handlers must be idempotent.
package rabbitmq
