package outbox_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/actions/outbox/smtpsink"
	"github.com/eiamtriage/eiamtriage/internal/broker"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// states returns the states the ledger recorded for id, oldest first.
func states(t *testing.T, js jetstream.JetStream, id string) []outbox.State {
	t.Helper()
	kv, err := js.KeyValue(context.Background(), pipeline.BucketOutbox)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := kv.History(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []outbox.State
	for _, h := range hist {
		var e outbox.Entry
		if err := json.Unmarshal(h.Value(), &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e.State)
	}
	return out
}

func contains(ss []outbox.State, s outbox.State) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// holdSink holds its answer to the listed messages until release is
// closed, reporting each on held.
func holdSink(t *testing.T, hold ...int) (sink *smtpsink.Sink, held chan int, release chan struct{}) {
	held, release = make(chan int, 8), make(chan struct{})
	sink = smtpsink.Start(t, smtpsink.Options{Answer: func(tr smtpsink.Try) *smtp.SMTPError {
		for _, n := range hold {
			if tr.N == n {
				held <- n
				<-release
			}
		}
		return nil
	}})
	return sink, held, release
}

// The relay took the data and never answered: the outcome is unknown.
// The first time the mail is sent again with the same Message-ID; the
// second time it waits for an operator.
func TestUnknownOutcomeNoAnswer(t *testing.T) {
	t.Run("resent once", func(t *testing.T) {
		js := startJS(t)
		sink, _, release := holdSink(t, 1)
		opts := testOptions(sink.Addr())
		opts.Relay.Timeout = 300 * time.Millisecond
		o := open(t, js, opts)
		runDelivery(t, o)
		m := escalation()
		if _, _, err := o.Enqueue(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		e := waitEntry(t, o, m.ID, "sent after an unknown outcome", func(e outbox.Entry) bool { return e.State == outbox.StateSent })
		close(release) // the relay answers the first copy, to nobody
		marker(t, o, sink, "alert.marker")
		got := sink.Accepted()
		if c := count(got, m.ID); c != 2 {
			t.Fatalf("the relay took %d copies, want 2 (the unknown one and its resend)", c)
		}
		if a, b := smtpsink.Header(got[0].Raw, "Message-Id"), smtpsink.Header(got[1].Raw, "Message-Id"); a != b || a != e.MessageID {
			t.Errorf("Message-IDs %s and %s, want both %s", a, b, e.MessageID)
		}
		if e.UnknownOutcomes != 1 || e.Attempts != 2 || !strings.Contains(e.Note, "same Message-ID") {
			t.Errorf("entry: unknown outcomes %d, attempts %d, note %q", e.UnknownOutcomes, e.Attempts, e.Note)
		}
		if h := states(t, js, m.ID); !contains(h, outbox.StateUnknownOutcome) {
			t.Errorf("the ledger never recorded the unknown outcome: %v", h)
		}
		if dl := deadLetters(t, js); len(dl) != 0 {
			t.Errorf("dead letters %q", dl)
		}
	})
	t.Run("twice: left to the operator", func(t *testing.T) {
		js := startJS(t)
		sink, _, release := holdSink(t, 1, 2)
		opts := testOptions(sink.Addr())
		opts.Relay.Timeout = 300 * time.Millisecond
		o := open(t, js, opts)
		runDelivery(t, o)
		m := escalation()
		if _, _, err := o.Enqueue(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		e := waitEntry(t, o, m.ID, "a second unknown outcome", func(e outbox.Entry) bool { return e.UnknownOutcomes == 2 })
		dl := waitDead(t, js, 1)
		close(release)
		marker(t, o, sink, "alert.marker")
		if c := count(sink.Messages(), m.ID); c != 2 {
			t.Errorf("the relay saw %d copies, want 2: no third attempt", c)
		}
		e, _ = mustGet(t, o, m.ID)
		if e.State != outbox.StateUnknownOutcome || !strings.Contains(e.Note, "outbox resend "+m.ID) {
			t.Errorf("entry %s, note %q", e.State, e.Note)
		}
		if !strings.Contains(dl[0], m.ID) || !strings.Contains(dl[0], "unknown-outcome") {
			t.Errorf("dead letter %q", dl[0])
		}
		problems, err := o.List(context.Background(), outbox.Filter{States: outbox.ProblemStates})
		if err != nil || len(problems) != 1 {
			t.Errorf("List(problems) = %d entries, %v", len(problems), err)
		}
		// The operator decides: send it again.
		if err := o.Resend(context.Background(), m.ID); err != nil {
			t.Fatal(err)
		}
		waitEntry(t, o, m.ID, "sent by the operator's resend", func(e outbox.Entry) bool { return e.State == outbox.StateSent })
	})
}

// The process dies after the relay took the data and before the answer
// was recorded (SIGKILL of a delivery subprocess). The next delivery finds
// the attempt begun and without outcome, records it, and sends once more
// with the same Message-ID.
func TestCrashAfterDataUnknownOutcome(t *testing.T) {
	b := startBroker(t)
	js := b.JS
	sink, held, release := holdSink(t, 1)
	o := open(t, js, testOptions(sink.Addr()))
	m := escalation()
	if _, _, err := o.Enqueue(context.Background(), m); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperDeliveryProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "OUTBOX_HELPER_NATS="+b.ClientURL(), "OUTBOX_HELPER_SMTP="+sink.Addr())
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held: // the subprocess sent the whole mail and waits for the answer
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the delivery subprocess never reached the end of the data")
	}
	if e, _ := mustGet(t, o, m.ID); e.State != outbox.StateSending || e.Attempts != 1 {
		t.Errorf("before the data went out the entry was %s with %d attempts, want sending, 1", e.State, e.Attempts)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	close(release) // the relay accepts the first copy; nobody hears it

	runDelivery(t, o) // the restarted delivery
	e := waitEntry(t, o, m.ID, "sent after the crash", func(e outbox.Entry) bool { return e.State == outbox.StateSent })
	marker(t, o, sink, "alert.marker")
	got := sink.Accepted()
	if c := count(got, m.ID); c != 2 {
		t.Fatalf("the relay took %d copies, want the one before the crash and one resend", c)
	}
	if string(got[0].Raw) != string(got[1].Raw) {
		t.Error("the resend differs from the first copy (it must be the recorded bytes, same Message-ID)")
	}
	if e.UnknownOutcomes != 1 || e.Attempts != 2 || !strings.Contains(e.LastError, "left no outcome") {
		t.Errorf("entry: unknown outcomes %d, attempts %d, last error %q", e.UnknownOutcomes, e.Attempts, e.LastError)
	}
	h := states(t, js, m.ID)
	if !contains(h, outbox.StateUnknownOutcome) {
		t.Errorf("ledger history %v lacks unknown-outcome", h)
	}
	t.Logf("ledger history: %v", h)
}

// TestHelperDeliveryProcess is the delivery subprocess of
// TestCrashAfterDataUnknownOutcome; run alone it does nothing.
func TestHelperDeliveryProcess(t *testing.T) {
	url, addr := os.Getenv("OUTBOX_HELPER_NATS"), os.Getenv("OUTBOX_HELPER_SMTP")
	if url == "" {
		return // not the subprocess
	}
	ctx := context.Background()
	b, err := broker.Open(ctx, broker.Options{URL: url, Name: "outbox-helper"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions(addr)
	opts.From = from
	o, err := outbox.Open(ctx, b.JS, opts)
	if err != nil {
		t.Fatal(err)
	}
	_ = o.Run(ctx, nil) // until killed
}
