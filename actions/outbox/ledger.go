package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// State is where a mail stands in the ledger.
type State string

const (
	// StateQueued: recorded and waiting for an attempt, the first or,
	// after a temporary failure (LastError), the next (NextAttempt).
	StateQueued State = "queued"
	// StateSending: an attempt has reached DATA and its outcome is not
	// recorded yet. An entry left in it by a crash is found by the next
	// delivery and becomes StateUnknownOutcome.
	StateSending State = "sending"
	// StateSent: the relay accepted the mail (QueueID, SentAt).
	StateSent State = "sent"
	// StateFailed: the relay refused the mail for good (5xx), or it was
	// still unsent after the configured retry time. It is dead-lettered.
	StateFailed State = "failed"
	// StateDryRun: rendered and recorded, not sent (dry_run).
	StateDryRun State = "dry-run"
	// StateUnknownOutcome: an attempt sent the mail's data and its outcome
	// is unknown (the process stopped, or the relay never answered the
	// end of the data). The first time, the mail is sent again with the
	// same Message-ID (the entry says so: UnknownOutcomes, Note); the
	// second time it stays so, is dead-lettered and waits for an operator
	// (Resend).
	StateUnknownOutcome State = "unknown-outcome"
)

// States lists every state, in the order of a mail's life.
var States = []State{StateQueued, StateSending, StateSent, StateFailed, StateDryRun, StateUnknownOutcome}

// ProblemStates are the states a person must look at: the summaries list
// them (List(ctx, Filter{States: ProblemStates})).
var ProblemStates = []State{StateFailed, StateUnknownOutcome}

// ParseState reads a state's name.
func ParseState(s string) (State, error) {
	if slices.Contains(States, State(s)) {
		return State(s), nil
	}
	return "", fmt.Errorf("outbox: no state %+q: use queued, sending, sent, failed, dry-run or unknown-outcome", s)
}

// Entry is a mail in the ledger.
type Entry struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Case    string `json:"case,omitempty"`
	Mailbox string `json:"mailbox,omitempty"`
	// To and Cc are the mail's recipients (the envelope's, together).
	To      []string `json:"to"`
	Cc      []string `json:"cc,omitempty"`
	Subject string   `json:"subject"`
	// MessageID is the mail's Message-ID, angle brackets included; every
	// attempt and resend sends the same.
	MessageID string `json:"message_id"`
	// Size is the rendered mail's length in bytes.
	Size  int   `json:"size"`
	State State `json:"state"`
	// Attempts counts SMTP attempts (connections to the relay) for the
	// mail, successful or not.
	Attempts int `json:"attempts"`
	// LastError is the relay's last answer, or the connection error, of
	// the last failed attempt.
	LastError string `json:"last_error,omitempty"`
	// LastCode is LastError in short, without the relay's text (which may
	// name a recipient): "RCPT: 550 5.1.1". Logs and dead letters carry
	// it.
	LastCode string `json:"last_code,omitempty"`
	// QueueID is the relay's queue id from its final 250 (the whole
	// answer when it names none).
	QueueID string `json:"queue_id,omitempty"`
	// UnknownOutcomes counts attempts whose outcome stayed unknown (see
	// StateUnknownOutcome); Resends counts the operator's resends; Note
	// says in words what the outbox last decided and why.
	UnknownOutcomes int    `json:"unknown_outcomes,omitempty"`
	Resends         int    `json:"resends,omitempty"`
	Note            string `json:"note,omitempty"`
	// Created is when the mail was recorded; Updated its last change;
	// SentAt when the relay accepted it; NextAttempt when a queued mail is
	// tried again (zero: at once); RetryUntil the end of its temporary
	// failures' retries (Created or the last resend, plus retry_for);
	// AttemptBegan when the last attempt reached DATA.
	Created      time.Time `json:"created"`
	Updated      time.Time `json:"updated"`
	SentAt       time.Time `json:"sent_at,omitzero"`
	NextAttempt  time.Time `json:"next_attempt,omitzero"`
	RetryUntil   time.Time `json:"retry_until"`
	AttemptBegan time.Time `json:"attempt_began,omitzero"`
	// Object names the rendered mail in the outbox's object store.
	Object string `json:"object"`
	// Request is the delivery that last decided about the mail.
	Request Delivery `json:"request,omitzero"`
}

// Delivery identifies one delivery of a delivery request: its position in
// the stream and its delivery count.
type Delivery struct {
	Seq       uint64 `json:"seq"`
	Delivered uint64 `json:"delivered"`
}

// Filter selects ledger entries; an empty field selects all. Since keeps
// entries updated at or after it.
type Filter struct {
	Mailbox, Kind, Case string
	States              []State
	Since               time.Time
}

func (f Filter) match(e *Entry) bool {
	return (f.Mailbox == "" || e.Mailbox == f.Mailbox) &&
		(f.Kind == "" || e.Kind == f.Kind) &&
		(f.Case == "" || e.Case == f.Case) &&
		(len(f.States) == 0 || slices.Contains(f.States, e.State)) &&
		(f.Since.IsZero() || !e.Updated.Before(f.Since))
}

// ErrNotFound is returned for an id the ledger does not hold.
var ErrNotFound = errors.New("no such mail in the outbox")

// errConflict means the entry changed under an update.
var errConflict = errors.New("outbox: the ledger entry changed meanwhile")

// ledger is the key-value bucket of entries, one key per mail id.
type ledger struct {
	kv jetstream.KeyValue
}

func (l ledger) get(ctx context.Context, id string) (Entry, uint64, error) {
	kve, err := l.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Entry{}, 0, fmt.Errorf("outbox: mail %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Entry{}, 0, fmt.Errorf("outbox: read ledger entry %s: %w", id, err)
	}
	var e Entry
	if err := json.Unmarshal(kve.Value(), &e); err != nil {
		return Entry{}, 0, fmt.Errorf("outbox: ledger entry %s (revision %d) is not an entry: %w", id, kve.Revision(), err)
	}
	return e, kve.Revision(), nil
}

// create records e under its id; created is false when the id is taken.
func (l ledger) create(ctx context.Context, e Entry) (created bool, err error) {
	b, err := json.Marshal(e)
	if err != nil {
		return false, fmt.Errorf("outbox: encode ledger entry %s: %w", e.ID, err)
	}
	_, err = l.kv.Create(ctx, e.ID, b)
	if err == nil {
		return true, nil
	}
	// R>1 buckets answer a taken key with a code ErrKeyExists does not
	// match: look.
	if _, _, gerr := l.get(ctx, e.ID); gerr == nil {
		return false, nil
	}
	return false, fmt.Errorf("outbox: record ledger entry %s: %w", e.ID, err)
}

// put writes e over revision rev; errConflict when the entry changed.
func (l ledger) put(ctx context.Context, e Entry, rev uint64) (uint64, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return 0, fmt.Errorf("outbox: encode ledger entry %s: %w", e.ID, err)
	}
	nrev, err := l.kv.Update(ctx, e.ID, b, rev)
	if err != nil {
		if _, crev, gerr := l.get(ctx, e.ID); gerr == nil && crev != rev {
			return 0, fmt.Errorf("%w (entry %s at revision %d, expected %d)", errConflict, e.ID, crev, rev)
		}
		return 0, fmt.Errorf("outbox: update ledger entry %s to %s: %w", e.ID, e.State, err)
	}
	return nrev, nil
}

// list returns every entry f selects, in no particular order.
func (l ledger) list(ctx context.Context, f Filter) ([]Entry, error) {
	w, err := l.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("outbox: read the ledger: %w", err)
	}
	defer w.Stop()
	var out []Entry
	for {
		select {
		case <-ctx.Done():
			return out, fmt.Errorf("outbox: read the ledger: %w", ctx.Err())
		case kve, ok := <-w.Updates():
			if !ok {
				return out, errors.New("outbox: read the ledger: the watch ended early")
			}
			if kve == nil {
				return out, nil // every current entry seen
			}
			var e Entry
			if err := json.Unmarshal(kve.Value(), &e); err != nil {
				return out, fmt.Errorf("outbox: ledger entry %s (revision %d) is not an entry: %w", kve.Key(), kve.Revision(), err)
			}
			if f.match(&e) {
				out = append(out, e)
			}
		}
	}
}
