// Package outbox composes, records and delivers every mail the service
// sends. The actions stage and the summaries decide what to send and call
// Enqueue; the outbox renders the mail (Compose), records it in its ledger
// under the mail's id before any attempt, and delivers it over SMTP as its
// own service part (Run), with its own long retry policy.
//
// # Exactly once, as far as SMTP allows
//
// The ledger (a JetStream key-value bucket, pipeline.BucketOutbox) holds
// one Entry per mail id; the rendered bytes are kept beside it
// (pipeline.BucketOutboxMail). Enqueue of an id the ledger holds changes
// nothing, however late it comes: restarts, redeliveries and duplicate
// notices never send a mail twice. An attempt is marked (StateSending)
// before the mail's data goes to the relay and marked again (StateSent,
// with the relay's queue id) when the relay accepted it. SMTP has no
// idempotency: when the process stops between the two, nobody can know
// whether the relay took the mail. The next delivery finds the mark,
// records StateUnknownOutcome and sends the mail once more with the same
// Message-ID (so the recipient's mail program can tell the copy); a second
// unknown outcome of the same mail is dead-lettered and left to an
// operator.
//
// A temporary failure (a 4xx answer, a refused or broken connection) is
// retried with backoff until the mail's RetryUntil (Options.RetryFor
// after it was recorded, 72 hours by default); a permanent one (5xx to
// MAIL, RCPT or DATA), or a mail still unsent then, becomes StateFailed
// and a dead letter on eiam.dead.outbox.
package outbox

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// Name is the outbox's stage name: its consumer, its dead letters
// (eiam.dead.outbox), metrics and logs.
const Name = "outbox"

// Subject carries the delivery requests (in pipeline.StreamTasks).
var Subject = event.ActionSubject("outbox")

// TypeSend is the type of a delivery request event.
const TypeSend = "ch.eiamtriage.outbox.send.v1"

// sendRequest is a delivery request's payload.
type sendRequest struct {
	ID string `json:"id"`
	// Resend is the operator's resend this request is for (0: the first
	// request).
	Resend int `json:"resend,omitempty"`
}

// Defaults of Options.
const (
	DefaultRetryFor = 72 * time.Hour
	DefaultTimeout  = 2 * time.Minute
	DefaultWorkers  = 4
)

// DefaultBackoff is the delay before each retry of a temporarily failing
// mail; the last repeats.
var DefaultBackoff = []time.Duration{30 * time.Second, time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute}

// TLSMode says how the connection to the relay is protected.
type TLSMode string

const (
	// TLSStartTLS: plain TCP, then STARTTLS before anything else (port
	// 587); a relay that does not offer it is not used.
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit: TLS from the first byte (port 465).
	TLSImplicit TLSMode = "implicit"
	// TLSNone: no TLS; for a relay on this host only (internal/config
	// refuses it for any other).
	TLSNone TLSMode = "none"
)

// Relay is the SMTP server the outbox hands its mail to.
type Relay struct {
	// Address is host:port. Empty: no relay; every attempt fails
	// temporarily with ErrNoRelay, which the entries show.
	Address string
	TLS     TLSMode
	// TLSConfig verifies the relay's certificate (nil: the system's
	// roots, the server name from Address). Tests pass a pool with their
	// own CA as RootCAs.
	TLSConfig *tls.Config
	// Username and Password authenticate with AUTH PLAIN; an empty
	// Username sends no AUTH.
	Username, Password string
	// HeloName is the name in EHLO (default: this host's name).
	HeloName string
	// Timeout bounds one SMTP transaction, connection included (default
	// DefaultTimeout).
	Timeout time.Duration
}

// Options configure an Outbox. From is required.
type Options struct {
	// From is the sender, as in smtp.from: "eiamtriage <triage@be.ch>".
	// Its address is the envelope sender and X-Loop, its domain the
	// Message-IDs'.
	From string
	// DryRun records and renders every mail and sends none (StateDryRun).
	DryRun bool
	Relay  Relay
	// RetryFor is how long temporary failures are retried, counted from
	// when the mail was recorded or resent (default DefaultRetryFor).
	RetryFor time.Duration
	// Backoff is the delay after the n-th failed delivery (default
	// DefaultBackoff; the last repeats).
	Backoff []time.Duration
	// AckWait is the delivery consumer's ack wait: how long a delivery
	// whose worker died stays unanswered before it is delivered again
	// (default Relay.Timeout + 1 minute). The handler's own time is 7/10
	// of it.
	AckWait time.Duration
	// Workers is how many mails are sent at once (default
	// DefaultWorkers), each over a connection of its own.
	Workers int
	// Now is the clock (default time.Now); Log defaults to a no-op.
	Now func() time.Time
	Log *zap.Logger
}

// Outbox is the outbox over its JetStream ledger. Build it with Open; it is
// safe for concurrent use.
type Outbox struct {
	js     jetstream.JetStream
	ledger ledger
	obj    jetstream.ObjectStore
	opts   Options
	from   string // the sender's address
	status *pipeline.Status
}

// Open returns the outbox on the ledger bucket and mail store that
// pipeline.EnsureOutbox creates (they must exist), and the delivery
// requests' stream of pipeline.EnsureStreams.
func Open(ctx context.Context, js jetstream.JetStream, opts Options) (*Outbox, error) {
	if js == nil {
		return nil, errors.New("outbox: nil JetStream context; open a broker first")
	}
	from, err := parseAddress(opts.From)
	if err != nil {
		return nil, fmt.Errorf("outbox: sender %+q (smtp.from): %v", opts.From, err)
	}
	if opts.RetryFor <= 0 {
		opts.RetryFor = DefaultRetryFor
	}
	if len(opts.Backoff) == 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.Relay.Timeout <= 0 {
		opts.Relay.Timeout = DefaultTimeout
	}
	if opts.Relay.TLS == "" {
		opts.Relay.TLS = TLSStartTLS
	}
	switch opts.Relay.TLS {
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		return nil, fmt.Errorf("outbox: TLS mode %+q: use %s, %s or %s", opts.Relay.TLS, TLSImplicit, TLSStartTLS, TLSNone)
	}
	if opts.AckWait <= 0 {
		opts.AckWait = opts.Relay.Timeout + time.Minute
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	kv, err := js.KeyValue(ctx, pipeline.BucketOutbox)
	if err != nil {
		return nil, fmt.Errorf("outbox: open the ledger bucket %s: %w (pipeline.EnsureOutbox creates it; has `eiamtriage serve` run with this configuration?)", pipeline.BucketOutbox, err)
	}
	obj, err := js.ObjectStore(ctx, pipeline.BucketOutboxMail)
	if err != nil {
		return nil, fmt.Errorf("outbox: open the mail store %s: %w (pipeline.EnsureOutbox creates it)", pipeline.BucketOutboxMail, err)
	}
	return &Outbox{js: js, ledger: ledger{kv: kv}, obj: obj, opts: opts, from: from.Address, status: &pipeline.Status{}}, nil
}

// publishTimeout bounds publishing a delivery request.
const publishTimeout = 30 * time.Second

// Enqueue composes m and records it in the ledger under m.ID before any
// attempt, then schedules its delivery (in dry-run mode it records it as
// StateDryRun and schedules nothing). It is idempotent: when m.ID is in the
// ledger already it changes nothing and returns the existing entry with
// isNew false, however long after the first call. An invalid m is an
// error wrapping ErrInvalid, which no retry mends.
//
// When the ledger holds the entry but scheduling failed (the error says
// so), calling Enqueue again schedules it.
func (o *Outbox) Enqueue(ctx context.Context, m Message) (e Entry, isNew bool, err error) {
	if err := ValidID(m.ID); err != nil {
		return Entry{}, false, err
	}
	if e, _, err := o.ledger.get(ctx, m.ID); err == nil {
		return e, false, o.reschedule(ctx, e)
	} else if !errors.Is(err, ErrNotFound) {
		return Entry{}, false, err
	}
	now := o.opts.Now()
	raw, err := Compose(m, o.opts.From, now)
	if err != nil {
		return Entry{}, false, err
	}
	sum := sha256.Sum256(raw)
	e = Entry{
		ID: m.ID, Kind: m.Kind, Case: m.Case, Mailbox: m.Mailbox,
		To: plainAddresses(m.To), Cc: plainAddresses(m.Cc), Subject: m.Subject,
		MessageID: "<" + m.ID + "@" + o.from[strings.LastIndexByte(o.from, '@')+1:] + ">",
		Size:      len(raw), State: StateQueued,
		Created: now.UTC(), Updated: now.UTC(), RetryUntil: now.Add(o.opts.RetryFor).UTC(),
		Object: m.ID + "." + hex.EncodeToString(sum[:8]),
	}
	if o.opts.DryRun {
		e.State, e.Note = StateDryRun, "dry run: rendered and recorded, not sent"
	}
	// The bytes first, under a name of their own: a concurrent Enqueue of
	// the same id stores its rendering under another name and removes it
	// when its entry loses.
	if _, err := o.obj.PutBytes(ctx, e.Object, raw); err != nil {
		return Entry{}, false, fmt.Errorf("outbox: store mail %s (%d bytes) in %s: %w", m.ID, len(raw), pipeline.BucketOutboxMail, err)
	}
	created, err := o.ledger.create(ctx, e)
	if err != nil {
		return Entry{}, false, err
	}
	if !created {
		existing, _, err := o.ledger.get(ctx, m.ID)
		if err != nil {
			return Entry{}, false, err
		}
		if existing.Object != e.Object {
			_ = o.obj.Delete(ctx, e.Object)
		}
		return existing, false, o.reschedule(ctx, existing)
	}
	o.opts.Log.Debug("mail recorded", zap.String("mail", e.ID), zap.String("kind", e.Kind), zap.String("case", e.Case), zap.Int("size", e.Size))
	if e.State == StateDryRun {
		return e, true, nil
	}
	return e, true, o.schedule(ctx, sendRequest{ID: e.ID})
}

// reschedule publishes the first delivery request again for an entry that
// has never been tried: the first Enqueue may have stopped between
// recording and scheduling. A duplicate request is harmless (the delivery
// reads the ledger), and within the stream's duplicate window it is
// dropped.
func (o *Outbox) reschedule(ctx context.Context, e Entry) error {
	if e.State != StateQueued || e.Attempts > 0 || e.Resends > 0 {
		return nil
	}
	return o.schedule(ctx, sendRequest{ID: e.ID})
}

func (o *Outbox) schedule(ctx context.Context, req sendRequest) error {
	id := "outbox." + req.ID
	if req.Resend > 0 {
		id = fmt.Sprintf("outbox.%s.resend.%d", req.ID, req.Resend)
	}
	ev, err := event.New(TypeSend, "eiamtriage/outbox", id, o.opts.Now(), req)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if err := pipeline.Publish(pctx, o.js, Subject, ev); err != nil {
		return fmt.Errorf("outbox: mail %s is recorded but not scheduled for delivery: %w (Enqueue again to schedule it)", req.ID, err)
	}
	return nil
}

// Get returns the entry of the mail id and the mail as rendered. The error
// wraps ErrNotFound when the ledger has no such id.
func (o *Outbox) Get(ctx context.Context, id string) (Entry, []byte, error) {
	if err := ValidID(id); err != nil {
		return Entry{}, nil, fmt.Errorf("outbox: mail %+q: %w", id, ErrNotFound)
	}
	e, _, err := o.ledger.get(ctx, id)
	if err != nil {
		return Entry{}, nil, err
	}
	raw, err := o.raw(ctx, e)
	return e, raw, err
}

func (o *Outbox) raw(ctx context.Context, e Entry) ([]byte, error) {
	raw, err := o.obj.GetBytes(ctx, e.Object)
	if err != nil {
		return nil, fmt.Errorf("outbox: read mail %s (%s) from %s: %w", e.ID, e.Object, pipeline.BucketOutboxMail, err)
	}
	return raw, nil
}

// List returns the entries f selects, oldest first (by Created, then id).
func (o *Outbox) List(ctx context.Context, f Filter) ([]Entry, error) {
	out, err := o.ledger.list(ctx, f)
	sortEntries(out)
	return out, err
}

// ErrInProgress is Resend's error for a mail that is queued or being sent.
var ErrInProgress = errors.New("the mail is being sent")

// Resend sends the mail id again, with the same Message-ID and the bytes
// recorded for it, whatever became of it before (sent, failed, an unknown
// outcome, a dry run): for an operator. Its retries run RetryFor from
// now. A mail still queued or being sent is not touched: the error wraps
// ErrInProgress. A daemon in dry-run mode records the resend as a dry run
// again.
func (o *Outbox) Resend(ctx context.Context, id string) error {
	if err := ValidID(id); err != nil {
		return fmt.Errorf("outbox: mail %+q: %w", id, ErrNotFound)
	}
	for range 5 {
		e, rev, err := o.ledger.get(ctx, id)
		if err != nil {
			return err
		}
		if e.State == StateQueued || e.State == StateSending {
			return fmt.Errorf("outbox: mail %s is %s: %w; wait for its outcome (`eiamtriage outbox list`)", id, e.State, ErrInProgress)
		}
		now := o.opts.Now().UTC()
		was := e.State
		e.Resends++
		e.State, e.Updated, e.NextAttempt = StateQueued, now, time.Time{}
		e.RetryUntil = now.Add(o.opts.RetryFor)
		e.Note = fmt.Sprintf("resend %d by an operator at %s (it was %s); same Message-ID", e.Resends, now.Format(time.RFC3339), was)
		if _, err := o.ledger.put(ctx, e, rev); err != nil {
			if errors.Is(err, errConflict) {
				continue
			}
			return err
		}
		return o.schedule(ctx, sendRequest{ID: id, Resend: e.Resends})
	}
	return fmt.Errorf("outbox: resend %s: the entry kept changing; try again", id)
}

// plainAddresses keeps what the user gave, for the ledger.
func plainAddresses(list []string) []string {
	if len(list) == 0 {
		return nil
	}
	return append([]string(nil), list...)
}

func sortEntries(es []Entry) {
	// Insertion order is the watch's (by last update); sort for people.
	slices.SortFunc(es, func(a, b Entry) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}
