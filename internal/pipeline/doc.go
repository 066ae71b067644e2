// Package pipeline holds the JetStream plumbing shared by eiamtriage's
// stages: the streams and buckets (EnsureStreams), publishing with
// de-duplication and retries (Publish), and the one place that turns a
// handler's outcome into JetStream acknowledgements (Run).
//
// # The policy
//
// Run calls a Handler for each message and settles the message from the
// handler's result alone; handlers never ack, nak or term themselves:
//
//   - nil: the message is acknowledged. The ack is not confirmed (a
//     round trip per message): if it is lost the message is redelivered,
//     and handlers must be idempotent anyway.
//   - a temporary error (any error not marked with Permanent): the message is
//     negatively acknowledged with the delay ConsumerConfig.Backoff gives for
//     its delivery count, and comes back.
//   - a permanent error (Permanent), a panic in the handler (recovered and
//     treated as permanent: it is a bug that would recur on the same input),
//     or a temporary error on delivery MaxDeliver or later: a DeadLetter event
//     is published to eiam.dead.<stage>, and only once the stream stored it is
//     the message terminated. If that publish fails the message is nak'ed and
//     tried again later: nothing is dropped.
//   - no result: a handler that ignores its deadline (still running
//     ConsumerConfig.AbandonAfter after its ctx ended) is abandoned, and its
//     message dead-lettered as permanent (reason kind overrun) on that
//     delivery.
//
// While a handler runs, its message is kept in progress (a heartbeat every
// third of AckWait), so the server never hands it to a second worker
// meanwhile; and Run fetches only as many messages as it has free workers,
// so none waits in the client while its ack timer runs.
//
// The consumer's server-side MaxDeliver is unlimited on purpose: Run counts
// deliveries itself and dead-letters on the last one, so the server never
// drops a message silently (it would only emit an advisory) when a last
// delivery is lost to a crash or a failed dead-letter publish. Deliveries
// are counted when a message arrives: one delivered more than MaxDeliver
// times (the earlier deliveries ended without a result, say because the
// mail made the process crash) is dead-lettered without running its handler.
package pipeline
