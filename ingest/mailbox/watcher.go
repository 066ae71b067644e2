// Package mailbox watches one IMAP folder of a configured mailbox and
// takes every mail that arrives in it into the pipeline, exactly as
// `eiamtriage publish` does: through ingest.Intake.Submit, which reads the
// mail (notice parser, sender check) and publishes its mail-received
// event.
//
// What it guarantees:
//   - Nothing is lost: a folder's checkpoint (UIDVALIDITY and the last UID,
//     in the bucket pipeline.BucketMailboxCheckpoints) moves only over UIDs
//     whose Submit returned (JetStream acknowledged the event, or had it
//     already) or that became a dead letter, in order; a UID that failed
//     or that the server did not return is fetched again. A mail that can
//     never be taken in (over the size limit, or failing until
//     pipeline.max_deliver attempts) becomes a dead letter naming mailbox,
//     folder and UID, so that the mails behind it are not blocked.
//   - Nothing is taken twice: event ids derive from the mail's bytes, so a
//     mail submitted again (after a crash, a UIDVALIDITY change) is the
//     same event or a notice its case already holds.
//   - One daemon per mailbox: a lease (pipeline.BucketMailboxLeases) that
//     expires pipeline.MailboxLeaseTTL after its holder stops renewing it.
//   - The folder is left alone until a mail is taken in: then keep, \Seen,
//     or MOVE (COPY, then \Deleted and UID EXPUNGE with UIDPLUS; never a
//     plain EXPUNGE), notices and other mail each as configured.
//   - A silent connection is noticed: go-imap takes no context and IDLE has
//     no read deadline, so every command runs under a timer that closes
//     the connection, and an idle connection is proved alive with NOOP
//     every poll interval.
package mailbox

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eiamtriage/eiamtriage/ingest"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// Submitter takes one raw mail into the pipeline: ingest.Intake.
type Submitter interface {
	Submit(ctx context.Context, raw []byte, mailbox, source string) (ingest.Receipt, error)
}

// Options configure a Watcher. OptionsFor builds them from the
// configuration; zero values of the tuning fields take the defaults.
type Options struct {
	// Mailbox is the configured mailbox's name.
	Mailbox string
	// Address is host:port; TLS is config.TLSImplicit, TLSStartTLS or
	// TLSNone. TLSConfig (nil: the system's roots, the address's host as
	// the server name) is for tests and private CAs.
	Address   string
	TLS       string
	TLSConfig *tls.Config
	// Username logs in with Password, or with a token from Token and
	// Mechanism (config.MechanismXOAuth2 or MechanismOAuthBearer).
	Username  string
	Password  string
	Token     TokenSource
	Mechanism string
	// Folder is the watched folder.
	Folder string
	// After applies to notices that become cases, AfterOther to every
	// other mail (config.AfterKeep, AfterSeen, AfterMove); MoveTo is the
	// target of AfterMove.
	After, AfterOther, MoveTo string
	// PollInterval: how often a server without IDLE is searched, and an
	// idling connection proved alive. SweepInterval: how often the folder
	// is searched whatever IDLE says. UnreachableAfter: how long the
	// server may be silent before Ready fails.
	PollInterval, SweepInterval, UnreachableAfter time.Duration
	// MaxSize is the size limit of one mail (pipeline.max_mail_size).
	MaxSize int64
	// MaxAttempts is how often a mail is fetched or submitted before it
	// becomes a dead letter (pipeline.max_deliver); Retry the delays
	// between attempts (pipeline.backoff), the last repeating.
	MaxAttempts int
	Retry       []time.Duration

	// Intake submits each mail; JS holds the checkpoint and lease buckets
	// and the dead letters (pipeline.EnsureStreams creates them).
	Intake Submitter
	JS     jetstream.JetStream
	// Holder names this daemon in the lease (ThisProcess).
	Holder Holder

	// Tuning (zero: the default). CommandTimeout bounds each IMAP
	// command, and each message of a FETCH (default 1m). Batch is the
	// number of UIDs fetched by one UID FETCH (500), Workers the number of
	// mails submitted at once (8), InFlight the bytes of mail read and not
	// yet submitted (32 MiB). BackoffMin and BackoffMax bound the delay
	// before reconnecting (1s, 5m). LeaseTTL is the lease's lifetime
	// (pipeline.MailboxLeaseTTL); it is renewed every third of it.
	CommandTimeout         time.Duration
	Batch, Workers         int
	InFlight               int64
	BackoffMin, BackoffMax time.Duration
	LeaseTTL               time.Duration

	Clock   Clock // nil: SystemClock
	Log     *zap.Logger
	Metrics *Metrics
	// Rand is the jitter's source in [0, 1) (nil: math/rand/v2).
	Rand func() float64
}

// OptionsFor returns the options the configuration gives the watched
// mailbox m, for intake and js. The caller sets Holder, Log and Metrics.
func OptionsFor(cfg *config.Config, m *config.Mailbox, intake Submitter, js jetstream.JetStream) Options {
	o := Options{
		Mailbox: m.Name, Address: m.Address, TLS: m.TLS, Username: m.Username, Password: m.Password,
		Folder: m.Folder, After: m.After, AfterOther: m.AfterOther, MoveTo: m.MoveTo,
		PollInterval: time.Duration(m.PollInterval), SweepInterval: time.Duration(m.SweepInterval),
		UnreachableAfter: time.Duration(m.UnreachableAfter),
		MaxSize:          int64(cfg.Pipeline.MaxMailSize), MaxAttempts: cfg.Pipeline.MaxDeliver, Retry: cfg.Pipeline.Delays(),
		Intake: intake, JS: js,
	}
	if m.RootCAs != nil {
		o.TLSConfig = &tls.Config{RootCAs: m.RootCAs, MinVersion: tls.VersionTLS12}
	}
	if m.OAuth2.Enabled() {
		o.Mechanism = m.OAuth2.Mechanism
		if m.OAuth2.TokenFile != "" {
			o.Token = TokenFile(m.OAuth2.TokenFile)
		} else {
			o.Token = TokenCommand(m.OAuth2.TokenCommand)
		}
	}
	return o
}

// Watcher watches one folder of one mailbox. Build it with New and call
// Run once.
type Watcher struct {
	o      Options
	log    *zap.Logger
	clock  Clock
	status status

	// The state of the folder's UIDs above the checkpoint, kept across
	// sessions of one lease.
	cp    Checkpoint
	above map[uint32]*uidState
}

// uidState is what is known of one UID above the checkpoint.
type uidState struct {
	attempts  int
	lastErr   error
	submitted bool   // Submit returned, or it became a dead letter
	action    string // what remains to be done in the folder: keep (nothing), seen, move
	notBefore time.Time
}

// New checks the options and returns a watcher.
func New(o Options) (*Watcher, error) {
	switch {
	case o.Mailbox == "" || o.Address == "" || o.Folder == "":
		return nil, errors.New("mailbox: a watcher needs a mailbox name, an address and a folder")
	case o.Intake == nil || o.JS == nil:
		return nil, fmt.Errorf("mailbox %s: a watcher needs an intake and JetStream", o.Mailbox)
	case o.Token == nil && o.Password == "":
		return nil, fmt.Errorf("mailbox %s: no password and no OAuth token source", o.Mailbox)
	}
	for _, a := range []string{o.After, o.AfterOther} {
		switch a {
		case "", config.AfterKeep, config.AfterSeen:
		case config.AfterMove:
			if o.MoveTo == "" {
				return nil, fmt.Errorf("mailbox %s: after move without a folder to move to", o.Mailbox)
			}
		default:
			return nil, fmt.Errorf("mailbox %s: unknown after %q", o.Mailbox, a)
		}
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.PollInterval, time.Duration(config.DefaultPollInterval))
	def(&o.SweepInterval, time.Duration(config.DefaultSweepInterval))
	def(&o.UnreachableAfter, time.Duration(config.DefaultUnreachableAfter))
	def(&o.CommandTimeout, time.Minute)
	def(&o.BackoffMin, time.Second)
	def(&o.BackoffMax, 5*time.Minute)
	def(&o.LeaseTTL, pipeline.MailboxLeaseTTL)
	if o.After == "" {
		o.After = config.AfterKeep
	}
	if o.AfterOther == "" {
		o.AfterOther = config.AfterKeep
	}
	if o.TLS == "" {
		o.TLS = config.TLSImplicit
	}
	if o.Mechanism == "" {
		o.Mechanism = config.MechanismXOAuth2
	}
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.InFlight <= 0 {
		o.InFlight = 32 << 20
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if len(o.Retry) == 0 {
		o.Retry = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute}
	}
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	w := &Watcher{o: o, clock: o.Clock, above: map[uint32]*uidState{}}
	w.log = o.Log.With(zap.String("mailbox", o.Mailbox))
	w.status.s = Snapshot{Mailbox: o.Mailbox, State: StateStarting}
	o.Metrics.add(w)
	return w, nil
}

// Status returns the watcher's current status.
func (w *Watcher) Status() Snapshot { return w.status.snapshot() }

// Ready reports whether the mailbox is watched: an error saying since when
// its server has been unreachable or silent, once that is longer than
// UnreachableAfter, and the last failure; nil while another daemon holds
// the mailbox. Serve's /readyz shows it after the part's name, "mailbox
// <name>: ...".
func (w *Watcher) Ready(context.Context) error {
	return w.Status().ready(w.clock.Now(), w.o.Address, w.o.UnreachableAfter)
}

// Run watches the mailbox until ctx ends, then releases it and returns
// nil. Failures of the server or of NATS are retried (and shown by Ready
// and the metrics); Run returns an error only when the buckets are
// missing.
func (w *Watcher) Run(ctx context.Context) error {
	now := w.clock.Now()
	w.status.update(func(s *Snapshot) { s.Started, s.State = now, StateStarting })
	defer w.status.update(func(s *Snapshot) { s.State, s.Connected, s.LeaseHeld = StateStopped, false, false })
	if w.o.Holder.Host == "" && w.o.Holder.PID == 0 {
		w.o.Holder = ThisProcess("", now)
	}
	ls, err := openLease(ctx, w.o.JS, w.o.Mailbox, w.o.Holder)
	if err != nil {
		return err
	}
	cps, err := openCheckpoints(ctx, w.o.JS, w.o.Mailbox, w.o.Folder)
	if err != nil {
		return err
	}
	renewEvery := w.o.LeaseTTL / 3
	var lastHolder Holder
	var lastErr string
	for ctx.Err() == nil {
		held, holder, err := ls.acquire(ctx)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				break
			}
			if msg := err.Error(); msg != lastErr {
				w.log.Warn("cannot take the mailbox's lease; trying again", zap.Error(err))
				lastErr = msg
			}
			w.status.update(func(s *Snapshot) { s.LastErr = err })
		case !held:
			if holder != lastHolder {
				w.log.Info("another daemon watches the mailbox: standing by", zap.Stringer("holder", holder))
				lastHolder = holder
			}
			w.status.update(func(s *Snapshot) { s.State, s.Holder, s.LeaseHeld = StateStandby, holder, false })
		default:
			lastHolder, lastErr = Holder{}, ""
			w.log.Info("watching the mailbox", zap.String("address", w.o.Address), zap.String("folder", w.o.Folder))
			w.status.update(func(s *Snapshot) {
				s.State, s.Holder, s.LeaseHeld, s.Watching = StateConnecting, Holder{}, true, w.clock.Now()
			})
			err := w.holding(ctx, ls, cps, renewEvery)
			w.status.update(func(s *Snapshot) { s.LeaseHeld, s.Connected = false, false })
			if ctx.Err() != nil {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				if err := ls.release(rctx); err != nil {
					w.log.Warn("cannot release the mailbox's lease; another daemon takes over when it expires", zap.Error(err))
				}
				cancel()
				return nil
			}
			w.log.Warn("no longer watching the mailbox", zap.Error(err))
			continue
		}
		if err := w.sleep(ctx, renewEvery); err != nil {
			break
		}
	}
	return nil
}

// holding watches the mailbox while the lease is this daemon's: sessions
// with reconnects, and the lease renewed beside them. It returns when ctx
// ends or the lease is lost.
func (w *Watcher) holding(ctx context.Context, ls *lease, cps *checkpoints, renewEvery time.Duration) error {
	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		last := w.clock.Now()
		for {
			if w.sleep(lctx, renewEvery) != nil {
				return
			}
			err := ls.renew(lctx)
			switch {
			case err == nil:
				last = w.clock.Now()
			case errors.Is(err, errLeaseLost):
				cancel(err)
				return
			case w.clock.Now().Sub(last) > w.o.LeaseTTL-renewEvery:
				// It may expire before the next try: stop taking in
				// before another daemon starts.
				cancel(fmt.Errorf("mailbox %s: the lease could not be renewed for %s: %w", w.o.Mailbox, w.clock.Now().Sub(last), err))
				return
			default:
				w.log.Warn("cannot renew the mailbox's lease; trying again", zap.Error(err))
			}
		}
	}()
	defer func() { <-renewed }()
	defer cancel(nil)

	cp, err := cps.load(lctx)
	for err != nil {
		w.status.update(func(s *Snapshot) { s.LastErr = err })
		if w.sleep(lctx, w.o.BackoffMin) != nil {
			return context.Cause(lctx)
		}
		cp, err = cps.load(lctx)
	}
	w.cp, w.above = cp, map[uint32]*uidState{}
	w.status.update(func(s *Snapshot) { s.Checkpoint = cp })

	attempt := 0
	for {
		progressed, err := w.session(lctx, cps)
		if lctx.Err() != nil {
			return context.Cause(lctx)
		}
		if errors.Is(err, errLeaseLost) {
			return err
		}
		if errors.Is(err, errReauth) {
			w.log.Info("logging in again with a fresh OAuth token")
			continue
		}
		if progressed {
			attempt = 0
		}
		d := backoff(attempt, w.o.BackoffMin, w.o.BackoffMax, w.o.Rand)
		attempt++
		w.log.Warn("IMAP connection failed; reconnecting", zap.Error(err), zap.Duration("in", d))
		w.status.update(func(s *Snapshot) {
			s.State, s.Connected, s.LastErr = StateBackoff, false, err
			s.Reconnects++
		})
		if w.sleep(lctx, d) != nil {
			return context.Cause(lctx)
		}
	}
}

// backoff is the delay before reconnect attempt n (0 first): min doubled
// n times, at most max, then jittered to a random point in its upper half
// so that daemons restarted together do not reconnect in step.
func backoff(n int, minD, maxD time.Duration, rnd func() float64) time.Duration {
	d := minD
	for i := 0; i < n && d < maxD; i++ {
		d *= 2
	}
	d = min(d, maxD)
	return d/2 + time.Duration(rnd()*float64(d/2))
}

// sleep waits d on the watcher's clock; it returns ctx's error when ctx
// ends first.
func (w *Watcher) sleep(ctx context.Context, d time.Duration) error {
	t := w.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

// source is the Submit source of a UID: imap:<mailbox>/<folder>/<uidvalidity>/<uid>.
func (w *Watcher) source(uidValidity, uid uint32) string {
	return "imap:" + w.o.Mailbox + "/" + w.o.Folder + "/" + strconv.FormatUint(uint64(uidValidity), 10) + "/" + strconv.FormatUint(uint64(uid), 10)
}
