package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Defaults applied by Run to zero ConsumerConfig fields; the same as the
// configuration's (internal/config), for code that runs a stage without one.
const (
	DefaultMaxDeliver      = 5
	DefaultAckWait         = 30 * time.Second
	DefaultWorkers         = 32
	DefaultYieldFor        = 2 * time.Second
	DefaultShutdownGrace   = 10 * time.Second
	DefaultPendingInterval = 15 * time.Second
)

// DefaultBackoff is the nak delay after the 1st, 2nd, 3rd and later failed
// deliveries.
var DefaultBackoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute}

// deadLetterTimeout bounds one dead-letter publish, retries included
// (a variable for tests).
var deadLetterTimeout = 10 * time.Second

const (
	settleTimeout = 5 * time.Second // confirmed ack, consumer creation
	restartMin    = 100 * time.Millisecond
	restartMax    = 10 * time.Second
	stableAfter   = time.Minute // a consumption that ran this long resets the restart backoff
	termReasonMax = 256
	pullExpiry    = 3 * time.Second

	maxAbandonAfter = 5 * time.Second // the default AbandonAfter's upper bound
	shutdownAbandon = time.Second     // after the grace, before handlers are abandoned
)

// ConsumerConfig describes one stage's durable pull consumer and how Run
// drives it.
type ConsumerConfig struct {
	// Stream to consume (required) and Durable consumer name (default:
	// Stage). FilterSubject narrows the stream's subjects (empty: all).
	Stream, Durable, FilterSubject string
	// Stage names the stage in the dead-letter subject eiam.dead.<Stage>,
	// metrics and logs (required; one subject token).
	Stage string
	// MaxDeliver is how many deliveries a temporarily failing message gets
	// before it is dead-lettered (default DefaultMaxDeliver).
	MaxDeliver int
	// Backoff gives the nak delay after the n-th failed delivery
	// (Backoff[n-1], the last entry for later ones). Default DefaultBackoff.
	Backoff []time.Duration
	// AckWait is how long the server waits for a settlement before it
	// redelivers (default DefaultAckWait).
	AckWait time.Duration
	// MaxAckPending bounds delivered-but-unsettled messages, naks waiting
	// out their delay included (0: server default, 1000).
	MaxAckPending int
	// Workers is how many handlers run at once (default DefaultWorkers).
	Workers int
	// HandlerTimeout bounds one handler call through its ctx (default 4/5
	// of AckWait; must be below AckWait). While a handler runs, Run tells
	// the server every AckWait/3 that the message is in progress, so the
	// server never hands it to another worker meanwhile.
	HandlerTimeout time.Duration
	// AbandonAfter is how long a handler may take to return once its ctx
	// ended (default AckWait/5, at most 5 s). A handler still running then
	// ignores its ctx: Run abandons it. Past its own deadline, its message
	// is dead-lettered (ReasonOverrun) and terminated, never delivered
	// again: it would hold another worker the same way. The abandoned
	// handler keeps its worker until it returns (Status.Stuck counts
	// them), so that such handlers never outnumber Workers.
	AbandonAfter time.Duration
	// ShutdownGrace is how long in-flight handlers may go on after Run's
	// ctx ended before their ctx is cancelled (default
	// DefaultShutdownGrace). Those that have not returned a second later
	// are abandoned and their messages handed back: Run returns within
	// ShutdownGrace and a second however its handlers behave.
	ShutdownGrace time.Duration
	// PendingInterval is how often Run refreshes the consumer-lag gauge
	// (default DefaultPendingInterval; only with Metrics).
	PendingInterval time.Duration
	// First, when not nil, counts the messages this consumer has in hand,
	// for the consumers that yield to it (see Precedence).
	First *Precedence
	// YieldTo, when not nil, makes this consumer wait before each fetch
	// while the stage that comes first has messages in hand, at most
	// YieldFor (default DefaultYieldFor) at a time.
	YieldTo  *Precedence
	YieldFor time.Duration
	// Status, when not nil, is kept up to date with whether the consumer
	// is consuming (see Ready).
	Status *Status
	// Now stamps dead letters (default time.Now).
	Now func() time.Time
}

func (c ConsumerConfig) withDefaults() ConsumerConfig {
	if c.Durable == "" {
		c.Durable = c.Stage
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if len(c.Backoff) == 0 {
		c.Backoff = DefaultBackoff
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.HandlerTimeout == 0 {
		c.HandlerTimeout = c.AckWait * 4 / 5
	}
	if c.AbandonAfter == 0 {
		c.AbandonAfter = min(c.AckWait/5, maxAbandonAfter)
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
	if c.PendingInterval == 0 {
		c.PendingInterval = DefaultPendingInterval
	}
	if c.YieldTo != nil && c.YieldFor == 0 {
		c.YieldFor = DefaultYieldFor
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c ConsumerConfig) validate() error {
	if c.Stream == "" {
		return errors.New("pipeline: consumer config without stream; set the stream to consume")
	}
	if err := event.ValidToken(c.Stage); err != nil {
		return fmt.Errorf("pipeline: consumer of stream %s: stage name: %w", c.Stream, err)
	}
	switch {
	case c.MaxDeliver < 1:
		return fmt.Errorf("pipeline: stage %s: max deliver %d: use 1 or more", c.Stage, c.MaxDeliver)
	case c.Workers < 1:
		return fmt.Errorf("pipeline: stage %s: %d workers: use 1 or more", c.Stage, c.Workers)
	case c.AckWait < 0 || c.HandlerTimeout <= 0 || c.HandlerTimeout >= c.AckWait:
		return fmt.Errorf("pipeline: stage %s: handler timeout %s must be positive and below ack wait %s", c.Stage, c.HandlerTimeout, c.AckWait)
	case c.AbandonAfter < 0 || c.ShutdownGrace < 0 || c.PendingInterval < 0 || c.MaxAckPending < 0 || c.YieldFor < 0:
		return fmt.Errorf("pipeline: stage %s: negative shutdown grace, pending interval, max ack pending or yield time", c.Stage)
	case c.First != nil && c.First == c.YieldTo:
		return fmt.Errorf("pipeline: stage %s: yields to itself (First and YieldTo are one Precedence)", c.Stage)
	}
	for _, d := range c.Backoff {
		if d < 0 {
			return fmt.Errorf("pipeline: stage %s: negative backoff %s", c.Stage, d)
		}
	}
	return nil
}

// Run consumes cfg.Stream through the durable pull consumer cfg.Durable,
// creating or updating it (explicit ack, no inactivity threshold, unlimited
// server-side deliveries: see the package documentation), and calls h for
// each message with up to cfg.Workers calls at once. It settles every
// message by the package's policy and is the only code that does.
//
// Run pulls with explicit fetches of as many messages as it has free
// workers (so that no fetched message waits for one), each bounded to a
// few seconds, and supervises them: when fetching fails for good (the
// consumer was deleted, the connection closed) or cannot start (no stream
// yet), Run recreates the consumer with backoff until ctx ends, reporting
// through cfg.Status.
//
// A handler is bounded: its ctx ends after cfg.HandlerTimeout; while it
// runs its message is kept in progress, so no second worker ever holds
// it; a handler that ignores its ctx is abandoned (see AbandonAfter) and
// its message dead-lettered on that delivery. Deliveries are counted when
// a message arrives: one delivered more than cfg.MaxDeliver times (the
// earlier deliveries ended without a result: the process stopped or was
// killed while handling it) is dead-lettered without calling h again.
//
// When ctx ends Run stops fetching, naks the messages of the last fetch
// that no worker took (they are redelivered at once to whoever consumes
// next; any the client still held come back after AckWait), lets the
// handlers in flight finish, settles their messages and returns nil. The
// handlers' ctx is not cancelled with Run's: it lasts cfg.ShutdownGrace
// more (and never more than cfg.HandlerTimeout per call); a temporary
// failure during shutdown is nak'ed without delay and never dead-lettered.
// A handler still running a second after the grace is abandoned and its
// message nak'ed. A message is acked only after its handler returned nil.
// Run returns an error only for an invalid cfg, a nil h or a nil js; m may
// be nil (no metrics), and so may log.
func Run(ctx context.Context, js jetstream.JetStream, cfg ConsumerConfig, h Handler, log *zap.Logger, m *Metrics) error {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	if h == nil {
		return fmt.Errorf("pipeline: stage %s: nil handler", cfg.Stage)
	}
	if js == nil {
		return fmt.Errorf("pipeline: stage %s: nil JetStream context; open a broker first", cfg.Stage)
	}
	if log == nil {
		log = zap.NewNop()
	}
	r := &runner{
		js:  js,
		cfg: cfg,
		h:   h,
		log: log.With(zap.String("stage", cfg.Stage), zap.String("stream", cfg.Stream), zap.String("consumer", cfg.Durable)),
		m:   m,
		ctx: ctx,
	}
	m.init(cfg.Stage)
	return r.run()
}

type runner struct {
	js  jetstream.JetStream
	cfg ConsumerConfig
	h   Handler
	log *zap.Logger
	m   *Metrics
	ctx context.Context // Run's: its end starts the shutdown

	// slots holds a token per worker busy with a message (a handler
	// running, or abandoned and not returned yet).
	slots chan struct{}
	// stopping is closed when the fetching has stopped for good, and
	// abandonAll when Run stops waiting for the handlers still running.
	stopping, abandonAll chan struct{}
	stuck                atomic.Int64 // abandoned handlers not returned yet
}

func (r *runner) run() error {
	// Handlers get a context that outlives r.ctx by the shutdown grace.
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(r.ctx))
	defer cancelHandlers()
	r.slots = make(chan struct{}, r.cfg.Workers)
	r.stopping = make(chan struct{})
	r.abandonAll = make(chan struct{})
	r.cfg.Status.setWorkers(r.cfg.Workers, &r.stuck)

	var lag sync.WaitGroup
	if r.m != nil {
		lag.Go(r.refreshPending)
	}

	// deliver runs on the fetch loop's goroutine with a slot taken for
	// jm, so it has returned for good once supervise has. After ctx ended
	// it starts nothing more: a message not yet started is nak'ed and
	// comes back at once to whoever consumes next.
	var handlers sync.WaitGroup
	deliver := func(jm jetstream.Msg, fetchedAt time.Time) {
		if r.ctx.Err() != nil {
			r.nakUnstarted(jm)
			r.release(1)
			return
		}
		r.cfg.First.add(1)
		handlers.Go(func() {
			defer r.release(1)
			defer r.cfg.First.add(-1)
			r.handle(hctx, fetched{jm: jm, at: fetchedAt})
		})
	}

	r.supervise(deliver)

	r.setStatus(false, errors.New("stopping: the handlers in flight finish"))
	close(r.stopping)
	grace := time.AfterFunc(r.cfg.ShutdownGrace, func() {
		r.log.Warn("shutdown grace period over; cancelling the handlers still running", zap.Duration("grace", r.cfg.ShutdownGrace))
		cancelHandlers()
		time.AfterFunc(shutdownAbandon, func() { close(r.abandonAll) })
	})
	handlers.Wait()
	grace.Stop()
	lag.Wait()
	r.setStatus(false, errors.New("stopped"))
	r.log.Info("consumer stopped")
	return nil
}

// acquire waits until at least one worker is free and takes up to max
// free ones, returning how many it took (0 when r.ctx ended first).
func (r *runner) acquire(max int) int {
	select {
	case r.slots <- struct{}{}:
	case <-r.ctx.Done():
		return 0
	}
	n := 1
	for n < max {
		select {
		case r.slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

// release frees n workers.
func (r *runner) release(n int) {
	for range n {
		<-r.slots
	}
}

// supervise creates the consumer and consumes until r.ctx ends, recreating
// the consumption whenever it stops or fails to start.
func (r *runner) supervise(deliver func(jetstream.Msg, time.Time)) {
	ccfg := jetstream.ConsumerConfig{
		Durable:       r.cfg.Durable,
		Description:   "eiamtriage stage " + r.cfg.Stage,
		FilterSubject: r.cfg.FilterSubject,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       r.cfg.AckWait,
		MaxDeliver:    -1, // Run counts deliveries and dead-letters itself.
		MaxAckPending: r.cfg.MaxAckPending,
	}
	wait := restartMin
	var lastErr string
	for r.ctx.Err() == nil {
		cons, err := r.start(ccfg)
		if err != nil && r.ctx.Err() != nil {
			return // shutting down: the failure is ours
		}
		if err != nil {
			r.setStatus(false, err)
			if err.Error() != lastErr {
				r.log.Warn("consumer not running; retrying", zap.Error(err), zap.Duration("retry_in", wait))
				lastErr = err.Error()
			} else {
				r.log.Debug("consumer still not running; retrying", zap.Error(err), zap.Duration("retry_in", wait))
			}
			sleep(r.ctx, wait)
			wait = min(2*wait, restartMax)
			continue
		}
		r.setStatus(true, nil)
		r.log.Info("consumer running", zap.String("filter", r.cfg.FilterSubject), zap.Int("workers", r.cfg.Workers))
		lastErr = ""
		began := time.Now()
		err = r.fetchLoop(cons, deliver)
		if r.ctx.Err() != nil {
			return
		}
		if time.Since(began) > stableAfter {
			wait = restartMin // it ran well: not a flapping consumer
		}
		r.setStatus(false, err)
		r.log.Warn("consumption stopped; recreating the consumer", zap.Error(err), zap.Duration("retry_in", wait))
		sleep(r.ctx, wait)
		wait = min(2*wait, restartMax)
	}
}

// start creates or updates the durable consumer.
func (r *runner) start(ccfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	cctx, cancel := context.WithTimeout(r.ctx, settleTimeout)
	defer cancel()
	cons, err := r.js.CreateOrUpdateConsumer(cctx, r.cfg.Stream, ccfg)
	if err != nil {
		return nil, fmt.Errorf("pipeline: stage %s: create or update consumer %s on stream %s: %w", r.cfg.Stage, r.cfg.Durable, r.cfg.Stream, err)
	}
	if info := cons.CachedInfo(); info != nil {
		r.m.setPending(r.cfg.Stage, info.NumPending)
	}
	return cons, nil
}

// fetchLoop pulls batches of as many messages as there are free workers,
// each pull bounded by pullExpiry, and hands them to deliver, until r.ctx
// ends (nil) or a pull
// fails in a way a new pull on the same consumer cannot mend (the error:
// the consumer is recreated).
//
// Explicit fetches, not jetstream's Consume: under load Consume's
// bookkeeping of outstanding pulls can go wrong so that the server holds no
// pull while the client waits for one (nats.go issue #1622; seen here as
// deliveries stopping for the length of a pull, with "no heartbeat
// received"). A fetch is one request with its own expiry: nothing to drift.
func (r *runner) fetchLoop(cons jetstream.Consumer, deliver func(jetstream.Msg, time.Time)) error {
	failures := 0
	for r.ctx.Err() == nil {
		// Cancelled with r.ctx, so that shutdown does not wait out the
		// pull: what the fetch still yields is nak'ed by deliver; what
		// the client held but no longer yields comes back after AckWait.
		r.cfg.YieldTo.wait(r.ctx, r.cfg.YieldFor)
		free := r.acquire(r.cfg.Workers)
		if free == 0 {
			return nil // r.ctx ended
		}
		fctx, cancel := context.WithTimeout(r.ctx, pullExpiry)
		batch, err := cons.Fetch(free, jetstream.FetchContext(fctx))
		if err == nil {
			fetchedAt := time.Now() // a message's wait for a worker counts from here
			for jm := range batch.Messages() {
				if free == 0 {
					// More than asked for: never, but a message must not
					// run without a worker.
					r.nakUnstarted(jm)
					continue
				}
				free--
				deliver(jm, fetchedAt) // takes over one slot
			}
			err = batch.Error()
		}
		r.release(free)
		cancel()
		switch {
		case err == nil, errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
			errors.Is(err, jetstream.ErrNoMessages), r.ctx.Err() != nil:
			failures = 0
		case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound),
			errors.Is(err, nats.ErrConnectionClosed):
			return fmt.Errorf("pipeline: stage %s: fetch from consumer %s: %w", r.cfg.Stage, r.cfg.Durable, err)
		default:
			// No responders (a consumer between leaders), a lost
			// connection: pull again, after a pause, and recreate the
			// consumer if it keeps failing.
			failures++
			if failures >= 5 {
				return fmt.Errorf("pipeline: stage %s: fetch from consumer %s failed %d times: %w", r.cfg.Stage, r.cfg.Durable, failures, err)
			}
			r.log.Debug("fetch failed; pulling again", zap.Error(err))
			sleep(r.ctx, restartMin*time.Duration(failures))
		}
	}
	return nil
}

func (r *runner) setStatus(running bool, err error) {
	r.cfg.Status.set(r.cfg.Stage, running, err, r.cfg.Now())
	r.m.setRunning(r.cfg.Stage, running)
}

// refreshPending keeps the consumer-lag gauge current until r.ctx ends.
func (r *runner) refreshPending() {
	t := time.NewTicker(r.cfg.PendingInterval)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(r.ctx, settleTimeout)
		c, err := r.js.Consumer(ctx, r.cfg.Stream, r.cfg.Durable)
		cancel()
		if err != nil {
			r.log.Debug("refresh consumer lag", zap.Error(err))
			continue
		}
		r.m.setPending(r.cfg.Stage, c.CachedInfo().NumPending)
	}
}

// nakUnstarted hands back a message fetched while stopping.
func (r *runner) nakUnstarted(jm jetstream.Msg) {
	if err := jm.Nak(); err != nil {
		r.log.Debug("nak of an unstarted message failed; it comes back after ack wait", zap.Error(err))
	}
}

// fetched is a message handed to a worker, with when it reached the client.
type fetched struct {
	jm jetstream.Msg
	at time.Time
}

// handle runs the handler on one message, keeping the message in
// progress meanwhile, and settles it.
func (r *runner) handle(hctx context.Context, f fetched) {
	jm := f.jm
	if time.Since(f.at) > r.cfg.AckWait/10 {
		// It waited for a worker: restart the server's ack timer so the
		// handler gets its full time before a redelivery.
		_ = jm.InProgress()
	}
	meta, err := jm.Metadata()
	if err != nil {
		// Not a JetStream message: nothing can be settled, nothing to retry.
		r.log.Error("message without JetStream metadata; terminating it", zap.String("subject", jm.Subject()), zap.Error(err))
		_ = jm.Term()
		return
	}
	m := Msg{
		Subject:      jm.Subject(),
		Data:         jm.Data(),
		Headers:      jm.Headers(),
		Stream:       meta.Stream,
		Sequence:     meta.Sequence.Stream,
		NumDelivered: meta.NumDelivered,
		Timestamp:    meta.Timestamp,
	}
	log := r.log.With(zap.String("subject", m.Subject), zap.Uint64("stream_seq", m.Sequence), zap.Uint64("delivered", m.NumDelivered))

	stop := r.keepInProgress(jm, log)
	defer stop()
	if m.NumDelivered > uint64(r.cfg.MaxDeliver) {
		// The earlier deliveries ended without a result: the process was
		// stopped or killed while handling it (the mail may be what kills
		// it). Counted here, not when a handler returns.
		r.settle(jm, m, fmt.Errorf("pipeline: delivered %d times, more than max_deliver %d: the earlier deliveries ended without a result "+
			"(the process stopped or was killed while handling it, or its handler never returned); not handled again", m.NumDelivered, r.cfg.MaxDeliver), log)
		return
	}

	start := time.Now()
	herr, abandoned := r.call(hctx, m, log)
	r.m.observe(r.cfg.Stage, time.Since(start))
	if abandoned == abandonShutdown {
		// Cut short by the shutdown: handed back, as a handler that
		// failed during shutdown would be; Run goes on stopping.
		if err := jm.Nak(); err != nil {
			log.Debug("nak failed; the message comes back after ack wait", zap.Error(err))
		}
		log.Warn("handler still running after the shutdown grace and its ctx cancelled; abandoned, message handed back", zap.Duration("grace", r.cfg.ShutdownGrace))
		r.m.outcome(r.cfg.Stage, OutcomeRetry)
		return
	}
	r.settle(jm, m, herr, log)
	var o *overrun
	if abandoned == abandonOverrun && errors.As(herr, &o) {
		stop() // settled: no more heartbeats while the worker stays held
		r.waitAbandoned(o)
	}
}

// keepInProgress tells the server every AckWait/3 that jm is still being
// worked on, until the returned stop is called (stop may be called more
// than once).
func (r *runner) keepInProgress(jm jetstream.Msg, log *zap.Logger) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(r.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				if err := jm.InProgress(); err != nil {
					log.Debug("in-progress heartbeat not sent", zap.Error(err))
				}
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			wg.Wait()
		})
	}
}

// How a call ended without its handler returning.
const (
	abandonNone     = iota
	abandonOverrun  // its ctx deadline passed and AbandonAfter more
	abandonShutdown // cancelled by the shutdown, and a second more
)

// call runs the handler with its timeout, turning a panic into a permanent
// error. A handler that does not return AbandonAfter after its ctx ended
// is abandoned: call then returns an *overrun (wrapped Permanent), or, when
// the shutdown cut it short, abandonShutdown; the handler goes on in its
// goroutine, and overrun.done says when it returns.
func (r *runner) call(hctx context.Context, m Msg, log *zap.Logger) (error, int) {
	ctx, cancel := context.WithTimeout(hctx, r.cfg.HandlerTimeout)
	done := make(chan error, 1)
	go func() {
		defer cancel()
		done <- r.run1(ctx, m, log)
	}()
	select {
	case err := <-done:
		return err, abandonNone
	case <-ctx.Done():
	}
	t := time.NewTimer(r.cfg.AbandonAfter)
	defer t.Stop()
	overdue := t.C
	for {
		select {
		case err := <-done:
			return err, abandonNone
		case <-r.abandonAll:
			r.abandoned(ReasonShutdown, done, log)
			return nil, abandonShutdown
		case <-overdue:
			if hctx.Err() != nil {
				// Cancelled by the shutdown, not past its own deadline:
				// it waits for the end of the grace's last second as the
				// others do.
				overdue = nil
				continue
			}
			r.abandoned(ReasonOverrun, done, log)
			return Permanent(&overrun{timeout: r.cfg.HandlerTimeout, after: r.cfg.AbandonAfter, done: done}), abandonOverrun
		}
	}
}

// run1 calls the handler once, turning a panic into a permanent error.
func (r *runner) run1(ctx context.Context, m Msg, log *zap.Logger) (err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("handler panicked", zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			err = Permanent(&panicError{value: p})
		}
	}()
	return r.h(ctx, m)
}

// abandoned counts a handler given up on and, when it returns at last,
// uncounts it.
func (r *runner) abandoned(reason string, done <-chan error, log *zap.Logger) {
	r.stuck.Add(1)
	r.m.abandon(r.cfg.Stage, reason, 1)
	log.Error("handler did not return after its ctx ended; abandoned", zap.String("reason_kind", reason),
		zap.Duration("handler_timeout", r.cfg.HandlerTimeout), zap.Duration("abandon_after", r.cfg.AbandonAfter))
	go func() {
		<-done // a handler that never returns leaves this goroutine with its own
		r.stuck.Add(-1)
		r.m.abandon(r.cfg.Stage, "", -1)
		log.Warn("an abandoned handler returned at last", zap.String("reason_kind", reason))
	}()
}

// waitAbandoned keeps the worker of an abandoned handler held until the
// handler returns or Run stops, so that abandoned handlers never outnumber
// the workers.
func (r *runner) waitAbandoned(o *overrun) {
	select {
	case <-o.done:
	case <-r.stopping:
	}
}

// overrun is the error of a handler abandoned past its deadline.
type overrun struct {
	timeout, after time.Duration
	done           <-chan error
}

func (o *overrun) Error() string {
	return fmt.Sprintf("pipeline: the handler did not return within %s after its deadline of %s (it ignores its context); "+
		"abandoned, and the message is not handled again: it would hold a worker the same way", o.after, o.timeout)
}

// settle applies the policy: the one place that acks, naks and terms.
func (r *runner) settle(jm jetstream.Msg, m Msg, herr error, log *zap.Logger) {
	stage := r.cfg.Stage
	switch {
	case herr == nil:
		// A plain ack: a lost one means a redelivery, which handlers
		// absorb (they are idempotent), and waiting for the server's
		// confirmation costs a round trip per message.
		if err := jm.Ack(); err != nil {
			log.Warn("ack not sent; the message will be redelivered", zap.Error(err))
		} else {
			log.Debug("acked")
		}
		r.m.outcome(stage, OutcomeAck)

	case r.ctx.Err() != nil && !IsPermanent(herr):
		// Shutting down: the failure may be ours (a cancelled ctx), so it
		// neither spends a delivery on backoff nor dead-letters.
		if err := jm.Nak(); err != nil {
			log.Debug("nak failed; the message comes back after ack wait", zap.Error(err))
		}
		log.Info("handler failed during shutdown; message handed back", zap.Error(herr))
		r.m.outcome(stage, OutcomeRetry)

	case IsPermanent(herr) || m.NumDelivered >= uint64(r.cfg.MaxDeliver):
		kind := ReasonMaxDeliver
		var o *overrun
		switch {
		case isPanic(herr):
			kind = ReasonPanic
		case errors.As(herr, &o):
			kind = ReasonOverrun
		case IsPermanent(herr):
			kind = ReasonPermanent
		}
		if err := r.deadLetter(m, herr); err != nil {
			delay := r.backoff(m.NumDelivered)
			log.Error("dead-letter publish failed; message nak'ed to try again", zap.Error(err), zap.NamedError("handler_error", herr), zap.Duration("delay", delay))
			if nerr := jm.NakWithDelay(delay); nerr != nil {
				log.Warn("nak failed; the message comes back after ack wait", zap.Error(nerr))
			}
			r.m.outcome(stage, OutcomeRetry)
			return
		}
		if err := jm.TermWithReason(truncate(herr.Error(), termReasonMax)); err != nil {
			log.Warn("term failed; the message comes back and its dead letter is de-duplicated", zap.Error(err))
		}
		log.Error("message dead-lettered", zap.String("reason_kind", kind), zap.String("dead_subject", event.DeadSubject(stage)), zap.Error(herr))
		r.m.outcome(stage, OutcomeDead)
		r.m.dead(stage, kind)

	default:
		delay := r.backoff(m.NumDelivered)
		if err := jm.NakWithDelay(delay); err != nil {
			log.Warn("nak failed; the message comes back after ack wait", zap.Error(err))
		}
		log.Warn("handler failed; will retry", zap.Error(herr), zap.Duration("delay", delay), zap.Int("max_deliver", r.cfg.MaxDeliver))
		r.m.outcome(stage, OutcomeRetry)
	}
}

// deadLetter publishes m's dead letter. Its event ID is derived from the
// stage, the message's stream position and store time, so a retried publish
// (after a failed term, say) is de-duplicated, while a message of a
// recreated stream that reuses the sequence number is not.
func (r *runner) deadLetter(m Msg, herr error) error {
	now := r.cfg.Now()
	dl := event.DeadLetter{
		Stage:           r.cfg.Stage,
		Reason:          herr.Error(),
		Permanent:       IsPermanent(herr),
		Deliveries:      m.NumDelivered,
		OriginalSubject: m.Subject,
		Headers:         m.Headers,
		At:              now.UTC(),
	}
	dl.SetOriginal(m.Data)
	id := fmt.Sprintf("dead.%s.%s.%d.%d", r.cfg.Stage, m.Stream, m.Sequence, m.Timestamp.UnixNano())
	subject := ""
	if orig, err := event.Parse(m.Data); err == nil {
		subject = orig.ID
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), deadLetterTimeout)
	defer cancel()
	return PublishDead(ctx, r.js, dl, id, subject)
}

// backoff returns the nak delay after the n-th delivery failed.
func (r *runner) backoff(n uint64) time.Duration {
	b := r.cfg.Backoff
	if n < 1 {
		n = 1
	}
	if n > uint64(len(b)) {
		return b[len(b)-1]
	}
	return b[n-1]
}

// gate counts callers inside a section and, once closed, admits none and
// waits for those inside to leave.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
