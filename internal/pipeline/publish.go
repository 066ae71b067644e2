package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	publishAttemptTimeout = 5 * time.Second
	publishBackoffMin     = 50 * time.Millisecond
	publishBackoffMax     = 2 * time.Second
)

// Publish stores ev on subject in JetStream with Nats-Msg-Id set to ev.ID,
// so that publishing the same event again within DuplicateWindow stores it
// once (a duplicate counts as success). It retries failures that can pass
// (no responders during a leader election, timeouts, a reconnecting
// connection) with backoff until ctx ends; bound ctx. A subject no stream
// captures also answers "no responders" and is retried until ctx ends.
//
// Failures that cannot pass (an invalid event, a message too large, a closed
// connection) return at once marked Permanent, so a Handler may return
// Publish's error as it is.
func Publish(ctx context.Context, js jetstream.JetStream, subject string, ev event.Event) error {
	_, err := PublishNew(ctx, js, subject, ev)
	return err
}

// PublishNew is Publish that also reports whether the stream stored the
// event (true) or dropped it as a duplicate of one it holds with the same
// id, within its duplicate window (false).
func PublishNew(ctx context.Context, js jetstream.JetStream, subject string, ev event.Event) (bool, error) {
	body, err := ev.Marshal()
	if err != nil {
		return false, Permanent(fmt.Errorf("pipeline: publish to %s: %w", subject, err))
	}
	msg := &nats.Msg{Subject: subject, Data: body}
	wait := publishBackoffMin
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, publishAttemptTimeout)
		ack, err := js.PublishMsg(actx, msg, jetstream.WithMsgID(ev.ID))
		cancel()
		if err == nil {
			return !ack.Duplicate, nil
		}
		if storeFull(err) {
			// Temporary, but not within this call: the caller retries
			// later (a handler's message is nak'ed with its backoff).
			return false, fmt.Errorf("pipeline: publish event %q (%s) to %s: %w: %w", ev.ID, ev.Type, subject, ErrStoreFull, err)
		}
		if publishErrPermanent(err) {
			return false, Permanent(fmt.Errorf("pipeline: publish event %q (%s) to %s: %w", ev.ID, ev.Type, subject, err))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, fmt.Errorf("pipeline: publish event %q (%s) to %s: gave up after %d attempts: %w (last attempt: %w)", ev.ID, ev.Type, subject, attempt, ctx.Err(), err)
		case <-t.C:
		}
		wait = min(2*wait, publishBackoffMax)
	}
}

// ErrStoreFull marks a publish the server refused for lack of storage
// (its JetStream limits or its disk).
var ErrStoreFull = errors.New("the JetStream store is full")

// storeFull tells a refusal for lack of resources.
func storeFull(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case 10002, 10023, 10028, 10047: // account resources exceeded, insufficient resources, memory, storage
		return true
	case 10077: // storing the message failed
		return strings.Contains(apiErr.Description, "no space left")
	}
	return false
}

// publishErrPermanent tells publish failures that retrying cannot fix.
func publishErrPermanent(err error) bool {
	switch {
	case errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrMaxPayload),
		errors.Is(err, nats.ErrBadSubject),
		errors.Is(err, jetstream.ErrInvalidSubject):
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// 400: the stream refuses this message (too large, bad header);
		// 503 and other codes can pass.
		return apiErr.Code == 400
	}
	return false
}
