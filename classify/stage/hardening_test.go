package stage_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eiamtriage/eiamtriage/ingest"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/mailstore"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// largeNotice returns the notice of sample 0007 (private-email) with a PDF
// of about 900 KiB attached: well over event.InlineMax, so it travels in
// the mail object store.
func largeNotice(t *testing.T) []byte {
	t.Helper()
	raw := string(sample(t, "0007.eml"))
	hdr, body, ok := strings.Cut(raw, "\r\n\r\n")
	if !ok {
		t.Fatal("sample 0007 has no header end")
	}
	const alt = "Content-Type: multipart/alternative;\r\n boundary=\"===============2325454395842308788==\""
	if !strings.Contains(hdr, alt) {
		t.Fatalf("sample 0007 header lacks %q", alt)
	}
	hdr = strings.Replace(hdr, alt, "Content-Type: multipart/mixed; boundary=\"outer\"", 1)
	pdf := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("%PDF-1.4 padding line\n"), 30000))
	var b strings.Builder
	b.WriteString(hdr + "\r\n\r\n--outer\r\n" + alt + "\r\n\r\n" + body + "\r\n--outer\r\n" +
		"Content-Type: application/pdf; name=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename=\"a.pdf\"\r\n\r\n")
	for len(pdf) > 76 {
		b.WriteString(pdf[:76] + "\r\n")
		pdf = pdf[76:]
	}
	b.WriteString(pdf + "\r\n--outer--\r\n")
	if b.Len() <= event.InlineMax {
		t.Fatalf("the large notice is %d bytes, not over %d", b.Len(), event.InlineMax)
	}
	return []byte(b.String())
}

// TestLargeMailThroughTheObjectStore: a notice over event.InlineMax goes
// into the mail object store (its event names it and carries no bytes),
// becomes its case like any other, and the mail store gives it back byte
// for byte by the sequence the case recorded.
func TestLargeMailThroughTheObjectStore(t *testing.T) {
	e := newEnv(t)
	e.run(t, nil)
	raw := largeNotice(t)
	mr := e.submit(t, raw, "large")
	if mr.Object != event.MailID(raw) || mr.Raw != nil || mr.Size != int64(len(raw)) {
		t.Fatalf("receipt of a %d-byte mail: object %q, %d raw bytes, size %d; want the object %s and no raw bytes",
			len(raw), mr.Object, len(mr.Raw), mr.Size, event.MailID(raw))
	}
	eventually(t, "the large notice's case", func() bool { return e.count("case") == 1 })
	cs := e.cases(t)
	if len(cs) != 1 || cs[0].Class != event.ClassPrivateEmail || len(cs[0].Notices) != 1 {
		t.Fatalf("cases %+v, want one private-email case with one notice", cs)
	}
	ref := cs[0].Notices[0]
	if ref.MailID != mr.MailID || ref.ReceivedSeq == 0 {
		t.Fatalf("notice ref %+v", ref)
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	// The event in the stream names the object and holds no mail bytes.
	st, err := e.js.Stream(ctx, pipeline.StreamNotices)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetMsg(ctx, ref.ReceivedSeq)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Data) > event.InlineMax/4 {
		t.Errorf("the mail-received event is %d bytes: the mail travelled inline", len(msg.Data))
	}
	var stored event.MailReceived
	if _, err := event.ParseInto(msg.Data, &stored); err != nil || stored.Object != mr.MailID || stored.Raw != nil {
		t.Fatalf("stored event: object %q, %d raw bytes, err %v", stored.Object, len(stored.Raw), err)
	}

	ms, err := mailstore.Open(ctx, e.js)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ms.Mail(ctx, ref.ReceivedSeq, ref.MailID)
	if err != nil {
		t.Fatalf("mailstore.Mail: %v", err)
	}
	if !bytes.Equal(back, raw) {
		t.Fatalf("mailstore gave back %d bytes, not the %d of the mail", len(back), len(raw))
	}
	if n, err := ms.Notice(ctx, ref); err != nil || !bytes.Equal(n, raw) {
		t.Fatalf("mailstore.Notice of a direct notice: %d bytes, %v; want the whole mail", len(n), err)
	}

	// The same large mail again stores nothing twice.
	again := e.submit(t, raw, "large again")
	if again.Object != mr.Object {
		t.Errorf("second submission: object %q", again.Object)
	}
	obj, err := e.js.ObjectStore(ctx, pipeline.BucketMail)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	list, err := obj.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range list {
		names = append(names, o.Name)
	}
	if len(names) != 1 || names[0] != mr.MailID {
		t.Errorf("objects %v, want only %s", names, mr.MailID)
	}
}

// TestTooLargeMailRefused: a mail over the intake's limit is refused with
// ingest.ErrTooLarge naming the limit, and nothing is stored: no event, no
// object.
func TestTooLargeMailRefused(t *testing.T) {
	e := newEnv(t) // the intake's limit is 1 MiB
	raw := append(bytes.Repeat([]byte("X-Padding: 0123456789012345678901234567890123456789\r\n"), (1<<20)/52), "\r\nbody\r\n"...)
	if len(raw) <= 1<<20 {
		t.Fatalf("the mail is %d bytes, not over 1 MiB", len(raw))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err := e.intake.Submit(ctx, raw, testMailbox, "huge.eml")
	if !errors.Is(err, ingest.ErrTooLarge) {
		t.Fatalf("Submit of %d bytes: %v, want ingest.ErrTooLarge", len(raw), err)
	}
	for _, s := range []string{"huge.eml", "1048576", "pipeline.max_mail_size"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
	// Exactly at the limit it is taken in: the bound is not off by one.
	if _, err := e.intake.Submit(ctx, raw[len(raw)-1<<20:], testMailbox, "limit.eml"); err != nil {
		t.Fatalf("a mail of exactly 1 MiB: %v", err)
	}
	e.checkStored(t, pipeline.StreamNotices, 1)
	obj, err := e.js.ObjectStore(ctx, pipeline.BucketMail)
	if err != nil {
		t.Fatal(err)
	}
	list, err := obj.List(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		t.Fatal(err)
	}
	for _, o := range list {
		if o.Name == event.MailID(raw) {
			t.Errorf("the refused mail is in the object store")
		}
	}
}

// TestUnreadableMailIsRecordedWhereTheDeadLettersAre: a mail the ingest
// cannot read is recorded on eiam.dead.unreadable (not among the ignored
// mail), and pipeline.ReadDead returns it with its kind, reason and
// mailbox, for `dead list`.
func TestUnreadableMailIsRecordedWhereTheDeadLettersAre(t *testing.T) {
	e := newEnv(t)
	e.run(t, nil)
	raw := []byte("\x00\x01 no header \xff\xfe\x1b[2J\r\nline without a colon\r\n\r\nbody\r\n")
	mr := e.submit(t, raw, "binary.eml")
	if mr.Reading.Kind != event.KindUnreadable || mr.Reading.Notice != nil {
		t.Fatalf("reading of a binary mail: kind %q, notice %v; want %s", mr.Reading.Kind, mr.Reading.Notice != nil, event.KindUnreadable)
	}
	eventually(t, "the unreadable record", func() bool { return e.count("unreadable") == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	recs, err := pipeline.ReadDead(ctx, e.js, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("%d records in the dead-letter stream, want 1: %+v", len(recs), recs)
	}
	r := recs[0]
	if r.Subject != event.SubjectUnreadable || r.Event.Type != event.TypeMailIgnored || r.Unreadable == nil || r.Err != nil {
		t.Fatalf("record: subject %s, type %s, unreadable %v, err %v", r.Subject, r.Event.Type, r.Unreadable, r.Err)
	}
	u := r.Unreadable
	if u.Kind != event.KindUnreadable || u.Reason == "" || u.Mailbox != testMailbox || u.MailID != mr.MailID || u.Source != "binary.eml" || u.ReceivedSeq == 0 {
		t.Errorf("unreadable record %+v", u)
	}
	// The stage settled it: nothing else was published for it.
	settledStage(t, e)
	if n, m := e.count("ignored"), len(e.cases(t)); n != 0 || m != 0 {
		t.Errorf("%d ignored records and %d cases for an unreadable mail, want none", n, m)
	}
}

// settledStage waits until the classify stage's consumer has acknowledged
// every message of the notices stream: whatever its handlers publish is
// published before the ack, so a later check sees all of it.
func settledStage(t *testing.T, e *env) {
	t.Helper()
	eventually(t, "the classify consumer to settle every message", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		st, err := e.js.Stream(ctx, pipeline.StreamNotices)
		if err != nil {
			return false
		}
		c, err := e.js.Consumer(ctx, pipeline.StreamNotices, "classify")
		if err != nil {
			return false
		}
		info := c.CachedInfo()
		return info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= st.CachedInfo().State.LastSeq
	})
}
