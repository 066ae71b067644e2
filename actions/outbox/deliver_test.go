package outbox_test

import (
	"context"
	"crypto/tls"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/actions/outbox/smtpsink"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
	"github.com/eiamtriage/eiamtriage/internal/testcert"
)

// alert is a small mail with an id of its own, used as a marker: once it
// has arrived, every mail enqueued before it has had its chance.
func alert(id string) outbox.Message {
	return outbox.Message{ID: id, Kind: outbox.KindAlert, Case: "p.9", Mailbox: "be",
		To: []string{"martina.graf@be.ch"}, Subject: "Alarm", Text: "Bitte prüfen.\n"}
}

// ids returns the X-Eiamtriage ids of messages.
func ids(ms []smtpsink.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, smtpsink.Header(m.Raw, outbox.HeaderOwn))
	}
	return out
}

func count(ms []smtpsink.Message, id string) int {
	return len(slices.DeleteFunc(ids(ms), func(s string) bool { return s != id }))
}

// marker enqueues a marker mail and waits for the sink to accept it.
func marker(t *testing.T, o *outbox.Outbox, sink *smtpsink.Sink, id string) {
	t.Helper()
	if _, _, err := o.Enqueue(context.Background(), alert(id)); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, 20*time.Second, "the marker "+id, func(ms []smtpsink.Message) bool {
		return count(slices.DeleteFunc(ms, func(m smtpsink.Message) bool { return m.Code != 250 }), id) > 0
	})
}

func TestDeliveredOnceWithEnvelopeAndBytes(t *testing.T) {
	js := startJS(t)
	sink := smtpsink.Start(t, smtpsink.Options{})
	o := open(t, js, testOptions(sink.Addr()))
	runDelivery(t, o)
	m := escalation()
	if _, _, err := o.Enqueue(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	e := waitEntry(t, o, m.ID, "sent", func(e outbox.Entry) bool { return e.State == outbox.StateSent })
	marker(t, o, sink, "alert.marker")
	got := sink.Accepted()
	if n := count(got, m.ID); n != 1 {
		t.Fatalf("the sink accepted the escalation %d times, want once (all: %v)", n, ids(got))
	}
	msg := got[0]
	_, raw := mustGet(t, o, m.ID)
	if string(msg.Raw) != string(raw) {
		t.Error("the sink received other bytes than the ledger recorded")
	}
	if msg.From != "triage@be.ch" || !slices.Equal(msg.To, []string{"spiges@bfs.admin.ch", "martina.graf@be.ch"}) {
		t.Errorf("envelope MAIL FROM %q RCPT %v", msg.From, msg.To)
	}
	if e.QueueID != msg.QueueID || e.Attempts != 1 || e.SentAt.IsZero() || e.LastError != "" {
		t.Errorf("entry %+v; sink queue id %s", e, msg.QueueID)
	}
	_, att, err := smtpsink.Attachment(msg.Raw)
	if err != nil || string(att) != notice {
		t.Errorf("the escalation received does not carry the original byte for byte (%v)", err)
	}
}

func TestTemporaryFailuresThenAccepted(t *testing.T) {
	js := startJS(t)
	sink := smtpsink.Start(t, smtpsink.Options{Answer: smtpsink.Script(
		smtpsink.Reply(421, "try again later"), smtpsink.Reply(451, "local error"), smtpsink.Reply(421, "still busy"))})
	o := open(t, js, testOptions(sink.Addr()))
	runDelivery(t, o)
	m := escalation()
	if _, _, err := o.Enqueue(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	e := waitEntry(t, o, m.ID, "sent", func(e outbox.Entry) bool { return e.State == outbox.StateSent })
	marker(t, o, sink, "alert.marker")
	if n := count(sink.Accepted(), m.ID); n != 1 {
		t.Errorf("accepted %d times, want once", n)
	}
	if n := count(sink.Messages(), m.ID); n != 4 {
		t.Errorf("the sink saw %d transactions, want 3 refused and 1 accepted", n)
	}
	if e.Attempts != 4 || !strings.Contains(e.LastError, "421") || !strings.Contains(e.LastError, "still busy") {
		t.Errorf("entry after 3 temporary failures: attempts %d, last error %q", e.Attempts, e.LastError)
	}
	if dl := deadLetters(t, js); len(dl) != 0 {
		t.Errorf("dead letters for a mail that was sent: %q", dl)
	}
}

func TestRefusedConnectionRetried(t *testing.T) {
	js := startJS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there: connections are refused
	o := open(t, js, testOptions(addr))
	runDelivery(t, o)
	m := escalation()
	if _, _, err := o.Enqueue(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	e := waitEntry(t, o, m.ID, "two refused attempts", func(e outbox.Entry) bool { return e.Attempts >= 2 })
	if e.State != outbox.StateQueued || !strings.Contains(e.LastError, "refused") || e.NextAttempt.IsZero() {
		t.Errorf("entry while the relay is down: %+v", e)
	}
	sink := smtpsink.Start(t, smtpsink.Options{Addr: addr}) // the relay comes back
	waitEntry(t, o, m.ID, "sent", func(e outbox.Entry) bool { return e.State == outbox.StateSent })
	marker(t, o, sink, "alert.marker")
	if n := count(sink.Accepted(), m.ID); n != 1 {
		t.Errorf("accepted %d times, want once", n)
	}
}

func TestPermanentFailureDeadLetters(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts smtpsink.Options
		want string
		code string
	}{
		{"550 to the data", smtpsink.Options{Answer: smtpsink.Script(smtpsink.Reply(550, "content rejected"))}, "550 5.0.0 content rejected", "end of data: 550 5.0.0"},
		{"550 to a recipient", smtpsink.Options{Rcpt: func(to string) *smtp.SMTPError {
			if to == "spiges@bfs.admin.ch" {
				return smtpsink.Reply(550, "no such user")
			}
			return nil
		}}, "RCPT: 550 5.0.0 no such user", "RCPT: 550 5.0.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js := startJS(t)
			sink := smtpsink.Start(t, tc.opts)
			o := open(t, js, testOptions(sink.Addr()))
			runDelivery(t, o)
			m := escalation()
			if _, _, err := o.Enqueue(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			e := waitEntry(t, o, m.ID, "failed", func(e outbox.Entry) bool { return e.State == outbox.StateFailed })
			if !strings.Contains(e.LastError, tc.want) || e.Attempts != 1 {
				t.Errorf("entry: attempts %d, last error %q, want %q", e.Attempts, e.LastError, tc.want)
			}
			dl := waitDead(t, js, 1)
			if len(dl) != 1 || !strings.Contains(dl[0], m.ID) || !strings.Contains(dl[0], tc.code) || strings.Contains(dl[0], "no such user") {
				t.Errorf("dead letters %q, want one naming %s and %q, without the relay's text", dl, m.ID, tc.code)
			}
			failed, err := o.List(context.Background(), outbox.Filter{States: outbox.ProblemStates})
			if err != nil || len(failed) != 1 || failed[0].ID != m.ID {
				t.Errorf("List(failed) = %v, %v", failed, err)
			}
			if n := count(sink.Accepted(), m.ID); n != 0 {
				t.Errorf("a refused mail was accepted %d times", n)
			}
		})
	}
}

func TestRetryDeadlineWithInjectedClock(t *testing.T) {
	js := startJS(t)
	sink := smtpsink.Start(t, smtpsink.Options{Answer: func(smtpsink.Try) *smtp.SMTPError {
		return smtpsink.Reply(421, "relay down for the weekend")
	}})
	clk := newClock(now)
	opts := testOptions(sink.Addr())
	opts.Now, opts.RetryFor = clk.Now, 72*time.Hour
	opts.Backoff = []time.Duration{10 * time.Millisecond, 20 * time.Millisecond}
	o := open(t, js, opts)
	runDelivery(t, o)
	m := escalation()
	if _, _, err := o.Enqueue(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	// Within the retry time, however many attempts fail, the mail stays
	// queued, and each failure schedules the next by the backoff.
	e := waitEntry(t, o, m.ID, "three failed attempts", func(e outbox.Entry) bool { return e.Attempts >= 3 && e.State == outbox.StateQueued })
	if want := now.Add(20 * time.Millisecond); !e.NextAttempt.Equal(want) {
		t.Errorf("next attempt %s, want the clock plus the last backoff, %s", e.NextAttempt, want)
	}
	if !e.RetryUntil.Equal(now.Add(72 * time.Hour)) {
		t.Errorf("retry until %s", e.RetryUntil)
	}
	clk.Advance(71 * time.Hour)
	e = waitEntry(t, o, m.ID, "two more attempts", func(x outbox.Entry) bool { return x.Attempts >= e.Attempts+2 })
	if e.State != outbox.StateQueued {
		t.Fatalf("after 71 hours the mail is %s, want still queued", e.State)
	}
	clk.Advance(time.Hour + time.Second)
	e = waitEntry(t, o, m.ID, "failed", func(e outbox.Entry) bool { return e.State == outbox.StateFailed })
	if !strings.Contains(e.Note, "still unsent after retrying for 72h") || !strings.Contains(e.LastError, "421") {
		t.Errorf("failed entry: note %q, last error %q", e.Note, e.LastError)
	}
	dl := waitDead(t, js, 1)
	if !strings.Contains(dl[0], "still unsent") {
		t.Errorf("dead letter %q", dl[0])
	}
}

func TestTLS(t *testing.T) {
	serverTLS, roots := testcert.New(t)
	for _, tc := range []struct {
		name     string
		mode     outbox.TLSMode
		implicit bool
	}{
		{"starttls", outbox.TLSStartTLS, false},
		{"implicit", outbox.TLSImplicit, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js := startJS(t)
			sink := smtpsink.Start(t, smtpsink.Options{TLS: serverTLS, Implicit: tc.implicit, Users: map[string]string{"triage": "s3cret"}})
			opts := testOptions(sink.Addr())
			opts.Relay.TLS = tc.mode
			opts.Relay.TLSConfig = &tls.Config{RootCAs: roots}
			opts.Relay.Username, opts.Relay.Password = "triage", "s3cret"
			o := open(t, js, opts)
			runDelivery(t, o)
			m := escalation()
			if _, _, err := o.Enqueue(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			waitEntry(t, o, m.ID, "sent", func(e outbox.Entry) bool { return e.State == outbox.StateSent })
			got := sink.Accepted()
			if len(got) != 1 || !got[0].TLS || got[0].User != "triage" {
				t.Fatalf("accepted %d; TLS %v, user %q", len(got), len(got) > 0 && got[0].TLS, got[0].User)
			}
		})
		t.Run(tc.name+" with an untrusted certificate", func(t *testing.T) {
			js := startJS(t)
			sink := smtpsink.Start(t, smtpsink.Options{TLS: serverTLS, Implicit: tc.implicit})
			opts := testOptions(sink.Addr())
			opts.Relay.TLS = tc.mode // the system's roots: the test CA is not among them
			o := open(t, js, opts)
			runDelivery(t, o)
			m := escalation()
			if _, _, err := o.Enqueue(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			e := waitEntry(t, o, m.ID, "a failed attempt", func(e outbox.Entry) bool { return e.Attempts >= 1 && e.LastError != "" })
			if e.State != outbox.StateQueued || !strings.Contains(e.LastError, "certificate") {
				t.Errorf("entry %s, last error %q: want queued, the certificate named", e.State, e.LastError)
			}
			if n := len(sink.Messages()); n != 0 {
				t.Errorf("%d message(s) went to a relay whose certificate is not trusted", n)
			}
		})
	}
	t.Run("wrong password is retried, not dead-lettered", func(t *testing.T) {
		js := startJS(t)
		sink := smtpsink.Start(t, smtpsink.Options{Users: map[string]string{"triage": "s3cret"}})
		opts := testOptions(sink.Addr())
		opts.Relay.Username, opts.Relay.Password = "triage", "wrong"
		o := open(t, js, opts)
		runDelivery(t, o)
		m := escalation()
		if _, _, err := o.Enqueue(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		e := waitEntry(t, o, m.ID, "two failed attempts", func(e outbox.Entry) bool { return e.Attempts >= 2 })
		if e.State != outbox.StateQueued || !strings.Contains(e.LastError, "535") {
			t.Errorf("entry %s, last error %q", e.State, e.LastError)
		}
	})
}

func TestResendSameMessageID(t *testing.T) {
	js := startJS(t)
	sink := smtpsink.Start(t, smtpsink.Options{})
	o := open(t, js, testOptions(sink.Addr()))
	runDelivery(t, o)
	ctx := context.Background()
	m := escalation()
	if _, _, err := o.Enqueue(ctx, m); err != nil {
		t.Fatal(err)
	}
	waitEntry(t, o, m.ID, "sent", func(e outbox.Entry) bool { return e.State == outbox.StateSent })
	if err := o.Resend(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	e := waitEntry(t, o, m.ID, "sent again", func(e outbox.Entry) bool { return e.State == outbox.StateSent && e.Resends == 1 })
	marker(t, o, sink, "alert.marker")
	got := slices.DeleteFunc(sink.Accepted(), func(x smtpsink.Message) bool { return smtpsink.Header(x.Raw, outbox.HeaderOwn) != m.ID })
	if len(got) != 2 || string(got[0].Raw) != string(got[1].Raw) {
		t.Fatalf("after one resend the sink has %d copies (want 2, identical)", len(got))
	}
	if e.Attempts != 2 || !strings.Contains(e.Note, "resend 1") {
		t.Errorf("entry after the resend: %+v", e)
	}
}

func TestDuplicateRequestsSendNothing(t *testing.T) {
	js := startJS(t)
	sink := smtpsink.Start(t, smtpsink.Options{})
	o := open(t, js, testOptions(sink.Addr()))
	runDelivery(t, o)
	ctx := context.Background()
	m := escalation()
	if _, _, err := o.Enqueue(ctx, m); err != nil {
		t.Fatal(err)
	}
	waitEntry(t, o, m.ID, "sent", func(e outbox.Entry) bool { return e.State == outbox.StateSent })
	// A request under another event id (past the duplicate window, a
	// replayed stream) and a second Enqueue.
	ev, err := event.New(outbox.TypeSend, "test", "replayed.1", now, map[string]string{"id": m.ID})
	if err != nil {
		t.Fatal(err)
	}
	if err := pipeline.Publish(ctx, js, outbox.Subject, ev); err != nil {
		t.Fatal(err)
	}
	if _, isNew, err := o.Enqueue(ctx, m); err != nil || isNew {
		t.Fatalf("Enqueue again = %v, %v", isNew, err)
	}
	marker(t, o, sink, "alert.marker")
	if n := count(sink.Messages(), m.ID); n != 1 {
		t.Errorf("the sink received the mail %d times, want once", n)
	}
}

func TestDryRunDeliveryMarksQueuedMail(t *testing.T) {
	js := startJS(t)
	sink := smtpsink.Start(t, smtpsink.Options{})
	// Recorded by an outbox that sends, delivered by one in dry-run mode.
	if _, _, err := open(t, js, testOptions(sink.Addr())).Enqueue(context.Background(), escalation()); err != nil {
		t.Fatal(err)
	}
	opts := testOptions(sink.Addr())
	opts.DryRun = true
	o := open(t, js, opts)
	runDelivery(t, o)
	e := waitEntry(t, o, escalation().ID, "dry-run", func(e outbox.Entry) bool { return e.State == outbox.StateDryRun })
	if e.Attempts != 0 || len(sink.Messages()) != 0 {
		t.Errorf("dry run: %d attempts, %d messages at the sink", e.Attempts, len(sink.Messages()))
	}
}

func TestStopMidBatchAndRestart(t *testing.T) {
	js := startJS(t)
	held := make(chan struct{}, 16)
	gate := make(chan struct{})
	sink := smtpsink.Start(t, smtpsink.Options{Answer: func(tr smtpsink.Try) *smtp.SMTPError {
		if tr.N > 2 {
			held <- struct{}{}
			<-gate
		}
		return nil
	}})
	opts := testOptions(sink.Addr())
	o := open(t, js, opts)
	ctx := context.Background()
	const n = 12
	var want []string
	for i := range n {
		m := alert("alert.batch." + string(rune('a'+i)))
		want = append(want, m.ID)
		if _, _, err := o.Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- o.Run(rctx, nil) }()
	<-held // a message is in the relay's hands, its answer pending
	cancel()
	close(gate) // the attempts in flight finish within the shutdown grace
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	before := len(sink.Accepted())
	if before >= n {
		t.Fatalf("all %d mails were sent before the stop: not a stop mid-batch", before)
	}
	t.Logf("%d of %d mails sent before the stop", before, n)

	o2 := open(t, js, opts) // the restarted process
	runDelivery(t, o2)
	for _, id := range want {
		waitEntry(t, o2, id, "sent", func(e outbox.Entry) bool { return e.State == outbox.StateSent })
	}
	marker(t, o2, sink, "alert.marker")
	got := sink.Accepted()
	for _, id := range want {
		if c := count(got, id); c != 1 {
			t.Errorf("mail %s accepted %d times, want once", id, c)
		}
	}
}

func TestNoRelayConfigured(t *testing.T) {
	js := startJS(t)
	o := open(t, js, testOptions(""))
	runDelivery(t, o)
	m := escalation()
	if _, _, err := o.Enqueue(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	e := waitEntry(t, o, m.ID, "a failed attempt", func(e outbox.Entry) bool { return e.Attempts >= 1 })
	if e.State != outbox.StateQueued || !strings.Contains(e.LastError, "smtp.address is empty") {
		t.Errorf("entry %s, last error %q", e.State, e.LastError)
	}
}

func TestRenderedMailMissing(t *testing.T) {
	js := startJS(t)
	sink := smtpsink.Start(t, smtpsink.Options{})
	o := open(t, js, testOptions(sink.Addr()))
	m := escalation()
	e, _, err := o.Enqueue(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := js.ObjectStore(context.Background(), pipeline.BucketOutboxMail)
	if err != nil {
		t.Fatal(err)
	}
	if err := obj.Delete(context.Background(), e.Object); err != nil {
		t.Fatal(err)
	}
	runDelivery(t, o)
	e = waitEntry(t, o, m.ID, "failed", func(e outbox.Entry) bool { return e.State == outbox.StateFailed })
	if !strings.Contains(e.Note, "missing") || len(waitDead(t, js, 1)) != 1 || len(sink.Messages()) != 0 {
		t.Errorf("entry %+v", e)
	}
}
