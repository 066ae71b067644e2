package mailbox

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/eiamtriage/eiamtriage/classify"
	"github.com/eiamtriage/eiamtriage/classify/stage"
	"github.com/eiamtriage/eiamtriage/ingest/mailbox/dovecottest"
	"github.com/eiamtriage/eiamtriage/internal/cases"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// The integration tests against a real Dovecot (dovecottest): the whole
// way from the folder to the case, with the classify stage running.

// rig is a Dovecot, the pipeline of newPipe, and the classify stage
// consuming.
type rig struct {
	*pipe
	dv *dovecottest.Server
	kv jetstream.KeyValue
}

func newRig(t *testing.T, maxSize int64) *rig {
	t.Helper()
	dv := dovecottest.Start(t)
	p := newPipe(t, maxSize)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := stage.New(ctx, p.b.JS, stage.Options{Classifier: classify.New(nil), Log: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	cc := stage.Consumer()
	cc.AckWait, cc.Backoff = 30*time.Second, []time.Duration{100 * time.Millisecond}
	sctx, scancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = pipeline.Run(sctx, p.b.JS, cc, st.Handle, zap.NewNop(), nil) }()
	t.Cleanup(func() { scancel(); <-done })
	kv, err := p.b.JS.KeyValue(ctx, pipeline.BucketCases)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{pipe: p, dv: dv, kv: kv}
}

// options are newPipe's for the Dovecot, on the real clock, reconnecting
// quickly.
func (r *rig) options(t *testing.T) Options {
	o := r.pipe.options(t, r.dv.Addr)
	o.Username, o.Password = dovecottest.User, dovecottest.Password
	o.Log = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	o.BackoffMin, o.BackoffMax, o.CommandTimeout = 100*time.Millisecond, time.Second, 10*time.Second
	o.Rand = nil
	return o
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
	waitUntil(t, 60*time.Second, fmt.Sprintf("%d cases", len(want)), func() (bool, string) {
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
	w, _ := startStoppable(t, r.options(t))
	waitUntil(t, 20*time.Second, "IDLE", func() (bool, string) { s := w.Status(); return s.Idling, fmt.Sprintf("%+v", s) })
	sub, err := r.b.Conn.SubscribeSync("eiam.case.>")
	if err != nil {
		t.Fatal(err)
	}
	raw, pid := notice(t, 1), profileID(1)
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
		raw, pid := notice(t, i), profileID(i)
		mails, pids = append(mails, raw), append(pids, pid)
	}
	if err := r.dv.FillMaildir(mails); err != nil {
		t.Fatal(err)
	}
	o := r.options(t)
	o.Batch, o.Workers = 5, 1 // slow, so that the stop falls in the middle
	w, _ := startStoppable(t, o)
	waitUntil(t, 30*time.Second, "some mails taken in", func() (bool, string) {
		s := w.Status()
		return s.Submitted >= 30, fmt.Sprintf("%d submitted", s.Submitted)
	})
	if err := r.dv.Kill(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "the watcher noticing", func() (bool, string) {
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
		raw, pid := notice(t, i), profileID(i)
		mustAppend(t, r, "INBOX", raw)
		pids = append(pids, pid)
	}
	o := r.options(t)
	w, stop := startStoppable(t, o)
	r.waitCases(t, pids)
	before := w.Status().Checkpoint
	stop()
	if err := r.dv.SetUIDValidity("INBOX", before.UIDValidity+1000); err != nil {
		t.Fatal(err)
	}
	raw, pid := notice(t, 99), profileID(99)
	mustAppend(t, r, "INBOX", raw)
	w, _ = startStoppable(t, o)
	waitUntil(t, 30*time.Second, "the resync", func() (bool, string) {
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
	small, pid := notice(t, 1), profileID(1)
	limit := int64(len(small) + 500)
	r := newRig(t, limit)
	bigRaw, _ := notice(t, 2), profileID(2)
	big := append(bigRaw, bytes.Repeat([]byte("x"), int(limit))...)
	bigUID := mustAppend(t, r, "INBOX", big)
	mustAppend(t, r, "INBOX", small)
	o := r.options(t)
	o.MaxSize = limit
	startStoppable(t, o)
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
		raw, pid := notice(t, i), profileID(i)
		mustAppend(t, r, "INBOX", raw)
		pids = append(pids, pid)
	}
	ooo := mustAppend(t, r, "INBOX", fixture(t, "not-ooo-de-auto-replied-quoting-notice.eml"))
	o := r.options(t)
	o.After, o.MoveTo = config.AfterMove, "Processed"
	w, _ := startStoppable(t, o)
	r.waitCases(t, pids)
	waitUntil(t, 20*time.Second, "the moves", func() (bool, string) {
		in, pr := folderUIDs(t, c, "INBOX"), folderUIDs(t, c, "Processed")
		return len(in) == 1 && len(pr) == 3, fmt.Sprintf("INBOX %v, Processed %v", in, pr)
	})
	in := folderUIDs(t, c, "INBOX")
	if flags, ok := in[ooo]; !ok || len(flags) != 0 {
		t.Errorf("INBOX %v: the auto-reply (UID %d) must stay, without flags", in, ooo)
	}
	waitUntil(t, 10*time.Second, "the auto-reply recorded as ignored", func() (bool, string) {
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
	forged := mustAppend(t, r, "INBOX", fixture(t, "not-lookalike-eiam-admin-ch-evil-example.eml"))
	raw, pid := notice(t, 1), profileID(1)
	mustAppend(t, r, "INBOX", raw)
	o := r.options(t)
	o.After, o.MoveTo = config.AfterMove, "Processed"
	startStoppable(t, o)
	r.waitCases(t, []string{pid})
	waitUntil(t, 10*time.Second, "the quarantine record", func() (bool, string) {
		n := r.streamCount(t, pipeline.StreamDead, event.SubjectQuarantine)
		return n == 1, fmt.Sprintf("%d quarantined", n)
	})
	waitUntil(t, 10*time.Second, "the notice moved", func() (bool, string) {
		in := folderUIDs(t, c, "INBOX")
		return len(in) == 1, fmt.Sprint(in)
	})
	if in := folderUIDs(t, c, "INBOX"); !hasUID(in, forged) {
		t.Errorf("INBOX %v: the forged notice (UID %d) must stay", in, forged)
	}
}

func hasUID(m map[uint32][]imap.Flag, uid uint32) bool {
	_, ok := m[uid]
	return ok
}
