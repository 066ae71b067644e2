package outbox_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/actions/outbox"
)

func TestEnqueueRecordsBeforeAnyAttempt(t *testing.T) {
	js := startJS(t)
	clk := newClock(now)
	o := open(t, js, outbox.Options{Now: clk.Now})
	ctx := context.Background()
	m := escalation()
	e, isNew, err := o.Enqueue(ctx, m)
	if err != nil || !isNew {
		t.Fatalf("Enqueue = %v, %v", isNew, err)
	}
	if e.State != outbox.StateQueued || e.Attempts != 0 || e.MessageID != "<escalation.p.123.abcdef@be.ch>" {
		t.Errorf("new entry %+v", e)
	}
	if !e.RetryUntil.Equal(now.Add(outbox.DefaultRetryFor)) {
		t.Errorf("RetryUntil %s, want created + 72h", e.RetryUntil)
	}
	got, raw := mustGet(t, o, m.ID)
	if got.State != outbox.StateQueued || got.ID != m.ID || got.Kind != m.Kind || got.Case != m.Case || got.Mailbox != "be" ||
		!slices.Equal(got.To, m.To) || !slices.Equal(got.Cc, m.Cc) || got.Subject != m.Subject || got.Size != len(raw) {
		t.Errorf("ledger entry %+v", got)
	}
	want, _ := outbox.Compose(m, from, now)
	if !bytes.Equal(raw, want) {
		t.Error("the recorded mail is not the composed one")
	}
	if n := requests(t, js); n != 1 {
		t.Errorf("%d delivery requests, want 1", n)
	}
}

func TestEnqueueTwiceIsOneMail(t *testing.T) {
	js := startJS(t)
	clk := newClock(now)
	o := open(t, js, outbox.Options{Now: clk.Now})
	ctx := context.Background()
	first, _, err := o.Enqueue(ctx, escalation())
	if err != nil {
		t.Fatal(err)
	}
	// The same fact, a day later (far past the stream's duplicate
	// window), rendered with other words: the ledger decides.
	clk.Advance(24 * time.Hour)
	m := escalation()
	m.Text = "another rendering"
	e, isNew, err := o.Enqueue(ctx, m)
	if err != nil || isNew {
		t.Fatalf("second Enqueue = isNew %v, %v; want false", isNew, err)
	}
	if e.Object != first.Object || !e.Created.Equal(first.Created) {
		t.Errorf("second Enqueue changed the entry: %+v, was %+v", e, first)
	}
	_, raw := mustGet(t, o, m.ID)
	if bytes.Contains(raw, []byte("another rendering")) {
		t.Error("the second rendering replaced the first")
	}
}

func TestEnqueueConcurrentSameID(t *testing.T) {
	js := startJS(t)
	o := open(t, js, outbox.Options{})
	ctx := context.Background()
	const n = 8
	news := make(chan bool, n)
	for i := range n {
		go func() {
			m := escalation()
			m.Text = "rendering " + string(rune('a'+i))
			_, isNew, err := o.Enqueue(ctx, m)
			if err != nil {
				t.Error(err)
			}
			news <- isNew
		}()
	}
	created := 0
	for range n {
		if <-news {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d of %d concurrent Enqueues created the entry, want 1", created, n)
	}
	e, raw := mustGet(t, o, escalation().ID)
	if len(raw) != e.Size {
		t.Errorf("the entry's mail (%d bytes) is not the recorded one (%d)", len(raw), e.Size)
	}
}

func TestDryRunRecordsAndSchedulesNothing(t *testing.T) {
	js := startJS(t)
	o := open(t, js, outbox.Options{DryRun: true})
	e, isNew, err := o.Enqueue(context.Background(), escalation())
	if err != nil || !isNew || e.State != outbox.StateDryRun {
		t.Fatalf("Enqueue = %+v, %v, %v", e, isNew, err)
	}
	_, raw := mustGet(t, o, e.ID)
	if len(raw) == 0 {
		t.Error("dry run rendered nothing")
	}
	if n := requests(t, js); n != 0 {
		t.Errorf("dry run scheduled %d deliveries", n)
	}
}

func TestEnqueueInvalid(t *testing.T) {
	js := startJS(t)
	o := open(t, js, outbox.Options{})
	m := escalation()
	m.To = []string{"not an address"}
	if _, _, err := o.Enqueue(context.Background(), m); !errors.Is(err, outbox.ErrInvalid) {
		t.Fatalf("Enqueue = %v, want ErrInvalid", err)
	}
	if _, _, err := o.Get(context.Background(), m.ID); !errors.Is(err, outbox.ErrNotFound) {
		t.Errorf("an invalid mail was recorded: %v", err)
	}
}

func TestListFilters(t *testing.T) {
	js := startJS(t)
	clk := newClock(now)
	o := open(t, js, outbox.Options{Now: clk.Now})
	ctx := context.Background()
	for _, m := range []outbox.Message{
		{ID: "alert.p.1", Kind: outbox.KindAlert, Case: "p.1", Mailbox: "be"},
		{ID: "escalation.p.1", Kind: outbox.KindEscalation, Case: "p.1", Mailbox: "be"},
		{ID: "summary.zh.2026-03-29", Kind: outbox.KindSummary, Mailbox: "zh"},
	} {
		m.To, m.Subject, m.Text = []string{"a@be.ch"}, "s", "t"
		if _, _, err := o.Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
	}
	ids := func(f outbox.Filter) []string {
		es, err := o.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    outbox.Filter
		want []string
	}{
		{"all, oldest first", outbox.Filter{}, []string{"alert.p.1", "escalation.p.1", "summary.zh.2026-03-29"}},
		{"mailbox", outbox.Filter{Mailbox: "zh"}, []string{"summary.zh.2026-03-29"}},
		{"kind", outbox.Filter{Kind: outbox.KindEscalation}, []string{"escalation.p.1"}},
		{"case", outbox.Filter{Case: "p.1"}, []string{"alert.p.1", "escalation.p.1"}},
		{"state", outbox.Filter{States: outbox.ProblemStates}, nil},
		{"since", outbox.Filter{Since: now.Add(time.Minute)}, []string{"escalation.p.1", "summary.zh.2026-03-29"}},
	} {
		if got := ids(tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestResendRefusesMailInProgress(t *testing.T) {
	js := startJS(t)
	o := open(t, js, outbox.Options{})
	ctx := context.Background()
	if _, _, err := o.Enqueue(ctx, escalation()); err != nil {
		t.Fatal(err)
	}
	if err := o.Resend(ctx, escalation().ID); !errors.Is(err, outbox.ErrInProgress) {
		t.Errorf("Resend of a queued mail = %v, want ErrInProgress", err)
	}
	if err := o.Resend(ctx, "no.such.mail"); !errors.Is(err, outbox.ErrNotFound) {
		t.Errorf("Resend of an unknown id = %v, want ErrNotFound", err)
	}
}
