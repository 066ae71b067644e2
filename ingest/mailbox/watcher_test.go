package mailbox

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
)

var allCaps = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapMove: {}, imap.CapUIDPlus: {}}

// sources returns the events' sources, sorted.
func sources(mrs []event.MailReceived) []string {
	var s []string
	for _, mr := range mrs {
		s = append(s, mr.Source)
	}
	slices.Sort(s)
	return s
}

func waitReceived(t *testing.T, p *pipe, n int) []event.MailReceived {
	t.Helper()
	var got []event.MailReceived
	waitUntil(t, 20*time.Second, fmt.Sprintf("%d mail-received events", n), func() (bool, string) {
		got = p.received(t)
		return len(got) >= n, fmt.Sprintf("%d events: %v", len(got), sources(got))
	})
	if len(got) != n {
		t.Fatalf("%d mail-received events, want %d: %v", len(got), n, sources(got))
	}
	return got
}

func waitCheckpoint(t *testing.T, p *pipe, uid uint32) Checkpoint {
	t.Helper()
	var cp Checkpoint
	waitUntil(t, 20*time.Second, fmt.Sprintf("the checkpoint at UID %d", uid), func() (bool, string) {
		cp = p.checkpoint(t, "INBOX")
		return cp.UID == uid, fmt.Sprintf("%+v", cp)
	})
	return cp
}

// TestTakesInAndMovesNoticesOnly: every mail of the folder is taken in
// (notice or not), in order, with its source; after the broker has them,
// the notices move to Processed and the auto-reply stays untouched; the
// checkpoint covers them all; a mail appended while idling is taken in
// (IDLE woke the watcher); the metrics and Ready say so.
func TestTakesInAndMovesNoticesOnly(t *testing.T) {
	srv := newMemServer(t, allCaps, nil)
	p := newPipe(t, 0)
	srv.append(t, "INBOX", notice(t, 1))
	ooo := srv.append(t, "INBOX", fixture(t, "not-ooo-fr-auto-replied.eml"))
	srv.append(t, "INBOX", notice(t, 2))

	o := p.options(t, srv.addr)
	o.After, o.MoveTo = config.AfterMove, "Processed"
	reg := prometheus.NewRegistry()
	o.Metrics = NewMetrics(reg)
	w := start(t, o)

	got := waitReceived(t, p, 3)
	cp := waitCheckpoint(t, p, 3)
	want := []string{}
	for uid := 1; uid <= 3; uid++ {
		want = append(want, fmt.Sprintf("imap:be/INBOX/%d/%d", cp.UIDValidity, uid))
	}
	if s := sources(got); !slices.Equal(s, want) {
		t.Errorf("sources %v, want %v", s, want)
	}
	c := srv.client(t)
	waitUntil(t, 10*time.Second, "the notices moved", func() (bool, string) {
		in := folderUIDs(t, c, "INBOX")
		return len(in) == 1, fmt.Sprint(in)
	})
	if in := folderUIDs(t, c, "INBOX"); len(in[ooo]) != 0 || len(in) != 1 {
		t.Errorf("INBOX after the move = %v, want only the auto-reply (UID %d), without flags", in, ooo)
	}
	if pr := folderUIDs(t, c, "Processed"); len(pr) != 2 {
		t.Errorf("Processed = %v, want the two notices", pr)
	}

	waitUntil(t, 10*time.Second, "the watcher idling", func() (bool, string) {
		s := w.Status()
		return s.State == StateIdle && s.Idle, fmt.Sprintf("%+v", s)
	})
	srv.append(t, "INBOX", notice(t, 3))
	waitReceived(t, p, 4)
	waitCheckpoint(t, p, 4)
	s := w.Status()
	if s.LastIdleWake.IsZero() || !s.Connected || !s.LeaseHeld || s.Submitted != 4 {
		t.Errorf("status after a mail while idling: %+v", s)
	}
	if err := w.Ready(context.Background()); err != nil {
		t.Errorf("Ready: %v", err)
	}
	expect := `
# HELP eiamtriage_mailbox_connected 1 while the mailbox's IMAP connection is up (logged in, folder selected), else 0.
# TYPE eiamtriage_mailbox_connected gauge
eiamtriage_mailbox_connected{mailbox="be"} 1
# HELP eiamtriage_mailbox_mails_total Mails of the mailbox by outcome: submitted (announced), duplicate (announced before), dead (dead-lettered), retry (to be fetched or submitted again).
# TYPE eiamtriage_mailbox_mails_total counter
eiamtriage_mailbox_mails_total{mailbox="be",outcome="dead"} 0
eiamtriage_mailbox_mails_total{mailbox="be",outcome="duplicate"} 0
eiamtriage_mailbox_mails_total{mailbox="be",outcome="retry"} 0
eiamtriage_mailbox_mails_total{mailbox="be",outcome="submitted"} 4
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expect), "eiamtriage_mailbox_connected", "eiamtriage_mailbox_mails_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "eiamtriage_mailbox_last_idle_wakeup_timestamp_seconds", "eiamtriage_mailbox_backlog", "eiamtriage_mailbox_lease_held"); err != nil || n != 3 {
		t.Errorf("mailbox gauges: %d, %v", n, err)
	}
}

// TestSeenAfterOther: after_other: seen flags the mail that is not a
// notice, and only after it was taken in; the notice is kept unflagged.
func TestSeenAfterOther(t *testing.T) {
	srv := newMemServer(t, allCaps, nil)
	p := newPipe(t, 0)
	n := srv.append(t, "INBOX", notice(t, 1))
	ooo := srv.append(t, "INBOX", fixture(t, "not-ooo-fr-auto-replied.eml"))
	o := p.options(t, srv.addr)
	o.AfterOther = config.AfterSeen
	start(t, o)
	waitReceived(t, p, 2)
	waitCheckpoint(t, p, 2)
	in := folderUIDs(t, srv.client(t), "INBOX")
	if !slices.Contains(in[ooo], imap.FlagSeen) || len(in[n]) != 0 {
		t.Errorf("flags %v: want \\Seen on the auto-reply (UID %d) only", in, ooo)
	}
}

// TestMoveWithoutMOVE: without MOVE the watcher copies, waits for the
// copy, then flags and expunges exactly its UIDs (UIDPLUS); another
// client's \Deleted mail is never expunged. Without UIDPLUS too, the
// original is only flagged.
func TestMoveWithoutMOVE(t *testing.T) {
	for _, tc := range []struct {
		name    string
		caps    imap.CapSet
		expunge bool
	}{
		{"UIDPLUS", imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}}, true},
		{"neither", imap.CapSet{imap.CapIMAP4rev1: {}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newMemServer(t, tc.caps, nil)
			p := newPipe(t, 0)
			other := srv.append(t, "INBOX", fixture(t, "not-ooo-fr-auto-replied.eml"))
			c := srv.client(t)
			if _, err := c.Select("INBOX", nil).Wait(); err != nil {
				t.Fatal(err)
			}
			// Another mail program deleted this one but has not expunged.
			if err := c.Store(imap.UIDSetNum(imap.UID(other)), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
				t.Fatal(err)
			}
			if err := c.Unselect().Wait(); err != nil {
				t.Fatal(err)
			}
			nt := srv.append(t, "INBOX", notice(t, 1))
			o := p.options(t, srv.addr)
			o.After, o.MoveTo = config.AfterMove, "Processed"
			start(t, o)
			waitReceived(t, p, 2)
			waitCheckpoint(t, p, nt)
			waitUntil(t, 10*time.Second, "the notice copied", func() (bool, string) {
				pr := folderUIDs(t, c, "Processed")
				return len(pr) == 1, fmt.Sprint(pr)
			})
			in := folderUIDs(t, c, "INBOX")
			if _, ok := in[other]; !ok {
				t.Errorf("the other client's \\Deleted mail was expunged: INBOX %v", in)
			}
			flags, ok := in[nt]
			switch {
			case tc.expunge && ok:
				t.Errorf("the moved notice is still in INBOX: %v", in)
			case !tc.expunge && !slices.Contains(flags, imap.FlagDeleted):
				t.Errorf("without UIDPLUS the original must stay, flagged \\Deleted: INBOX %v", in)
			}
		})
	}
}

// TestMoveRefusedKeepsMail: a move to a folder that does not exist is
// refused (NO [TRYCREATE]): the mail stays in INBOX, and the checkpoint
// still passes it (the mail is taken in; only the tidying failed).
func TestMoveRefusedKeepsMail(t *testing.T) {
	srv := newMemServer(t, allCaps, nil)
	p := newPipe(t, 0)
	uid := srv.append(t, "INBOX", notice(t, 1))
	o := p.options(t, srv.addr)
	o.After, o.MoveTo = config.AfterMove, "Nowhere"
	start(t, o)
	waitReceived(t, p, 1)
	waitCheckpoint(t, p, uid)
	if in := folderUIDs(t, srv.client(t), "INBOX"); len(in) != 1 {
		t.Errorf("INBOX %v: the mail must stay when the move is refused", in)
	}
}

// TestOversizeBecomesDeadLetter: a mail over the size limit is not read
// into memory; it becomes a dead letter naming mailbox, folder and UID,
// stays in the folder, and does not hold back the mail behind it.
func TestOversizeBecomesDeadLetter(t *testing.T) {
	srv := newMemServer(t, allCaps, nil)
	small := notice(t, 2)
	p := newPipe(t, int64(len(small)+100))
	big := append(notice(t, 1), bytes.Repeat([]byte("x"), 4000)...)
	bigUID := srv.append(t, "INBOX", big)
	srv.append(t, "INBOX", small)
	o := p.options(t, srv.addr)
	o.MaxSize = int64(len(small) + 100)
	start(t, o)
	got := waitReceived(t, p, 1)
	cp := waitCheckpoint(t, p, 2)
	if n := got[0].Reading.Notice; n == nil || n.ProfileID != profileID(2) {
		t.Errorf("took in %+v, want the small notice (profile %s)", got[0].Reading, profileID(2))
	}
	dls := p.dead(t)
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	dl := dls[0]
	prefix := fmt.Sprintf(`mailbox be, folder "INBOX", UID %d (UIDVALIDITY %d): the mail is `, bigUID, cp.UIDValidity)
	var size int64
	if !strings.HasPrefix(dl.Reason, prefix) || !dl.Permanent || dl.Stage != DeadStage || dl.Headers["Uid"][0] != fmt.Sprint(bigUID) {
		t.Errorf("dead letter %+v\nwant a permanent one of stage %s whose reason starts %q", dl, DeadStage, prefix)
	} else if _, err := fmt.Sscanf(dl.Reason[len(prefix):], "%d bytes, over the size limit", &size); err != nil || size < int64(len(big)) {
		t.Errorf("reason %q: want the size (about %d bytes) and the limit named (%v)", dl.Reason, len(big), err)
	}
	if in := folderUIDs(t, srv.client(t), "INBOX"); len(in) != 2 {
		t.Errorf("INBOX %v: both mails stay (keep)", in)
	}
}

// TestUIDValidityChangeResyncs: the folder deleted and made again with the
// same mails (a new UIDVALIDITY) while the daemon was stopped is read
// again from the start; every mail is recognised (a duplicate receipt), no
// event is added, and the checkpoint carries the new UIDVALIDITY.
func TestUIDValidityChangeResyncs(t *testing.T) {
	srv := newMemServer(t, allCaps, nil)
	p := newPipe(t, 0)
	mails := [][]byte{notice(t, 1), notice(t, 2)}
	for _, m := range mails {
		srv.append(t, "INBOX", m)
	}
	o := p.options(t, srv.addr)
	_, stop := startStoppable(t, o)
	waitReceived(t, p, 2)
	before := waitCheckpoint(t, p, 2)
	stop()

	if err := srv.user.Delete("INBOX"); err != nil {
		t.Fatal(err)
	}
	if err := srv.user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	for _, m := range mails {
		srv.append(t, "INBOX", m)
	}
	srv.append(t, "INBOX", notice(t, 3))
	w := start(t, o)
	waitUntil(t, 20*time.Second, "the new UIDVALIDITY in the checkpoint", func() (bool, string) {
		cp := p.checkpoint(t, "INBOX")
		return cp.UIDValidity != before.UIDValidity && cp.UID == 3, fmt.Sprintf("%+v (before %+v)", cp, before)
	})
	got := p.received(t)
	if len(got) != 3 {
		t.Errorf("%d events after the resync, want 3 (two recognised, one new): %v", len(got), sources(got))
	}
	if s := w.Status(); s.Duplicates != 2 || s.Submitted != 1 {
		t.Errorf("duplicates %d, submitted %d; want 2 and 1", s.Duplicates, s.Submitted)
	}
}
