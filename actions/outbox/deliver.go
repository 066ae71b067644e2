package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// maxDeliver is the delivery consumer's MaxDeliver: in effect unlimited,
// because the retry policy is a time (RetryUntil), which Handle applies
// itself. Handle also gives up on this delivery, should it ever come, so
// that the entry says failed before the dead letter is written.
const maxDeliver = 1 << 30

// maxAckPending bounds the requests delivered and not settled, those
// waiting out a retry's delay included: with the relay down for a weekend
// every queued mail waits so, and a new one must still get its turn.
const maxAckPending = 10000

// ErrNoRelay is the failure of every attempt while no relay is configured.
var ErrNoRelay = errors.New("no SMTP relay configured (smtp.address is empty)")

// Consumer returns the delivery consumer's configuration: durable
// "outbox" on the delivery requests, with the outbox's own retry policy
// (Backoff, AckWait, Workers; MaxDeliver in effect unlimited, because
// Handle gives up by time) and the status Ready reports.
func (o *Outbox) Consumer() pipeline.ConsumerConfig {
	return pipeline.ConsumerConfig{
		Stream:         pipeline.StreamTasks,
		Durable:        Name,
		FilterSubject:  Subject,
		Stage:          Name,
		MaxDeliver:     maxDeliver,
		Backoff:        o.opts.Backoff,
		AckWait:        o.opts.AckWait,
		HandlerTimeout: o.handlerTimeout(),
		Workers:        o.opts.Workers,
		MaxAckPending:  maxAckPending,
		Status:         o.status,
		Now:            o.opts.Now,
	}
}

// handlerTimeout leaves a tenth of AckWait after it for recording the
// outcome and a fifth as a margin, so that the delivery that follows a
// dead worker's comes after the worker is certainly done.
func (o *Outbox) handlerTimeout() time.Duration { return o.opts.AckWait * 7 / 10 }
func (o *Outbox) outcomeTimeout() time.Duration { return o.opts.AckWait / 10 }

// Run delivers the queued mail until ctx ends (pipeline.Run on Consumer
// with Handle). m may be nil. Without a relay (Relay.Address empty) every
// attempt fails temporarily, saying so in the entry, until a relay is
// configured or the mail's retry time is over: mail never waits unseen.
func (o *Outbox) Run(ctx context.Context, m *pipeline.Metrics) error {
	if o.opts.Relay.Address == "" && !o.opts.DryRun {
		o.opts.Log.Warn("no SMTP relay configured (smtp.address): mail is recorded in the outbox and not sent; " +
			"each attempt fails (in `eiamtriage outbox list`, and the debug log) until smtp.retry_for has passed")
	}
	return pipeline.Run(ctx, o.js, o.Consumer(), o.Handle, o.opts.Log, m)
}

// Ready reports whether delivery runs: JetStream answers and the consumer
// consumes.
func (o *Outbox) Ready(ctx context.Context) error {
	return pipeline.Ready(ctx, o.js, o.status)
}

// Handle processes one delivery request (a pipeline.Handler): it reads
// the mail's entry and, when the mail is due, makes one SMTP attempt and
// records its outcome. A temporary failure returns an error (Run retries
// with Backoff); a permanent one, or one past the mail's RetryUntil,
// records StateFailed and returns a Permanent error (Run dead-letters the
// request with the reason).
func (o *Outbox) Handle(ctx context.Context, m pipeline.Msg) error {
	var req sendRequest
	ev, err := event.ParseInto(m.Data, &req)
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("outbox: delivery request %d: %w", m.Sequence, err))
	}
	if ev.Type != TypeSend || ValidID(req.ID) != nil {
		return pipeline.Permanent(fmt.Errorf("outbox: delivery request %d (event %s, type %s) names no valid mail id", m.Sequence, ev.ID, ev.Type))
	}
	this := Delivery{Seq: m.Sequence, Delivered: m.NumDelivered}
	log := o.opts.Log.With(zap.String("mail", req.ID), zap.Uint64("request", m.Sequence), zap.Uint64("delivered", m.NumDelivered))

	e, rev, err := o.ledger.get(ctx, req.ID)
	if errors.Is(err, ErrNotFound) {
		return pipeline.Permanent(fmt.Errorf("outbox: delivery request %d for mail %s, which the ledger does not hold", m.Sequence, req.ID))
	}
	if err != nil {
		return err
	}
	log = log.With(zap.String("kind", e.Kind), zap.String("case", e.Case))
	switch e.State {
	case StateSent, StateDryRun:
		return nil // done: a duplicate request
	case StateFailed:
		return o.again(e, this)
	case StateUnknownOutcome:
		if !resendAllowed(e) {
			return o.again(e, this)
		}
		// Recorded, and not yet resent: the resend follows.
	case StateSending:
		if !o.abandoned(e, this) {
			return fmt.Errorf("outbox: mail %s: an attempt began at %s and may still run; trying later", e.ID, e.AttemptBegan.Format(time.RFC3339))
		}
		e.UnknownOutcomes++
		e.State, e.Request, e.Updated = StateUnknownOutcome, this, o.opts.Now().UTC()
		e.LastError = fmt.Sprintf("attempt %d reached DATA at %s and left no outcome (the process stopped or lost the ledger)", e.Attempts, e.AttemptBegan.Format(time.RFC3339))
		e.LastCode = "no outcome recorded"
		e.Note = unknownNote(e)
		if rev, err = o.ledger.put(ctx, e, rev); err != nil {
			return err
		}
		log.Warn("an attempt left no outcome", zap.Int("unknown_outcomes", e.UnknownOutcomes), zap.Bool("resend", resendAllowed(e)))
		if !resendAllowed(e) {
			return o.again(e, this)
		}
	case StateQueued:
	default:
		return pipeline.Permanent(fmt.Errorf("outbox: mail %s is in state %q, which this version does not know", e.ID, e.State))
	}

	if o.opts.DryRun {
		e.State, e.Request, e.Updated = StateDryRun, this, o.opts.Now().UTC()
		e.Note = "dry run: rendered and recorded, not sent"
		_, err := o.ledger.put(ctx, e, rev)
		return err
	}
	raw, err := o.raw(ctx, e)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		// Nothing to send, ever: say so rather than retry for days.
		e.State, e.Request, e.Updated = StateFailed, this, o.opts.Now().UTC()
		e.LastError, e.LastCode = err.Error(), "rendered mail missing"
		e.Note = "the rendered mail is missing from " + pipeline.BucketOutboxMail + ": enqueue the mail under a new id"
		if _, err := o.ledger.put(ctx, e, rev); err != nil {
			return err
		}
		return o.again(e, this)
	}
	if err != nil {
		return err
	}

	rcpts := make([]string, 0, len(e.To)+len(e.Cc))
	for _, list := range [][]string{e.To, e.Cc} {
		for _, s := range list {
			a, err := parseAddress(s)
			if err != nil {
				return pipeline.Permanent(fmt.Errorf("outbox: mail %s: recipient: %v", e.ID, err))
			}
			rcpts = append(rcpts, a.Address)
		}
	}
	began := e
	res := o.opts.Relay.send(ctx, o.from, rcpts, raw, func() error {
		began.Attempts++
		began.State, began.Request = StateSending, this
		began.AttemptBegan = o.opts.Now().UTC()
		began.Updated = began.AttemptBegan
		nrev, err := o.ledger.put(ctx, began, rev)
		if err == nil {
			rev = nrev
		}
		return err
	})
	if res.began {
		e = began
	} else {
		e.Attempts++
	}

	// The outcome is recorded even when ctx ended meanwhile (a shutdown):
	// an attempt without a recorded outcome costs a resend.
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.outcomeTimeout())
	defer cancel()
	now := o.opts.Now().UTC()
	e.Updated, e.Request, e.NextAttempt = now, this, time.Time{}
	switch {
	case res.accepted:
		e.State, e.SentAt, e.QueueID = StateSent, now, queueID(res.reply)
		if e.UnknownOutcomes > 0 {
			e.Note = fmt.Sprintf("sent again after %d unknown outcome(s), with the same Message-ID %s: the recipient may have it twice", e.UnknownOutcomes, e.MessageID)
		}
		if _, err := o.put(octx, e, rev); err != nil {
			log.Error("mail sent, but the ledger could not record it: the next delivery sends it again", zap.Error(err))
			return err
		}
		log.Info("mail sent", zap.String("queue_id", e.QueueID), zap.Int("attempts", e.Attempts))
		return nil

	case res.unknown:
		e.UnknownOutcomes++
		e.State, e.LastError, e.LastCode = StateUnknownOutcome, res.reply, res.code
		e.Note = unknownNote(e)
		if _, err := o.put(octx, e, rev); err != nil {
			return err
		}
		log.Warn("the relay did not answer the end of the data: outcome unknown", zap.String("reply", res.code), zap.Bool("resend", resendAllowed(e)))
		log.Debug("the relay's answer", zap.String("reply", res.reply))
		if !resendAllowed(e) {
			return o.again(e, this)
		}
		return fmt.Errorf("outbox: mail %s: %s; sending again with the same Message-ID", e.ID, res.code)

	case res.permanent:
		e.State, e.LastError, e.LastCode = StateFailed, res.reply, res.code
		e.Note = "the relay refused the mail: not retried"
		if _, err := o.put(octx, e, rev); err != nil {
			return err
		}
		log.Error("the relay refused the mail", zap.String("reply", res.code))
		log.Debug("the relay's answer", zap.String("reply", res.reply))
		return o.again(e, this)

	default:
		e.LastError, e.LastCode = res.reply, res.code
		if now.After(e.RetryUntil) || m.NumDelivered >= maxDeliver {
			e.State = StateFailed
			e.Note = fmt.Sprintf("still unsent after retrying for %s (until %s)", o.opts.RetryFor, e.RetryUntil.Format(time.RFC3339))
			if _, err := o.put(octx, e, rev); err != nil {
				return err
			}
			log.Error("mail given up: still unsent after the retry time", zap.String("reply", res.code), zap.Int("attempts", e.Attempts))
			return o.again(e, this)
		}
		e.State = StateQueued
		e.NextAttempt = now.Add(o.backoff(m.NumDelivered))
		if _, err := o.put(octx, e, rev); err != nil {
			return err
		}
		// Without a relay every attempt fails, as Run said once at the
		// start: each one is for the debug log (and the entry) only.
		lvl := zap.WarnLevel
		if o.opts.Relay.Address == "" {
			lvl = zap.DebugLevel
		}
		log.Log(lvl, "attempt failed; will retry", zap.String("reply", res.code), zap.Time("next_attempt", e.NextAttempt), zap.Time("retry_until", e.RetryUntil))
		log.Debug("the relay's answer", zap.String("reply", res.reply))
		return fmt.Errorf("outbox: mail %s: attempt %d: %s", e.ID, e.Attempts, res.code)
	}
}

// put records an outcome, trying again briefly when the bucket does not
// answer (not on a conflict: the entry changed, and what changed it
// decides).
func (o *Outbox) put(ctx context.Context, e Entry, rev uint64) (uint64, error) {
	for {
		nrev, err := o.ledger.put(ctx, e, rev)
		if err == nil || errors.Is(err, errConflict) {
			return nrev, err
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// again answers a delivery of a request for a mail that has failed or
// waits for an operator: the request that decided so is dead-lettered
// (again, should the dead letter have failed before; the dead letter is
// de-duplicated); any other request has nothing left to do.
func (o *Outbox) again(e Entry, this Delivery) error {
	if e.Request.Seq != this.Seq {
		return nil
	}
	return pipeline.Permanent(fmt.Errorf("outbox: mail %s (%s, case %s) %s: %s; %s (the relay's words: eiamtriage outbox list --state %s)",
		e.ID, e.Kind, orNone(e.Case), e.State, orNone(e.LastCode), e.Note, e.State))
}

// abandoned reports whether an entry left in StateSending belongs to an
// attempt that is certainly over: this is a later delivery of the request
// that began it (the server redelivers after AckWait, and a handler ends
// well within it), or the attempt began longer than AckWait ago.
func (o *Outbox) abandoned(e Entry, this Delivery) bool {
	if e.Request.Seq == this.Seq && this.Delivered > e.Request.Delivered {
		return true
	}
	return o.opts.Now().Sub(e.AttemptBegan) > o.opts.AckWait
}

// resendAllowed: an unknown outcome is resent automatically once per mail.
func resendAllowed(e Entry) bool { return e.UnknownOutcomes <= 1 }

func unknownNote(e Entry) string {
	if resendAllowed(e) {
		return fmt.Sprintf("outcome of attempt %d unknown: sent again with the same Message-ID %s; the recipient may have it twice", e.Attempts, e.MessageID)
	}
	return fmt.Sprintf("outcome unknown %d times: not sent again automatically; check with the relay's log (Message-ID %s) and `eiamtriage outbox resend %s` if it never arrived", e.UnknownOutcomes, e.MessageID, e.ID)
}

func (o *Outbox) backoff(n uint64) time.Duration {
	b := o.opts.Backoff
	if n < 1 {
		n = 1
	}
	if n > uint64(len(b)) {
		return b[len(b)-1]
	}
	return b[n-1]
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
