package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eiamtriage/eiamtriage/internal/event"
)

// PublishDead records a dead letter on eiam.dead.<dl.Stage>, where an
// operator (`eiamtriage dead list`) and the superusers' summaries see it.
// id must be stable for the fact it records (a retry of the same dead
// letter is then stored once); subject, when not empty, names the event
// the letter is about. Run uses it for the messages it gives up on; a
// stage that gives up on something that was never a message (a mail too
// large to take in) calls it itself.
func PublishDead(ctx context.Context, js jetstream.JetStream, dl event.DeadLetter, id, subject string) error {
	if err := event.ValidToken(dl.Stage); err != nil {
		return Permanent(fmt.Errorf("pipeline: dead letter %s: stage: %w", id, err))
	}
	if dl.At.IsZero() {
		dl.At = time.Now().UTC()
	}
	ev, err := event.New(event.TypeDead, "eiamtriage/"+dl.Stage, id, dl.At, dl)
	if err != nil {
		return Permanent(err)
	}
	ev.Subject = subject
	return Publish(ctx, js, event.DeadSubject(dl.Stage), ev)
}

// DeadRecord is one message of the dead-letter stream: a dead letter, a
// quarantined mail, a mail that could not be read, or a message that is
// none of them (Err says what it is).
type DeadRecord struct {
	Seq     uint64
	Subject string
	Event   event.Event
	// Letter is set for a dead letter, Quarantined for a quarantined mail,
	// Unreadable for a mail the ingest could not read (on
	// eiam.dead.unreadable).
	Letter      *event.DeadLetter
	Quarantined *event.MailIgnored
	Unreadable  *event.MailIgnored
	// Err is why the message could not be read as either.
	Err error
}

// ReadDead returns the messages of the dead-letter stream from sequence
// from (0 or 1: all) up to its last one when the call began, oldest first.
func ReadDead(ctx context.Context, js jetstream.JetStream, from uint64) ([]DeadRecord, error) {
	st, err := js.Stream(ctx, StreamDead)
	if err != nil {
		return nil, fmt.Errorf("pipeline: open stream %s: %w (has `eiamtriage serve` run with this configuration?)", StreamDead, err)
	}
	state := st.CachedInfo().State
	last := state.LastSeq
	if state.Msgs == 0 || last < from {
		return nil, nil
	}
	cfg := jetstream.OrderedConsumerConfig{}
	if from > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pipeline: read stream %s: %w", StreamDead, err)
	}
	var out []DeadRecord
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, context.DeadlineExceeded) {
				return out, fmt.Errorf("pipeline: read stream %s: stopped before its last message %d: %w", StreamDead, last, err)
			}
			return out, fmt.Errorf("pipeline: read stream %s: %w", StreamDead, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return out, fmt.Errorf("pipeline: read stream %s: %w", StreamDead, err)
		}
		out = append(out, deadRecord(meta.Sequence.Stream, msg.Subject(), msg.Data()))
		if meta.Sequence.Stream >= last {
			return out, nil
		}
	}
}

func deadRecord(seq uint64, subject string, data []byte) DeadRecord {
	r := DeadRecord{Seq: seq, Subject: subject}
	ev, err := event.Parse(data)
	if err != nil {
		r.Err = fmt.Errorf("not an event: %w", err)
		return r
	}
	r.Event = ev
	switch ev.Type {
	case event.TypeDead:
		var dl event.DeadLetter
		if r.Err = ev.Decode(&dl); r.Err == nil {
			r.Letter = &dl
		}
	case event.TypeMailQuarantined:
		var ig event.MailIgnored
		if r.Err = ev.Decode(&ig); r.Err == nil {
			r.Quarantined = &ig
		}
	case event.TypeMailIgnored:
		var ig event.MailIgnored
		if r.Err = ev.Decode(&ig); r.Err == nil {
			r.Unreadable = &ig
		}
	default:
		r.Err = fmt.Errorf("an event of type %s", ev.Type)
	}
	return r
}
