package actions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/eiamtriage/eiamtriage/actions"
	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/actions/outbox/smtpsink"
	"github.com/eiamtriage/eiamtriage/actions/render"
	"github.com/eiamtriage/eiamtriage/classify"
	"github.com/eiamtriage/eiamtriage/classify/stage"
	"github.com/eiamtriage/eiamtriage/ingest"
	"github.com/eiamtriage/eiamtriage/internal/broker/brokertest"
	"github.com/eiamtriage/eiamtriage/internal/cases"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/mailstore"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

const (
	waitFor   = 60 * time.Second
	mailbox   = "be"
	fromAddr  = "eiamtriage <triage@be.ch>"
	spiges    = "spiges@bfs.admin.ch"
	fixtureIn = "../testdata/notices"
)

// superusers of the test mailbox, the example configuration's.
var baseSuperusers = []string{"martina.graf@be.ch", "peter.aebi@be.ch"}

// clock is a settable clock whose After channels fire when it is set past
// them (for Options.Now and RunSummaries).
type clock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	waiting chan struct{} // gets a value whenever After is called
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newClock(t time.Time) *clock { return &clock{now: t, waiting: make(chan struct{}, 64)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	select {
	case c.waiting <- struct{}{}:
	default:
	}
	return ch
}

// Set moves the clock to t and fires every waiter due.
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(t) {
			w.ch <- t
			continue
		}
		kept = append(kept, w)
	}
	c.waiters = kept
}

func (c *clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// waitWaiting waits until the loop under test waits on the clock again.
func (c *clock) waitWaiting(t *testing.T) {
	t.Helper()
	select {
	case <-c.waiting:
	case <-time.After(waitFor):
		t.Fatal("the loop did not wait on the clock")
	}
}

type envOptions struct {
	superusers []string
	// authenticate: the example configuration's sender authentication
	// (authserv-id mx.be.ch), for the fixtures, which carry its header;
	// off otherwise (the sender and superuser rules still apply).
	authenticate bool
	caps         config.Caps
	dryRun       bool
	userMail     string
	now          func() time.Time
	answer       func(smtpsink.Try) *smtp.SMTPError
	schedule     string
}

// env is one embedded JetStream with the pipeline's streams and buckets,
// an intake, the classify stage, the outbox delivering to an SMTP sink on
// loopback, and the actions stage.
type env struct {
	t      testing.TB
	js     jetstream.JetStream
	cfg    *config.Config
	sink   *smtpsink.Sink
	out    *outbox.Outbox
	intake *ingest.Intake
	cases  *cases.Store
	mail   *mailstore.Store
	r      *render.Renderer
	opts   envOptions
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	b := brokertest.Start(t)
	ctx := context.Background()
	for _, ensure := range []func(context.Context, jetstream.JetStream, pipeline.StreamConfig) error{pipeline.EnsureStreams, pipeline.EnsureOutbox, pipeline.EnsureActions} {
		if err := ensure(ctx, b.JS, pipeline.StreamConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	su := o.superusers
	if su == nil {
		su = baseSuperusers
	}
	um := o.userMail
	if um == "" {
		um = config.UserMailSend
	}
	cfg.Mailboxes = []config.Mailbox{{Name: mailbox, Superusers: su, Authentication: config.AuthenticationOff, UserMail: um, Language: "de"}}
	if o.authenticate {
		cfg.Mailboxes[0].Authentication, cfg.Mailboxes[0].AuthservID = "on", config.Strings{"mx.be.ch"}
	}
	if o.caps != (config.Caps{}) {
		cfg.Actions.Caps = o.caps
	} else {
		cfg.Actions.Caps = config.Caps{UserMail: 1000, Escalation: 1000, Deactivate: 1000}
	}
	if o.schedule != "" {
		cfg.Summaries.Schedule = o.schedule
	}
	cfg.Actions.DryRun = o.dryRun
	cfg.Actions.PortalURL = "https://portal.example.admin.ch"
	cfg.Actions.Backoff = []config.Duration{config.Duration(20 * time.Millisecond)}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reader, err := ingest.ReaderFor(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	in, err := ingest.NewIntake(ctx, b.JS, reader, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := b.JS.KeyValue(ctx, pipeline.BucketCases)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := mailstore.Open(ctx, b.JS)
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New("")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, js: b.JS, cfg: &cfg, intake: in, cases: cases.NewStore(kv, nil), mail: ms, r: r, opts: o}
	sinkOpts := smtpsink.Options{}
	if o.answer != nil {
		sinkOpts.Answer = o.answer
	}
	e.sink = smtpsink.Start(t, sinkOpts)
	e.out, err = outbox.Open(ctx, b.JS, outbox.Options{
		From: fromAddr, DryRun: o.dryRun,
		Relay:   outbox.Relay{Address: e.sink.Addr(), TLS: outbox.TLSNone, Timeout: 10 * time.Second},
		Backoff: []time.Duration{50 * time.Millisecond}, RetryFor: time.Minute,
		Log: quiet(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.background(t, "outbox", func(ctx context.Context) error { return e.out.Run(ctx, nil) })
	st, err := stage.New(ctx, b.JS, stage.Options{Classifier: classify.New(nil), Log: quiet(t)})
	if err != nil {
		t.Fatal(err)
	}
	cc := stage.Consumer()
	cc.Backoff, cc.AckWait, cc.Workers = []time.Duration{20 * time.Millisecond}, 5*time.Second, 4
	e.background(t, "classify", func(ctx context.Context) error { return pipeline.Run(ctx, b.JS, cc, st.Handle, quiet(t), nil) })
	return e
}

func quiet(t testing.TB) *zap.Logger { return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)) }

// background runs f until the test ends.
func (e *env) background(t testing.TB, name string, f func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
}

// newStage builds an actions stage on the environment; wrap, when not
// nil, wraps the outbox it uses.
func (e *env) newStage(t testing.TB, wrap func(actions.Outbox) actions.Outbox) *actions.Stage {
	t.Helper()
	var out actions.Outbox = e.out
	if wrap != nil {
		out = wrap(out)
	}
	st, err := actions.New(context.Background(), e.js, actions.Options{Config: e.cfg, Outbox: out, Notices: e.mail, Renderer: e.r, Log: quiet(t), Now: e.opts.now})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// runStage consumes the case events with st until stop is called (or the
// test ends); stop waits for it.
func (e *env) runStage(t testing.TB, st *actions.Stage) (stop func()) {
	t.Helper()
	cc := actions.Consumer(e.cfg)
	cc.AckWait, cc.Workers, cc.Status = 5*time.Second, 4, &pipeline.Status{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pipeline.Run(ctx, e.js, cc, st.Handle, quiet(t), nil) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("actions Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	eventually(t, "the actions consumer to run", cc.Status.Running)
	return stop
}

func (e *env) submit(t testing.TB, raw []byte, source string) event.MailReceived {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	r, err := e.intake.Submit(ctx, raw, mailbox, source)
	if err != nil {
		t.Fatal(err)
	}
	return r.MailReceived
}

func (e *env) allCases(t testing.TB) []*event.Case {
	t.Helper()
	list, err := e.cases.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func eventually(t testing.TB, what string, cond func() bool, describe ...func() string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			state := ""
			for _, d := range describe {
				state += ": " + d()
			}
			t.Fatalf("timed out waiting for %s%s", what, state)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not a fixed wait
	}
}

// crlf gives a mail CRLF line ends, as it travels in SMTP and IMAP.
func crlf(raw []byte) []byte {
	return bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}

type golden struct {
	Class     string `json:"class"`
	ProfileID string `json:"profile_id"`
	// Quarantine is what sender authentication decides under the example
	// configuration; empty for a trusted notice.
	Quarantine string `json:"quarantine"`
}

// acted reports whether the example configuration makes a case of it.
func (g golden) acted() bool { return g.Class != "not-a-notice" && g.Quarantine == "" }

// fixtures returns the notices of testdata/notices (file name to raw mail,
// with CRLF line ends) with their golden verdicts, and every forwarder
// among them, who must be superusers for their forwards to count.
func fixtures(t testing.TB) (raws map[string][]byte, want map[string]golden) {
	t.Helper()
	fixturesOnce.Do(func() { cached.raws, cached.want, cached.err = readFixtures() })
	if cached.err != nil {
		t.Fatal(cached.err)
	}
	return cached.raws, cached.want
}

var (
	fixturesOnce sync.Once
	cached       struct {
		raws map[string][]byte
		want map[string]golden
		err  error
	}
)

func readFixtures() (raws map[string][]byte, want map[string]golden, err error) {
	data, err := os.ReadFile(filepath.Join(fixtureIn, "golden.json"))
	if err != nil {
		return nil, nil, err
	}
	if err := json.Unmarshal(data, &want); err != nil {
		return nil, nil, err
	}
	raws = map[string][]byte{}
	for name := range want {
		raw, err := os.ReadFile(filepath.Join(fixtureIn, name))
		if err != nil {
			return nil, nil, err
		}
		raws[name] = crlf(raw)
	}
	return raws, want, nil
}

// byKind groups the accepted messages by X-Eiamtriage-Kind.
func byKind(msgs []smtpsink.Message) map[string][]smtpsink.Message {
	out := map[string][]smtpsink.Message{}
	for _, m := range msgs {
		k := smtpsink.Header(m.Raw, outbox.HeaderKind)
		out[k] = append(out[k], m)
	}
	return out
}

func lower(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = strings.ToLower(s)
	}
	sort.Strings(out)
	return out
}
