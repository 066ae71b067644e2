package mailbox_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/eiamtriage/eiamtriage/classify"
	"github.com/eiamtriage/eiamtriage/classify/stage"
	"github.com/eiamtriage/eiamtriage/ingest"
	"github.com/eiamtriage/eiamtriage/ingest/mailbox"
	"github.com/eiamtriage/eiamtriage/ingest/mailbox/dovecottest"
	"github.com/eiamtriage/eiamtriage/internal/broker"
	"github.com/eiamtriage/eiamtriage/internal/broker/brokertest"
	"github.com/eiamtriage/eiamtriage/internal/cases"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// The integration tests against a real Dovecot (dovecottest): the whole
// way from the folder to the case, with the classify stage running.

const noticeDir = "../../testdata/notices"

var profileRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(noticeDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// genNotice returns a direct notice of its own profile (i) and Message-ID.
func genNotice(t testing.TB, i int) ([]byte, string) {
	t.Helper()
	raw := readFixture(t, "de-table-alt-private-bluewin.eml")
	pid := fmt.Sprintf("c1a5e000-0000-4000-8000-%012d", i)
	raw = bytes.ReplaceAll(raw, profileRE.Find(raw), []byte(pid))
	raw = bytes.Replace(raw, []byte("Message-ID: <"), []byte(fmt.Sprintf("Message-ID: <dv%d.", i)), 1)
	// As the boundary server of mailbox be (mx.be.ch) marks a notice eIAM
	// signed.
	ar := "Authentication-Results: mx.be.ch; dkim=pass header.d=admin.ch header.s=sel1; dmarc=pass header.from=eiam.admin.ch\r\n"
	return append([]byte(ar), raw...), pid
}

// rig is a Dovecot, an embedded NATS with the streams, the classify
// stage consuming, and an intake as `serve` has.
type rig struct {
	dv     *dovecottest.Server
	b      *broker.Broker
	intake *ingest.Intake
	kv     jetstream.KeyValue
}

func newRig(t *testing.T, maxSize int64) *rig {
	t.Helper()
	dv := dovecottest.Start(t)
	b := brokertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pipeline.EnsureStreams(ctx, b.JS, pipeline.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]byte("data_dir: /tmp/unused\nmailboxes:\n  - name: be\n    superusers: [martina.graf@be.ch]\n    authserv_id: mx.be.ch\n"))
	if err != nil {
		t.Fatal(err)
	}
	reader, err := ingest.ReaderFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	in, err := ingest.NewIntake(ctx, b.JS, reader, maxSize, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := stage.New(ctx, b.JS, stage.Options{Classifier: classify.New(nil), Log: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	cc := stage.Consumer()
	cc.AckWait, cc.Backoff = 30*time.Second, []time.Duration{100 * time.Millisecond}
	sctx, scancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = pipeline.Run(sctx, b.JS, cc, st.Handle, zap.NewNop(), nil) }()
	t.Cleanup(func() { scancel(); <-done })
	kv, err := b.JS.KeyValue(ctx, pipeline.BucketCases)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{dv: dv, b: b, intake: in, kv: kv}
}

func (r *rig) options(t *testing.T) mailbox.Options {
	return mailbox.Options{
		Mailbox: "be", Address: r.dv.Addr, TLS: config.TLSNone, Username: dovecottest.User, Password: dovecottest.Password,
		Folder: "INBOX", Intake: r.intake, JS: r.b.JS, Log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
		BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second, CommandTimeout: 10 * time.Second,
		Holder: mailbox.Holder{Host: "test", Dir: t.TempDir(), PID: 1},
	}
}

// run runs a watcher until stop or the end of the test.
func run(t *testing.T, o mailbox.Options) (*mailbox.Watcher, func()) {
	t.Helper()
	w, err := mailbox.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("Run did not return within 20s")
			}
		})
	}
	t.Cleanup(stop)
	return w, stop
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// cases returns the cases by id.
func (r *rig) cases(t *testing.T) map[string]*event.Case {
	t.Helper()
	list, err := cases.NewStore(r.kv, nil).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*event.Case{}
	for _, c := range list {
		out[c.ID] = c
	}
	return out
}

// waitCases waits until n cases exist and checks that each of the want
// profiles has exactly one case with exactly one notice.
func (r *rig) waitCases(t *testing.T, want []string) {
	t.Helper()
	var got map[string]*event.Case
	waitFor(t, 60*time.Second, fmt.Sprintf("%d cases", len(want)), func() (bool, string) {
		got = r.cases(t)
		return len(got) >= len(want), fmt.Sprintf("%d cases", len(got))
	})
	if len(got) != len(want) {
		t.Errorf("%d cases, want %d", len(got), len(want))
	}
	for _, pid := range want {
		c := got[cases.KeyForProfile(pid)]
		if c == nil {
			t.Errorf("no case for profile %s", pid)
			continue
		}
		if len(c.Notices) != 1 {
			t.Errorf("case %s has %d notices, want 1", c.ID, len(c.Notices))
		}
	}
}

// streamCount counts the messages on subject.
func (r *rig) streamCount(t *testing.T, stream, subject string) uint64 {
	t.Helper()
	st, err := r.b.JS.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

func mustAppend(t *testing.T, r *rig, folder string, raw []byte) uint32 {
	t.Helper()
	c := r.dv.Client(t)
	uid, err := dovecottest.Append(c, folder, raw)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	c.Close()
	return uid
}

// TestDovecotAppendWhileIdling: a notice appended while the watcher idles
// becomes a case with its case event, woken by IDLE.
func TestDovecotAppendWhileIdling(t *testing.T) {
	r := newRig(t, 0)
	w, _ := run(t, r.options(t))
	waitFor(t, 20*time.Second, "IDLE", func() (bool, string) { s := w.Status(); return s.Idling, fmt.Sprintf("%+v", s) })
	sub, err := r.b.Conn.SubscribeSync("eiam.case.>")
	if err != nil {
		t.Fatal(err)
	}
	raw, pid := genNotice(t, 1)
	mustAppend(t, r, "INBOX", raw)
	msg, err := sub.NextMsg(20 * time.Second)
	if err != nil {
		t.Fatalf("no case event after the APPEND: %v", err)
	}
	if !bytes.Contains(msg.Data, []byte(pid)) {
		t.Errorf("case event %s is not of profile %s", msg.Data, pid)
	}
	r.waitCases(t, []string{pid})
	if s := w.Status(); s.LastIdleWake.IsZero() {
		t.Errorf("status %+v: the case came without an IDLE wake-up", s)
	}
}

// TestDovecotRestartMidBatch: Dovecot killed while the watcher takes in
// a batch, started again: every notice is exactly one case.
func TestDovecotRestartMidBatch(t *testing.T) {
	r := newRig(t, 0)
	const n = 500
	var mails [][]byte
	var pids []string
	for i := range n {
		raw, pid := genNotice(t, i)
		mails, pids = append(mails, raw), append(pids, pid)
	}
	if err := r.dv.FillMaildir(mails); err != nil {
		t.Fatal(err)
	}
	o := r.options(t)
	o.Batch, o.Workers = 5, 1 // slow, so that the stop falls in the middle
	w, _ := run(t, o)
	waitFor(t, 30*time.Second, "some mails taken in", func() (bool, string) {
		s := w.Status()
		return s.Submitted >= 30, fmt.Sprintf("%d submitted", s.Submitted)
	})
	if err := r.dv.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the watcher noticing", func() (bool, string) {
		s := w.Status()
		return !s.Connected, fmt.Sprintf("%+v", s)
	})
	at := w.Status().Submitted
	if err := r.dv.Restart(); err != nil {
		t.Fatal(err)
	}
	r.waitCases(t, pids)
	t.Logf("Dovecot stopped after %d of %d mails; reconnects %d", at, n, w.Status().Reconnects)
	if at >= n {
		t.Errorf("all %d mails were in before Dovecot stopped: the test did not stop it mid-batch", n)
	}
	if got := r.streamCount(t, pipeline.StreamNotices, event.SubjectNoticeReceived); got != n {
		t.Errorf("%d mail-received events, want %d (each mail once)", got, n)
	}
}

// TestDovecotUIDValidityChange: a new UIDVALIDITY makes the watcher read
// the folder again; no case is doubled and no notice joins its case twice.
func TestDovecotUIDValidityChange(t *testing.T) {
	r := newRig(t, 0)
	var pids []string
	for i := range 5 {
		raw, pid := genNotice(t, i)
		mustAppend(t, r, "INBOX", raw)
		pids = append(pids, pid)
	}
	o := r.options(t)
	w, stop := run(t, o)
	r.waitCases(t, pids)
	before := w.Status().Checkpoint
	stop()
	if err := r.dv.SetUIDValidity("INBOX", before.UIDValidity+1000); err != nil {
		t.Fatal(err)
	}
	raw, pid := genNotice(t, 99)
	mustAppend(t, r, "INBOX", raw)
	w, _ = run(t, o)
	waitFor(t, 30*time.Second, "the resync", func() (bool, string) {
		s := w.Status()
		return s.Checkpoint.UIDValidity == before.UIDValidity+1000 && s.Checkpoint.UID == 6, fmt.Sprintf("%+v", s.Checkpoint)
	})
	r.waitCases(t, append(pids, pid))
	if s := w.Status(); s.Duplicates != 5 || s.Submitted != 1 {
		t.Errorf("after the resync: %d duplicates, %d submitted; want 5 and 1", s.Duplicates, s.Submitted)
	}
}

// TestDovecotOversize: a mail over the limit becomes a dead letter naming
// mailbox, folder and UID; the notice behind it becomes its case.
func TestDovecotOversize(t *testing.T) {
	small, pid := genNotice(t, 1)
	limit := int64(len(small) + 500)
	r := newRig(t, limit)
	bigRaw, _ := genNotice(t, 2)
	big := append(bigRaw, bytes.Repeat([]byte("x"), int(limit))...)
	bigUID := mustAppend(t, r, "INBOX", big)
	mustAppend(t, r, "INBOX", small)
	o := r.options(t)
	o.MaxSize = limit
	run(t, o)
	r.waitCases(t, []string{pid})
	recs, err := pipeline.ReadDead(context.Background(), r.b.JS, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Letter == nil {
		t.Fatalf("dead letters %+v, want one", recs)
	}
	want := fmt.Sprintf(`mailbox be, folder "INBOX", UID %d `, bigUID)
	if dl := recs[0].Letter; !strings.HasPrefix(dl.Reason, want) || !strings.Contains(dl.Reason, "over the size limit") || recs[0].Subject != "eiam.dead.mailbox" {
		t.Errorf("dead letter on %s: %q, want it to start %q and name the limit", recs[0].Subject, dl.Reason, want)
	}
}

// TestDovecotMoveAfterAck: notices move to Processed once taken in; the
// auto-reply stays in INBOX, unflagged.
func TestDovecotMoveAfterAck(t *testing.T) {
	r := newRig(t, 0)
	c := r.dv.Client(t)
	if err := c.Create("Processed", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	var pids []string
	for i := range 3 {
		raw, pid := genNotice(t, i)
		mustAppend(t, r, "INBOX", raw)
		pids = append(pids, pid)
	}
	ooo := mustAppend(t, r, "INBOX", readFixture(t, "not-ooo-de-auto-replied-quoting-notice.eml"))
	o := r.options(t)
	o.After, o.MoveTo = config.AfterMove, "Processed"
	w, _ := run(t, o)
	r.waitCases(t, pids)
	waitFor(t, 20*time.Second, "the moves", func() (bool, string) {
		in, pr := uids(t, c, "INBOX"), uids(t, c, "Processed")
		return len(in) == 1 && len(pr) == 3, fmt.Sprintf("INBOX %v, Processed %v", in, pr)
	})
	in := uids(t, c, "INBOX")
	if flags, ok := in[ooo]; !ok || len(flags) != 0 {
		t.Errorf("INBOX %v: the auto-reply (UID %d) must stay, without flags", in, ooo)
	}
	waitFor(t, 10*time.Second, "the auto-reply recorded as ignored", func() (bool, string) {
		n := r.streamCount(t, pipeline.StreamNotices, event.SubjectNoticeIgnored)
		return n == 1, fmt.Sprintf("%d ignored", n)
	})
	if s := w.Status(); s.Checkpoint.UID != 4 {
		t.Errorf("checkpoint %+v, want UID 4", s.Checkpoint)
	}
}

// TestDovecotForgedNoticeQuarantined: a notice from a look-alike sender is
// quarantined, never a case, and (after_other keep) left in the folder.
func TestDovecotForgedNoticeQuarantined(t *testing.T) {
	r := newRig(t, 0)
	c := r.dv.Client(t)
	if err := c.Create("Processed", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	forged := mustAppend(t, r, "INBOX", readFixture(t, "not-lookalike-eiam-admin-ch-evil-example.eml"))
	raw, pid := genNotice(t, 1)
	mustAppend(t, r, "INBOX", raw)
	o := r.options(t)
	o.After, o.MoveTo = config.AfterMove, "Processed"
	run(t, o)
	r.waitCases(t, []string{pid})
	waitFor(t, 10*time.Second, "the quarantine record", func() (bool, string) {
		n := r.streamCount(t, pipeline.StreamDead, event.SubjectQuarantine)
		return n == 1, fmt.Sprintf("%d quarantined", n)
	})
	waitFor(t, 10*time.Second, "the notice moved", func() (bool, string) {
		in := uids(t, c, "INBOX")
		return len(in) == 1, fmt.Sprint(in)
	})
	if in := uids(t, c, "INBOX"); !slices.Contains(keys(in), forged) {
		t.Errorf("INBOX %v: the forged notice (UID %d) must stay", in, forged)
	}
}

func keys(m map[uint32][]imap.Flag) []uint32 {
	var k []uint32
	for u := range m {
		k = append(k, u)
	}
	return k
}

// uids returns the folder's UIDs with their flags.
func uids(t *testing.T, c *imapclient.Client, folder string) map[uint32][]imap.Flag {
	t.Helper()
	data, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("select %s: %v", folder, err)
	}
	out := map[uint32][]imap.Flag{}
	if data.NumMessages == 0 {
		return out
	}
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		t.Fatalf("fetch %s: %v", folder, err)
	}
	for _, m := range msgs {
		out[uint32(m.UID)] = m.Flags
	}
	return out
}
