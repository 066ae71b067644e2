package stage_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/eiamtriage/eiamtriage/classify"
	"github.com/eiamtriage/eiamtriage/classify/stage"
	"github.com/eiamtriage/eiamtriage/ingest"
	"github.com/eiamtriage/eiamtriage/ingest/notice"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// noticeDir holds the generated notice fixtures, relative to this package.
const noticeDir = "../../testdata/notices"

// templates are direct notices, one per class, whose profile id and
// Message-ID appear verbatim in the raw bytes, so that copies can be made
// by replacing them.
var templates = []struct {
	file, profileID string
	class           event.Class
}{
	{"de-table-alt-private-bluewin.eml", "9e5c057f-bcec-52de-a615-d08bffd1b890", event.ClassPrivateEmail},
	{"de-table-alt-anna-anja-wrong-person.eml", "", event.ClassWrongPerson},
	{"de-table-alt-identical-utf8-qp.eml", "", event.ClassNegligible},
	{"fr-html-other-domain-review.eml", "", event.ClassReview},
}

// genMail is one generated notice with what the stage must make of it.
type genMail struct {
	Raw       []byte
	MailID    string // event.MailID(Raw)
	ProfileID string
	MessageID string // with angle brackets, as in the header
	Class     event.Class
}

var messageIDHeader = regexp.MustCompile(`(?mi)^Message-ID:[ \t]*(<[^>\r\n]+>)`)

// genMails returns n distinct notices for n distinct profiles, made from
// the templates in turn: each copy gets its own profile id (same length as
// the template's, so quoted-printable lines keep their length) and its own
// Message-ID. Every copy is parsed and classified here, so a template whose
// id is not replaced where the parser reads it fails the test at once.
func genMails(tb testing.TB, n int) []genMail {
	tb.Helper()
	parser := newParser(tb)
	cl := classify.New(nil)
	type tpl struct {
		raw            []byte
		profileID, mid string
		class          event.Class
	}
	var tpls []tpl
	for _, t := range templates {
		raw, err := os.ReadFile(filepath.Join(noticeDir, t.file))
		if err != nil {
			tb.Fatalf("read template: %v", err)
		}
		n, err := parser.Parse(context.Background(), raw)
		if err != nil {
			tb.Fatalf("template %s is not a notice: %v", t.file, err)
		}
		if t.profileID != "" && n.ProfileID != t.profileID {
			tb.Fatalf("template %s: profile id %q, want %q", t.file, n.ProfileID, t.profileID)
		}
		if len(n.ProfileID) != 36 || !bytes.Contains(raw, []byte(n.ProfileID)) {
			tb.Fatalf("template %s: profile id %q is not a UUID that appears verbatim", t.file, n.ProfileID)
		}
		if got := cl.Classify(n).Class; got != t.class {
			tb.Fatalf("template %s: class %s, want %s", t.file, got, t.class)
		}
		m := messageIDHeader.FindSubmatch(raw)
		if m == nil || bytes.Count(raw, m[1]) != 1 {
			tb.Fatalf("template %s: no Message-ID header that appears exactly once", t.file)
		}
		tpls = append(tpls, tpl{raw: raw, profileID: n.ProfileID, mid: string(m[1]), class: t.class})
	}

	mails := make([]genMail, n)
	seen := make(map[string]bool, n)
	for i := range n {
		t := tpls[i%len(tpls)]
		pid := fmt.Sprintf("c1a5e000-%04x-4000-8000-%012x", i%len(tpls), i)
		mid := fmt.Sprintf("<gen.%d.%d@eiam.admin.ch>", i, i%len(tpls))
		raw := bytes.ReplaceAll(t.raw, []byte(t.profileID), []byte(pid))
		raw = bytes.Replace(raw, []byte(t.mid), []byte(mid), 1)
		no, err := parser.Parse(context.Background(), raw)
		if err != nil {
			tb.Fatalf("generated mail %d is not a notice: %v", i, err)
		}
		if no.ProfileID != pid || no.MessageID != mid {
			tb.Fatalf("generated mail %d: parsed profile %q and Message-ID %q, want %q and %q", i, no.ProfileID, no.MessageID, pid, mid)
		}
		if got := cl.Classify(no).Class; got != t.class {
			tb.Fatalf("generated mail %d: class %s, want the template's %s", i, got, t.class)
		}
		id := event.MailID(raw)
		if seen[id] {
			tb.Fatalf("generated mail %d is not distinct", i)
		}
		seen[id] = true
		mails[i] = genMail{Raw: raw, MailID: id, ProfileID: pid, MessageID: mid, Class: t.class}
	}
	return mails
}

func newParser(tb testing.TB) *notice.Parser {
	tb.Helper()
	p, err := notice.NewParser(config.DefaultWording(), nil)
	if err != nil {
		tb.Fatalf("notice parser: %v", err)
	}
	return p
}

// testMailbox is the mailbox the tests' mail comes from.
const testMailbox = "be"

// testReader returns the ingest's reader for one mailbox, testMailbox,
// with the superusers. Its sender authentication is off: these tests are
// about what the stage makes of a reading, and the fixtures are read as
// mail put in by hand (ingest/trust tests authentication, and the commands'
// end-to-end tests run it with the example configuration); the sender and
// superuser rules still apply.
func testReader(tb testing.TB, superusers ...string) *ingest.Reader {
	tb.Helper()
	cfg := config.Default()
	cfg.DataDir = tb.TempDir()
	cfg.Mailboxes = []config.Mailbox{{Name: testMailbox, Superusers: superusers, Authentication: config.AuthenticationOff}}
	r, err := ingest.ReaderFor(&cfg)
	if err != nil {
		tb.Fatalf("reader: %v", err)
	}
	return r
}

// newStage builds the classify stage on js with the default classifier.
func newStage(tb testing.TB, js jetstream.JetStream, log *zap.Logger) *stage.Stage {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := stage.New(ctx, js, stage.Options{Classifier: classify.New(nil), Log: log})
	if err != nil {
		tb.Fatalf("stage.New: %v", err)
	}
	return s
}

// instance is one pipeline.Run of the classify stage in a goroutine.
type instance struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Run's result, once done is closed
	status *pipeline.Status
	once   sync.Once
	pm     *pipeline.Metrics
	reg    *prometheus.Registry
}

// startInstance runs the stage under cfg on js until stop (or cleanup).
func startInstance(tb testing.TB, name string, js jetstream.JetStream, cfg pipeline.ConsumerConfig, log *zap.Logger) *instance {
	tb.Helper()
	stage := newStage(tb, js, log.Named(name))
	reg := prometheus.NewRegistry()
	in := &instance{name: name, done: make(chan struct{}), status: &pipeline.Status{}, reg: reg, pm: pipeline.NewMetrics(reg)}
	cfg.Status = in.status
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	go func() {
		defer close(in.done)
		in.err = pipeline.Run(ctx, js, cfg, stage.Handle, log.Named(name), in.pm)
	}()
	tb.Cleanup(func() { in.stop(tb, 30*time.Second) })
	return in
}

// outcomes describes how many messages the instance acked, retried and
// dead-lettered, for the log.
func (in *instance) outcomes() string {
	counts := in.counts()
	parts := make([]string, 0, len(counts))
	for o, n := range counts {
		parts = append(parts, fmt.Sprintf("%s=%.0f", o, n))
	}
	sort.Strings(parts)
	return in.name + ": " + strings.Join(parts, " ")
}

// acked returns how many messages the instance acked.
func (in *instance) acked() float64 { return in.counts()[pipeline.OutcomeAck] }

// counts returns the instance's eiamtriage_messages_total by outcome.
func (in *instance) counts() map[string]float64 {
	counts := map[string]float64{}
	mfs, err := in.reg.Gather()
	if err != nil {
		return counts
	}
	for _, mf := range mfs {
		if mf.GetName() != "eiamtriage_messages_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" {
					counts[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return counts
}

// stop cancels the instance and waits, bounded, for Run to return.
func (in *instance) stop(tb testing.TB, wait time.Duration) {
	tb.Helper()
	in.once.Do(func() { in.wait(tb, wait) })
}

func (in *instance) wait(tb testing.TB, wait time.Duration) {
	tb.Helper()
	in.cancel()
	select {
	case <-in.done:
		if in.err != nil {
			tb.Errorf("instance %s: Run: %v", in.name, in.err)
		}
	case <-time.After(wait):
		tb.Errorf("instance %s: Run did not return within %s of its context ending", in.name, wait)
	}
}

// submit submits raw until it succeeds, each attempt bounded by 10 s, at
// most until deadline. Submit is idempotent, so retrying with the same
// bytes after an attempt whose outcome is unknown is safe. It returns the
// number of failed attempts.
func submit(in *ingest.Intake, raw []byte, source string, deadline time.Time) (failed int, err error) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = in.Submit(ctx, raw, testMailbox, source)
		cancel()
		if err == nil {
			return failed, nil
		}
		failed++
		if pipeline.IsPermanent(err) || time.Now().After(deadline) {
			return failed, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitUntil polls cond every 100 ms until it holds or deadline passes, and
// then fails with the last state cond described.
func waitUntil(tb testing.TB, deadline time.Time, what string, cond func() (bool, string)) {
	tb.Helper()
	var state string
	for {
		var ok bool
		if ok, state = cond(); ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s; last state: %s", what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
