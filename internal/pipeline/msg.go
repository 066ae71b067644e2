package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/nats-io/nats.go"
)

// Handler processes one message. Its result decides what happens to the
// message (see the package documentation): nil acks it, an error marked with
// Permanent dead-letters it, any other error retries it later. ctx ends when
// the handler has run for ConsumerConfig.HandlerTimeout or when Run's
// shutdown grace period is over; a handler must then return promptly: one
// that goes on for ConsumerConfig.AbandonAfter more is abandoned and its
// message dead-lettered. A Handler runs concurrently with itself
// (ConsumerConfig.Workers) and must be idempotent: a message can be
// delivered again after a crash or a lost acknowledgement.
type Handler func(ctx context.Context, m Msg) error

// Msg is a message as a Handler sees it. Data and Headers belong to the
// handler for the duration of the call.
type Msg struct {
	Subject string
	Data    []byte
	Headers nats.Header
	// Stream and Sequence identify the message in its stream.
	Stream   string
	Sequence uint64
	// NumDelivered counts deliveries of this message to the consumer,
	// this one included (1 on the first delivery).
	NumDelivered uint64
	// Timestamp is when the stream stored the message.
	Timestamp time.Time
}

// Event parses the message body as an event. A body that is not a valid
// event can never be processed, so the error is marked Permanent: a handler
// can return it as is.
func (m Msg) Event() (event.Event, error) {
	e, err := event.Parse(m.Data)
	if err != nil {
		return event.Event{}, Permanent(fmt.Errorf("pipeline: message %d of stream %s on %s: %w", m.Sequence, m.Stream, m.Subject, err))
	}
	return e, nil
}
