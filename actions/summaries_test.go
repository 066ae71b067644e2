package actions_test

import (
	"bytes"
	"context"
	"io"
	"maps"
	"mime"
	"mime/quotedprintable"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/eiamtriage/eiamtriage/actions"
	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/actions/outbox/smtpsink"
)

// summaryText returns the decoded text part of a summary mail.
func summaryText(t *testing.T, raw []byte) string {
	t.Helper()
	i := bytes.Index(raw, []byte("Content-Type: text/plain"))
	j := bytes.Index(raw, []byte("Content-Type: text/html"))
	if i < 0 || j < i {
		t.Fatalf("no text part before the HTML one")
	}
	part := raw[i:j]
	body, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(part[bytes.Index(part, []byte("\r\n\r\n"))+4:])))
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// TestSummaries sends the due summaries by command: one per superuser,
// with the cases grouped by class, the open tasks and decisions, the
// quarantined mail and the mail that could not be delivered; again, none;
// from two instances at once, each superuser still gets one.
func TestSummaries(t *testing.T) {
	// The stage's clock runs behind the others' until the summary is
	// sent: then it is now, and everything before belongs to the period.
	clk := newClock(time.Now().Add(-time.Hour))
	// The relay refuses every mail to a user for good: it is dead-lettered
	// by the outbox and the summary says so.
	e := newEnv(t, envOptions{now: clk.Now, answer: func(tr smtpsink.Try) *smtp.SMTPError {
		if bytes.Contains(tr.Raw, []byte(outbox.HeaderKind+": user-mail")) {
			return smtpsink.Reply(550, "5.1.1 mailbox unavailable")
		}
		return nil
	}})
	st := e.newStage(t, nil)
	e.runStage(t, st)
	for _, n := range []string{wrongPerson, private, review, negligible} {
		e.submit(t, variant(t, n, 7), n)
	}
	// A forward from someone who is not a superuser: quarantined.
	inner := variant(t, wrongPerson, 8)
	e.submit(t, []byte("From: mallory@example.org\r\nTo: triage@be.ch\r\nSubject: WG: eIAM\r\nMessage-ID: <x1@example.org>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nzur Triage\r\n--b\r\n"+
		"Content-Type: message/rfc822\r\n\r\n"+string(inner)+"\r\n--b--\r\n"), "stranger")
	e.settled(t, 4)
	eventually(t, "the user mail to fail", func() bool {
		es, _ := e.out.List(context.Background(), outbox.Filter{Kind: outbox.KindUserMail})
		return len(es) == 1 && es[0].State == outbox.StateFailed
	})
	ctx := context.Background()
	clk.Set(time.Now())
	res, err := st.SendSummaries(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || len(res[0].Sent) != 2 || res[0].Empty || res[0].AlreadyDone || res[0].Period == "" || !res[0].Until.Equal(clk.Now().UTC()) {
		t.Fatalf("SendSummaries = %+v", res)
	}
	msgs := e.sink.Wait(t, waitFor, "two summaries", func(ms []smtpsink.Message) bool { return len(byKind(ms)[outbox.KindSummary]) == 2 })
	sums := byKind(msgs)[outbox.KindSummary]
	var to []string
	dec := new(mime.WordDecoder)
	for _, m := range sums {
		to = append(to, m.To...)
		subject, _ := dec.DecodeHeader(smtpsink.Header(m.Raw, "Subject"))
		if !strings.HasPrefix(subject, "eIAM-Triage be bis ") || !strings.Contains(subject, "4 neue Fälle, 3 offene Aufgaben, 1 offene Entscheide") {
			t.Errorf("summary subject %q", subject)
		}
		text := summaryText(t, m.Raw)
		for _, want := range []string{"== Falsche Person (1) ==", "== Private E-Mail-Adresse (1) ==", "== Zu prüfen (1) ==", "== Geringfügig (1) ==",
			"Ignoriert: eIAM aktualisiert die Daten selbst.", "== Offene Aufgaben (3) ==", "== Offene Entscheide (1) ==",
			"== Verdächtige Mails (Quarantäne) (1) ==", "untrusted-forwarder", "== Nicht zugestellte Mails (1) ==", "550",
			"Meldung an den SpiGes-Support: gesendet -> spiges@bfs.admin.ch", "Mail an die Benutzerin / den Benutzer: fehlgeschlagen",
			"<-- abweichend", "eiamtriage cases decide " + caseID(t, review, 7)} {
			if !strings.Contains(text, want) {
				t.Errorf("summary to %v lacks %q:\n%s", m.To, want, text)
			}
		}
		if !bytes.Contains(m.Raw, []byte(`class=3D"comparison"`)) || !bytes.Contains(m.Raw, []byte(`class=3D"diff"`)) {
			t.Error("the HTML summary has no comparison table with differences marked")
		}
	}
	if strings.Join(lower(to), ",") != strings.Join(lower(baseSuperusers), ",") {
		t.Errorf("summaries to %v, want one per superuser", to)
	}

	// Again: the period is done.
	res, err = st.SendSummaries(ctx, "be")
	if err != nil || len(res) != 1 || !res[0].AlreadyDone {
		t.Fatalf("SendSummaries again = %+v, %v", res, err)
	}

	// The next day, from two instances at once: one summary per
	// superuser (open tasks keep the summary from being empty).
	clk.Advance(24 * time.Hour)
	other := e.newStage(t, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, s := range []*actions.Stage{st, other} {
		wg.Go(func() {
			if _, err := s.SendSummaries(ctx, ""); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	e.sink.Wait(t, waitFor, "four summaries", func(ms []smtpsink.Message) bool { return len(byKind(ms)[outbox.KindSummary]) == 4 })
	entries, _ := e.out.List(ctx, outbox.Filter{Kind: outbox.KindSummary})
	if len(entries) != 4 {
		t.Errorf("%d summaries in the ledger, want 4", len(entries))
	}
	e.settled(t, 4) // every mail delivered
	if n := len(byKind(e.sink.Accepted())[outbox.KindSummary]); n != 4 {
		t.Errorf("%d summaries accepted, want 4", n)
	}
}

// TestSummaryNeverEmpty: with nothing to say no summary goes out.
func TestSummaryNeverEmpty(t *testing.T) {
	e := newEnv(t, envOptions{})
	st := e.newStage(t, nil)
	res, err := st.SendSummaries(context.Background(), "")
	if err != nil || len(res) != 1 || !res[0].Empty || len(res[0].Sent) != 0 {
		t.Fatalf("SendSummaries = %+v, %v", res, err)
	}
	entries, _ := e.out.List(context.Background(), outbox.Filter{})
	if len(entries) != 0 {
		t.Errorf("%d mails recorded for an empty period", len(entries))
	}
}

// TestScheduleAcrossDST runs the schedule loop on an injected clock over
// the changes of the clocks in Europe/Zurich (29 March and 25 October
// 2026): each slot fires once, at its instant and not a minute before; a
// time skipped in spring fires once, an hour later on the clock; the time
// repeated in autumn does not fire again.
func TestScheduleAcrossDST(t *testing.T) {
	zurich, err := time.LoadLocation("Europe/Zurich")
	if err != nil {
		t.Fatal(err)
	}
	// step is a moment the clock is set to: at it, label fires ("" for
	// a moment at which nothing may fire).
	type step struct{ at, label string }
	for _, tc := range []struct {
		name, schedule string
		start          time.Time
		steps          []step
	}{
		{"07:30 over spring forward", "30 7 * * *", time.Date(2026, 3, 28, 8, 0, 0, 0, zurich), []step{
			{"2026-03-29T05:29:00Z", ""}, {"2026-03-29T05:30:00Z", "20260329-0730"},
			{"2026-03-30T05:29:00Z", ""}, {"2026-03-30T05:30:00Z", "20260330-0730"}}},
		{"07:30 over fall back", "30 7 * * *", time.Date(2026, 10, 24, 8, 0, 0, 0, zurich), []step{
			{"2026-10-25T05:30:00Z", ""}, {"2026-10-25T06:29:00Z", ""}, {"2026-10-25T06:30:00Z", "20261025-0730"},
			{"2026-10-26T06:29:00Z", ""}, {"2026-10-26T06:30:00Z", "20261026-0730"}}},
		{"02:30 skipped by spring forward", "30 2 * * *", time.Date(2026, 3, 28, 12, 0, 0, 0, zurich), []step{
			{"2026-03-29T00:59:00Z", ""}, {"2026-03-29T01:00:00Z", ""}, {"2026-03-29T01:29:00Z", ""}, {"2026-03-29T01:30:00Z", "20260329-0230"},
			{"2026-03-30T00:29:00Z", ""}, {"2026-03-30T00:30:00Z", "20260330-0230"}}},
		{"02:30 repeated by fall back", "30 2 * * *", time.Date(2026, 10, 24, 12, 0, 0, 0, zurich), []step{
			{"2026-10-25T00:29:00Z", ""}, {"2026-10-25T00:30:00Z", "20261025-0230"},
			{"2026-10-25T01:29:00Z", ""}, {"2026-10-25T01:30:00Z", ""}, {"2026-10-25T01:31:00Z", ""},
			{"2026-10-26T01:29:00Z", ""}, {"2026-10-26T01:30:00Z", "20261026-0230"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock(tc.start)
			e := newEnv(t, envOptions{now: clk.Now, schedule: tc.schedule})
			st := e.newStage(t, nil)
			e.runStage(t, st)
			e.submit(t, variant(t, private, 3), "pe") // its open tasks make every summary worth sending
			e.settled(t, 1)
			e.background(t, "schedule", func(ctx context.Context) error { return st.RunSummaries(ctx, clk) })
			clk.waitWaiting(t)
			ctx := context.Background()
			periods := func() map[string]int {
				es, err := e.out.List(ctx, outbox.Filter{Kind: outbox.KindSummary})
				if err != nil {
					t.Fatal(err)
				}
				out := map[string]int{}
				for _, en := range es {
					out[en.ID[strings.LastIndexByte(en.ID, '.')+1:]]++
				}
				return out
			}
			want := map[string]int{}
			for _, s := range tc.steps {
				at, err := time.Parse(time.RFC3339, s.at)
				if err != nil {
					t.Fatal(err)
				}
				clk.Set(at)
				clk.waitWaiting(t) // the loop looked at the new time and waits again
				if s.label != "" {
					want[s.label] = len(baseSuperusers)
				}
				if got := periods(); !maps.Equal(got, want) {
					t.Fatalf("at %s (%s): summaries by period %v, want %v", s.at, at.In(zurich).Format("02.01. 15:04 MST"), got, want)
				}
			}
		})
	}
}
