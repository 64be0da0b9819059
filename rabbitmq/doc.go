// Package rabbitmq runs the task ports (task.Publisher, task.Subscriber) on RabbitMQ
// with amqp091-go, for the distributed mode (BROKER_URL).
//
// Concepts:
//
//   - Topology. Each topic owns durable quorum queues (replicated and fsynced by
//     RabbitMQ) named after Config.Prefix and the topology's version: the work queue
//     "<prefix>.<topic>.v2", one retry queue "<prefix>.<topic>.v2.retry.<ms>ms" per
//     distinct countdown of the retry policy, and the dead-letter queue
//     "<prefix>.<topic>.v2.dead". A Broker declares them (idempotently) the first time it
//     uses a topic on a connection, so again after every reconnection. Messages go
//     through the default exchange, persistent, with their ID, their headers and an
//     attempt header.
//   - Countdowns. RabbitMQ has no native delay, so a retry queue has no consumer and a
//     fixed x-message-ttl; when a message's time is up RabbitMQ dead-letters it, through
//     the default exchange, back to the work queue, at least once (the retry queue keeps
//     it until the work queue confirmed it: x-dead-letter-strategy=at-least-once, which
//     needs x-overflow=reject-publish). One queue per distinct delay means a short
//     countdown never waits behind a long one (RabbitMQ expires messages only from the
//     head of a queue). Nothing sleeps while holding a message unacknowledged.
//   - Delivery limit. The work queue counts the deliveries of each message that ended
//     without an ack (x-delivery-limit = the policy's DeliveryLimit): a message whose
//     consumers keep dying with it (OOM, SIGKILL, which no recover catches) is
//     dead-lettered by RabbitMQ itself, at least once, into the dead-letter queue, with
//     an x-death header whose reason is delivery_limit; ListDeadLetters shows it as the
//     error. The count starts again with each retry (a retry is a new message). On
//     RabbitMQ 3.10 every return counts, a consumer stopping mid-task or a connection
//     lost included; so that a poison message does not take the deliveries that its
//     consumer held beside it to the dead letters with it, a consumer holds one
//     delivery at a time (Config.Prefetch 1).
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
// that kills its process by other means is stopped by the delivery limit.
//
// Dead letters are an operator's (task.DeadLetters): ListDeadLetters browses the
// dead-letter queue (get, then nack with requeue), CountDeadLetters reads its depth,
// ReplayDeadLetters moves each message back to the work queue with attempt 1 (published
// and confirmed before it is removed), PurgeDeadLetters empties it.
//
// Migration from the classic queues. The first topology had classic queues named
// "<prefix>.<topic>", "<prefix>.<topic>.dead" and "<prefix>.<topic>.retry.<ms>ms".
// RabbitMQ cannot convert a queue's type, and declaring a quorum queue under the name of
// an existing classic queue fails with PRECONDITION_FAILED, hence the ".v2" names. When a
// Broker declares a topic, it also moves whatever the classic queues of the topic still
// hold into the quorum queues (work and retry queues into the work queue, their
// attempts kept; dead letters into the dead-letter queue), each message published and
// confirmed before it is removed, and then deletes the emptied classic retry and
// dead-letter queues unless a consumer still uses them. Nothing is dropped. The classic
// work queue is kept, empty, to catch what is still sent to it: during a rolling
// upgrade, processes of the previous version keep publishing there, and with a retry
// policy changed in the same upgrade (TASK_MAX_ATTEMPTS, TASK_RETRY_SECONDS) the old
// countdowns' classic retry queues, which a Broker cannot know, still expire there.
// The next declaration of a new process (its start or its next reconnection) moves it
// all, so the upgrade is complete once the last old process has stopped, its retry
// queues have expired (30 s at most with the defaults), and one new process has started
// after that; the operator may then delete the classic queues ("rabbitmqctl
// delete_queue <prefix>.<topic>" and any "<prefix>.<topic>.retry.*") once they are empty.
//
// Delivery is at least once, never at most once: a message may be handled twice (a
// consumer died after its handler's effects but before the ack reached the broker, or a
// Publish was cut off after the broker stored a message but before its confirm came
// back). Redeliveries keep the message ID, and handlers must be idempotent.
package rabbitmq
