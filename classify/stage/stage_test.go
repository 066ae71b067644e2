package stage_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/eiamtriage/eiamtriage/classify"
	"github.com/eiamtriage/eiamtriage/classify/stage"
	"github.com/eiamtriage/eiamtriage/ingest"
	"github.com/eiamtriage/eiamtriage/ingest/notice"
	"github.com/eiamtriage/eiamtriage/ingest/trust"
	"github.com/eiamtriage/eiamtriage/internal/broker/brokertest"
	"github.com/eiamtriage/eiamtriage/internal/cases"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

const waitFor = 20 * time.Second

// env is one embedded JetStream with the streams, an intake, a stage and a
// recorder of everything published on the case, ignored and dead subjects.
type env struct {
	js     jetstream.JetStream
	nc     *nats.Conn
	intake *ingest.Intake
	stage  *stage.Stage
	store  *cases.Store

	mu      sync.Mutex
	events  map[string][]event.Event // by subject prefix: case, ignored, dead
	seenIDs map[string]int
}

// newEnv starts the environment; superusers may forward notices.
func newEnv(t *testing.T, superusers ...string) *env {
	t.Helper()
	b := brokertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := pipeline.EnsureStreams(ctx, b.JS, pipeline.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	in, err := ingest.NewIntake(ctx, b.JS, testReader(t, superusers...), 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := stage.New(ctx, b.JS, stage.Options{
		Classifier: classify.New(nil),
		Log:        zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := b.JS.KeyValue(ctx, pipeline.BucketCases)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{js: b.JS, nc: b.Conn, intake: in, stage: st, store: cases.NewStore(kv, nil),
		events: map[string][]event.Event{}, seenIDs: map[string]int{}}
	for _, subj := range []string{event.SubjectCases, event.SubjectNoticeIgnored, event.SubjectDead} {
		sub, err := b.Conn.Subscribe(subj, func(m *nats.Msg) {
			ev, err := event.Parse(m.Data)
			if err != nil {
				t.Errorf("a message on %s is not an event: %v", m.Subject, err)
				return
			}
			e.mu.Lock()
			defer e.mu.Unlock()
			e.seenIDs[ev.ID]++
			if e.seenIDs[ev.ID] > 1 {
				// A republication under the same id (a redelivery or
				// a re-submission): the stream stores it once.
				return
			}
			key := "dead"
			switch {
			case strings.HasPrefix(m.Subject, "eiam.case."):
				key = "case"
			case m.Subject == event.SubjectNoticeIgnored:
				key = "ignored"
			case m.Subject == event.SubjectQuarantine:
				key = "quarantine"
			case m.Subject == event.SubjectUnreadable:
				key = "unreadable"
			}
			e.events[key] = append(e.events[key], ev)
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	return e
}

// checkStored checks that stream holds exactly want messages: every event
// stored once, whatever was published twice.
func (e *env) checkStored(t *testing.T, stream string, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	st, err := e.js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != uint64(want) {
		t.Errorf("stream %s holds %d messages, want %d", stream, n, want)
	}
}

// count returns how many distinct events of kind (case, ignored,
// quarantine, unreadable, dead) were published.
func (e *env) count(kind string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.events[kind])
}

func (e *env) list(kind string) []event.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]event.Event(nil), e.events[kind]...)
}

// run runs the stage with handler h (nil: the stage's own) until the test
// ends.
func (e *env) run(t *testing.T, h pipeline.Handler) {
	t.Helper()
	if h == nil {
		h = e.stage.Handle
	}
	cfg := stage.Consumer()
	cfg.MaxDeliver = 4
	cfg.Backoff = []time.Duration{20 * time.Millisecond}
	cfg.AckWait = 5 * time.Second
	cfg.Workers = 4
	cfg.Status = &pipeline.Status{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- pipeline.Run(ctx, e.js, cfg, h, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), nil)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	eventually(t, "the consumer to run", cfg.Status.Running)
}

func (e *env) submit(t *testing.T, raw []byte, source string) event.MailReceived {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	mr, err := e.intake.Submit(ctx, raw, testMailbox, source)
	if err != nil {
		t.Fatal(err)
	}
	return mr.MailReceived
}

// eventually waits for cond; on timeout it fails with what and, if given,
// the state describe reports.
func eventually(t *testing.T, what string, cond func() bool, describe ...func() string) {
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
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) cases(t *testing.T) []*event.Case {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	list, err := e.store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

type golden struct {
	Class      string `json:"class"`
	ProfileID  string `json:"profile_id"`
	NotANotice string `json:"not_a_notice"`
	// Quarantine is the trust verdict's kind under the example
	// configuration (authentication on, its superusers only).
	Quarantine string `json:"quarantine"`
}

// quarantinedHere says whether a fixture is quarantined in this test's
// environment, where authentication is off and every forwarder is a
// superuser: when its own senders are not plain eIAM senders.
func (g golden) quarantinedHere() bool {
	return g.Quarantine == trust.KindUntrustedSender || g.Quarantine == trust.KindAmbiguousSender
}

// TestFixturesBecomeCases publishes every fixture of testdata/notices and
// checks that each notice becomes exactly one case of its golden class, each
// other mail exactly one ignored record, and no event is published twice.
func TestFixturesBecomeCases(t *testing.T) {
	data, err := os.ReadFile("../../testdata/notices/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]golden
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	// Every forwarder of the fixtures is a superuser here (the trust rule
	// has a test of its own).
	var forwarders []string
	parser := notice.MustParser(config.DefaultWording(), nil)
	for name := range want {
		raw, err := os.ReadFile(filepath.Join("../../testdata/notices", name))
		if err != nil {
			t.Fatal(err)
		}
		if n, err := parser.Parse(context.Background(), raw); err == nil && n.Forwarder() != "" {
			if _, ok := trust.Address(n.Forwarder()); ok { // a look-alike is no superuser of any mailbox
				forwarders = append(forwarders, n.Forwarder())
			}
		}
	}
	if len(forwarders) == 0 {
		t.Fatal("no forwarded fixture")
	}
	e := newEnv(t, forwarders...)
	e.run(t, nil)
	wantCases := map[string]string{} // case id -> class
	ignored, quarantined := 0, 0
	for name, g := range want {
		raw, err := os.ReadFile(filepath.Join("../../testdata/notices", name))
		if err != nil {
			t.Fatal(err)
		}
		e.submit(t, raw, "test:"+name)
		switch {
		case g.quarantinedHere():
			quarantined++
		case g.Class == "not-a-notice":
			ignored++
		case g.ProfileID != "":
			id := "p." + strings.ToLower(g.ProfileID)
			if prev, ok := wantCases[id]; ok && event.Class(prev).Severity() > event.Class(g.Class).Severity() {
				continue
			}
			wantCases[id] = g.Class
		default:
			wantCases["m."+event.MailID(raw)] = g.Class
		}
	}
	eventually(t, "every mail to be triaged", func() bool {
		return e.count("ignored") == ignored && e.count("quarantine") == quarantined && len(e.cases(t)) == len(wantCases)
	}, func() string {
		return fmt.Sprintf("%d ignored of %d, %d quarantined of %d, %d cases of %d", e.count("ignored"), ignored,
			e.count("quarantine"), quarantined, len(e.cases(t)), len(wantCases))
	})
	if quarantined == 0 || ignored == 0 {
		t.Fatalf("the fixtures hold %d quarantined and %d ignored mails; want some of each", quarantined, ignored)
	}
	got := e.cases(t)
	for _, c := range got {
		class, ok := wantCases[c.ID]
		if !ok {
			t.Errorf("unexpected case %s (%s)", c.ID, c.Class)
			continue
		}
		if string(c.Class) != class {
			t.Errorf("case %s is %s, want %s; reasons %q", c.ID, c.Class, class, c.Reasons)
		}
		for _, n := range c.Notices {
			if n.ReceivedSeq == 0 {
				t.Errorf("case %s: the notice from mail %s has no received event sequence", c.ID, n.MailID)
			}
		}
	}
	for _, ev := range append(e.list("ignored"), e.list("quarantine")...) {
		var ig event.MailIgnored
		if err := ev.Decode(&ig); err != nil {
			t.Fatal(err)
		}
		if ig.Kind == "" || ig.Reason == "" {
			t.Errorf("ignored record without kind or reason: %+v", ig)
		}
		if quarantine := ev.Type == event.TypeMailQuarantined; quarantine != ig.Suspicious || quarantine != (ig.Kind == trust.KindUntrustedSender || ig.Kind == trust.KindAmbiguousSender) {
			t.Errorf("%s record of kind %s, suspicious %v", ev.Type, ig.Kind, ig.Suspicious)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, n := range e.seenIDs {
		if n != 1 {
			t.Errorf("event %s published %d times", id, n)
		}
	}
	e.checkStored(t, pipeline.StreamCases, len(e.events["case"]))
}

func sample(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("../../testdata/samples", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestSameNoticeTwiceAndSecondNotice: the same mail announced twice (with
// event ids the stream cannot de-duplicate), the same notice forwarded as
// an attachment, and a second, more serious notice for the same profile
// all end in one case.
func TestSameNoticeTwiceAndSecondNotice(t *testing.T) {
	e := newEnv(t, "SU@be.ch")
	e.run(t, nil)
	raw := sample(t, "0016.eml") // review: another professional domain
	mr := e.submit(t, raw, "first")
	eventually(t, "the case", func() bool { return e.count("case") == 1 })

	// The same mail again, announced under a new event id as a later
	// re-submission past the duplicate window would be.
	ev, err := event.New(event.TypeMailReceived, "test", "again-"+mr.MailID, time.Now(), mr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := pipeline.Publish(ctx, e.js, event.SubjectNoticeReceived, ev); err != nil {
		t.Fatal(err)
	}
	// The same notice forwarded as an attachment: other bytes, same
	// notice Message-ID.
	fwd := "From: su@be.ch\r\nTo: triage@be.ch\r\nSubject: WG: x\r\nMessage-ID: <fwd-1@be.ch>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsiehe unten\r\n--b\r\n" +
		"Content-Type: message/rfc822\r\n\r\n" + string(raw) + "\r\n--b--\r\n"
	e.submit(t, []byte(fwd), "forwarded")

	// A second notice for the same profile in which a stranger signed in:
	// the wrong-person sample 0002 with 0016's profile id.
	second := strings.ReplaceAll(string(sample(t, "0002.eml")), "1773308c-dc6b-13ab-2e47-dc0e959f3a51", "c23105d9-d300-5630-e149-a83728fa361a")
	if !strings.Contains(second, "c23105d9") {
		t.Fatal("the sample changed nothing")
	}
	e.submit(t, []byte(second), "second")

	eventually(t, "the second case event", func() bool { return e.count("case") == 2 }, func() string {
		b, _ := json.Marshal(e.cases(t))
		return fmt.Sprintf("%d events; cases %s", e.count("case"), b)
	})
	eventually(t, "both notices and the duplicate in the case", func() bool {
		cs := e.cases(t)
		return len(cs) == 1 && len(cs[0].Notices) == 2 && cs[0].Notices[0].Duplicates == 1
	})
	c := e.cases(t)[0]
	if c.Class != event.ClassWrongPerson || c.Notices[1].Change != cases.Escalated {
		t.Errorf("case %s is %s (second notice %s), want escalated to wrong-person", c.ID, c.Class, c.Notices[1].Change)
	}
	evs := e.list("case")
	if evs[1].Type != event.TypeCaseClassified || !strings.HasSuffix(evs[1].ID, event.MailID([]byte(second))) {
		t.Errorf("second event %s %s", evs[1].Type, evs[1].ID)
	}
	var ch event.CaseChanged
	if err := evs[1].Decode(&ch); err != nil || ch.Change != cases.Escalated || ch.Case.Class != event.ClassWrongPerson {
		t.Errorf("second event payload %+v err %v", ch, err)
	}
	// Once every message is acknowledged, all the stage publishes for them
	// is published: no third event can come.
	settledStage(t, e)
	if n := e.count("case"); n != 2 {
		t.Errorf("%d case events, want 2", n)
	}
	e.checkStored(t, pipeline.StreamCases, 2)
}

// TestTemporaryFailureIsRetried makes every mail fail twice before the
// stage sees it: each still becomes exactly one case, and no dead letter.
func TestTemporaryFailureIsRetried(t *testing.T) {
	e := newEnv(t)
	var calls sync.Map
	e.run(t, func(ctx context.Context, m pipeline.Msg) error {
		n, _ := calls.LoadOrStore(m.Sequence, new(atomic.Int32))
		if n.(*atomic.Int32).Add(1) <= 2 {
			return errors.New("the case bucket is unreachable (test)")
		}
		return e.stage.Handle(ctx, m)
	})
	for _, name := range []string{"0001.eml", "0007.eml", "0014.eml"} {
		e.submit(t, sample(t, name), name)
	}
	eventually(t, "three cases", func() bool { return e.count("case") == 3 })
	settledStage(t, e)
	e.checkStored(t, pipeline.StreamCases, 3)
	e.checkStored(t, pipeline.StreamDead, 0)
	if n, d := e.count("case"), e.count("dead"); n != 3 || d != 0 {
		t.Errorf("%d case events and %d dead letters, want 3 and 0", n, d)
	}
	calls.Range(func(k, v any) bool {
		if got := v.(*atomic.Int32).Load(); got != 3 {
			t.Errorf("message %v handled %d times, want 3", k, got)
		}
		return true
	})
}

// TestPermanentFailureIsDeadLettered puts a message that is no event and
// an event that is not a mail-received event on the mail-received subject:
// both end on eiam.dead.classify with the reason, and neither becomes a
// case.
func TestPermanentFailureIsDeadLettered(t *testing.T) {
	e := newEnv(t)
	e.run(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := e.js.Publish(ctx, event.SubjectNoticeReceived, []byte("not JSON \x00\xff")); err != nil {
		t.Fatal(err)
	}
	other, _ := event.New(event.TypeCaseClassified, "test", "wrong-type", time.Now(), map[string]string{"x": "y"})
	if err := pipeline.Publish(ctx, e.js, event.SubjectNoticeReceived, other); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two dead letters", func() bool { return e.count("dead") == 2 })
	reasons := ""
	for _, d := range e.list("dead") {
		var dl event.DeadLetter
		if err := d.Decode(&dl); err != nil {
			t.Fatal(err)
		}
		if !dl.Permanent || dl.Stage != stage.Name || dl.Deliveries != 1 || len(dl.Original()) == 0 {
			t.Errorf("dead letter %+v", dl)
		}
		reasons += dl.Reason + "\n"
	}
	for _, want := range []string{"as a CloudEvents JSON event", "has type " + event.TypeCaseClassified} {
		if !strings.Contains(reasons, want) {
			t.Errorf("no dead letter says %q:\n%s", want, reasons)
		}
	}
	if n := e.count("case"); n != 0 {
		t.Errorf("%d case events, want none", n)
	}
}

// TestTwoInstancesShareTheWork runs two stages on one consumer: each of 60
// notices becomes exactly one case and one event, and both instances work.
func TestTwoInstancesShareTheWork(t *testing.T) {
	e := newEnv(t)
	var a, b atomic.Int32
	e.run(t, func(ctx context.Context, m pipeline.Msg) error { a.Add(1); return e.stage.Handle(ctx, m) })
	e.run(t, func(ctx context.Context, m pipeline.Msg) error { b.Add(1); return e.stage.Handle(ctx, m) })
	raw := string(sample(t, "0007.eml"))
	const id = "c0d76560-fbbe-9381-16e3-e38047e1a38b"
	if !strings.Contains(raw, id) {
		t.Fatal("sample lacks its profile id")
	}
	const n = 60
	for i := range n {
		r := strings.ReplaceAll(raw, id, id[:len(id)-4]+string(rune('a'+i/26))+string(rune('a'+i%26))+"00")
		r = strings.Replace(r, "Message-ID: <", "Message-ID: <"+string(rune('a'+i/26))+string(rune('a'+i%26))+".", 1)
		e.submit(t, []byte(r), "copy")
	}
	eventually(t, "60 cases", func() bool { return e.count("case") == n })
	settledStage(t, e)
	if got := len(e.cases(t)); got != n || e.count("case") != n {
		t.Errorf("%d cases and %d events, want %d", got, e.count("case"), n)
	}
	if a.Load() == 0 || b.Load() == 0 {
		t.Errorf("instance A handled %d, B %d: the work was not shared", a.Load(), b.Load())
	}
}

// TestForwardTrustedOnlyFromSuperusers: the same forwarded notice is a case
// when a superuser forwarded it and quarantined (never a case) when anyone
// else did.
func TestForwardTrustedOnlyFromSuperusers(t *testing.T) {
	e := newEnv(t, "martina.graf@be.ch")
	e.run(t, nil)
	inner := string(sample(t, "0007.eml")) // private-email, sent by eIAM
	forward := func(from, id string) []byte {
		return []byte("From: " + from + "\r\nTo: triage@be.ch\r\nSubject: WG: eIAM\r\nMessage-ID: <" + id + "@be.ch>\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nzur Triage\r\n--b\r\n" +
			"Content-Type: message/rfc822\r\n\r\n" + inner + "\r\n--b--\r\n")
	}
	e.submit(t, forward("mallory@example.org", "x1"), "stranger")
	eventually(t, "the stranger's forward quarantined", func() bool { return e.count("quarantine") == 1 })
	if n := len(e.cases(t)); n != 0 {
		t.Fatalf("%d cases from a stranger's forward, want none", n)
	}
	var ig event.MailIgnored
	if err := e.list("quarantine")[0].Decode(&ig); err != nil || ig.Kind != "untrusted-forwarder" || !ig.Suspicious || !strings.Contains(ig.Reason, "mallory@example.org") {
		t.Errorf("quarantine record %+v (%v)", ig, err)
	}
	e.submit(t, forward("Martina.Graf@be.ch", "x2"), "superuser")
	eventually(t, "the superuser's forward as a case", func() bool { return e.count("case") == 1 })
	if c := e.cases(t); len(c) != 1 || c[0].Class != event.ClassPrivateEmail || c[0].Notices[0].Forwarders[0] != "martina.graf@be.ch" {
		t.Errorf("cases %+v", c)
	}
}
