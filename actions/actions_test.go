package actions_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/actions"
	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/actions/outbox/smtpsink"
	"github.com/eiamtriage/eiamtriage/actions/render"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// expected is one mail a case must cause.
type expected struct {
	id, kind string
	c        *event.Case
	ref      event.NoticeRef
	to       []string
}

// expectedMails derives from the cases as recorded what mails their events
// must have caused: for each notice that opened or escalated its case, its
// class's mails; nothing for a notice that joined.
func (e *env) expectedMails(t *testing.T) []expected {
	t.Helper()
	var out []expected
	su := e.cfg.Mailboxes[0].Superusers
	for _, c := range e.allCases(t) {
		for _, ref := range c.Notices {
			if ref.Change != event.ChangeCreated && ref.Change != event.ChangeEscalated {
				continue
			}
			superusers := su
			if ref.AddressedTo != "" {
				superusers = []string{ref.AddressedTo}
			}
			add := func(kind string, to []string) {
				out = append(out, expected{id: kind + "." + c.ID + "." + ref.MailID, kind: kind, c: c, ref: ref, to: to})
			}
			switch ref.Class {
			case event.ClassWrongPerson:
				add(outbox.KindEscalation, []string{spiges})
				add(outbox.KindAlert, superusers)
			case event.ClassPrivateEmail:
				addr := strings.TrimSpace(ref.Expected.Email)
				if addr == "" || strings.EqualFold(addr, ref.Actual.Email) || strings.ContainsAny(addr, " <>\"") {
					add(outbox.KindDraft, superusers)
				} else {
					add(outbox.KindUserMail, []string{addr})
				}
			case event.ClassReview:
				add(outbox.KindDecision, superusers)
			}
		}
	}
	return out
}

// settled waits until the classify stage has recorded every notice
// (notices counts them, duplicates included), the actions stage has
// settled every case event, and every mail in the outbox's ledger has
// reached the sink: only then is "exactly these mails" a fair assertion.
func (e *env) settled(t *testing.T, notices int) []smtpsink.Message {
	t.Helper()
	refs := 0
	eventually(t, "every notice in its case", func() bool {
		n := 0
		refs = 0
		for _, c := range e.allCases(t) {
			refs += len(c.Notices)
			for _, r := range c.Notices {
				n += 1 + r.Duplicates
			}
		}
		return n == notices
	})
	ctx := context.Background()
	eventually(t, "the actions stage to settle every case event", func() bool {
		st, err := e.js.Stream(ctx, pipeline.StreamCases)
		if err != nil {
			return false
		}
		si, err := st.Info(ctx)
		if err != nil || si.State.Msgs < uint64(refs) {
			return false // an event is still to be published
		}
		c, err := e.js.Consumer(ctx, pipeline.StreamCases, actions.Name)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream == si.State.LastSeq
	})
	var entries []outbox.Entry
	eventually(t, "every mail in the ledger delivered", func() bool {
		var err error
		entries, err = e.out.List(ctx, outbox.Filter{})
		if err != nil {
			return false
		}
		for _, en := range entries {
			if en.State == outbox.StateQueued || en.State == outbox.StateSending {
				return false
			}
		}
		return len(e.sink.Accepted()) >= sentCount(entries)
	})
	return e.sink.Accepted()
}

func sentCount(es []outbox.Entry) int {
	n := 0
	for _, e := range es {
		if e.State == outbox.StateSent {
			n++
		}
	}
	return n
}

// TestFixturesCauseTheirMails takes in every fixture of testdata/notices
// through the intake and the classify stage, and checks that the actions
// stage sent exactly the mails their cases call for, once each, with
// their recipients, headers and language; the escalations carry the
// original notice byte for byte; no mail goes to a private address.
func TestFixturesCauseTheirMails(t *testing.T) {
	raws, want := fixtures(t)
	e := newEnv(t, envOptions{authenticate: true})
	st := e.newStage(t, nil)
	e.runStage(t, st)
	notices := 0
	var names []string
	for name := range raws {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if want[name].acted() {
			notices++
		}
		e.submit(t, raws[name], "test:"+name)
	}
	got := e.settled(t, notices)
	exp := e.expectedMails(t)
	checkMails(t, e, got, exp)

	// The tasks: a deactivate task for every private-email and
	// wrong-person case, a recreate task for every private-email one.
	tasks, err := st.Tasks(context.Background(), "", true)
	if err != nil {
		t.Fatal(err)
	}
	wantTasks := map[string]bool{}
	for _, x := range exp {
		switch x.kind {
		case outbox.KindEscalation:
			wantTasks["deactivate."+x.c.ID] = true
		case outbox.KindUserMail, outbox.KindDraft:
			wantTasks["deactivate."+x.c.ID] = true
			wantTasks["recreate."+x.c.ID] = true
		}
	}
	gotTasks := map[string]bool{}
	for _, tk := range tasks {
		if gotTasks[tk.ID] {
			t.Errorf("task %s twice", tk.ID)
		}
		gotTasks[tk.ID] = true
		if len(tk.Steps) < 3 || !strings.Contains(tk.Where, "https://portal.example.admin.ch") {
			t.Errorf("task %s says too little: where %q, %d steps", tk.ID, tk.Where, len(tk.Steps))
		}
		if tk.Kind == event.TaskRecreate && tk.Entered.Email != "" && !strings.Contains(strings.Join(tk.Steps, "\n"), render.Clean(tk.Entered.Email)) {
			t.Errorf("recreate task %s does not give the address to enter", tk.ID)
		}
	}
	for id := range wantTasks {
		if !gotTasks[id] {
			t.Errorf("no task %s", id)
		}
	}
	if len(gotTasks) != len(wantTasks) {
		t.Errorf("%d tasks, want %d", len(gotTasks), len(wantTasks))
	}
	kinds := map[string]int{}
	for _, x := range exp {
		kinds[x.kind]++
	}
	t.Logf("%d notices, %d cases, mails %v, %d tasks", notices, len(e.allCases(t)), kinds, len(tasks))
	for _, k := range []string{outbox.KindEscalation, outbox.KindAlert, outbox.KindUserMail, outbox.KindDecision} {
		if kinds[k] == 0 {
			t.Errorf("the fixtures caused no %s mail", k)
		}
	}
}

// checkMails compares the mails the sink accepted with the expected ones:
// the same set, each once, with its recipients and headers.
func checkMails(t *testing.T, e *env, got []smtpsink.Message, exp []expected) {
	t.Helper()
	byID := map[string][]smtpsink.Message{}
	for _, m := range got {
		id := smtpsink.Header(m.Raw, outbox.HeaderOwn)
		byID[id] = append(byID[id], m)
	}
	private := map[string]bool{}
	for _, c := range e.allCases(t) {
		for _, r := range c.Notices {
			if r.Class == event.ClassPrivateEmail {
				private[strings.ToLower(r.Actual.Email)] = true
			}
		}
	}
	for _, m := range got {
		for _, rcpt := range m.To {
			if private[strings.ToLower(rcpt)] {
				t.Errorf("a mail went to the private address %s: %s", rcpt, smtpsink.Header(m.Raw, "Subject"))
			}
		}
	}
	dec := new(mime.WordDecoder)
	for _, x := range exp {
		ms := byID[x.id]
		if len(ms) != 1 {
			t.Errorf("mail %s (%s of case %s) arrived %d times, want once", x.id, x.kind, x.c.ID, len(ms))
			continue
		}
		m := ms[0]
		if !slices.Equal(lower(m.To), lower(x.to)) {
			t.Errorf("%s went to %v, want %v", x.id, m.To, x.to)
		}
		h := func(k string) string { return smtpsink.Header(m.Raw, k) }
		if h(outbox.HeaderKind) != x.kind || h(outbox.HeaderCase) != x.c.ID || h("Auto-Submitted") != "auto-generated" ||
			h("Message-Id") != "<"+x.id+"@be.ch>" || h("X-Loop") != "triage@be.ch" {
			t.Errorf("%s headers: kind %q case %q auto-submitted %q message-id %q x-loop %q", x.id, h(outbox.HeaderKind), h(outbox.HeaderCase), h("Auto-Submitted"), h("Message-Id"), h("X-Loop"))
		}
		subject, err := dec.DecodeHeader(h("Subject"))
		if err != nil {
			t.Errorf("%s subject: %v", x.id, err)
		}
		switch x.kind {
		case outbox.KindEscalation:
			if h("Importance") != "high" {
				t.Errorf("escalation %s is not urgent", x.id)
			}
			if !strings.Contains(strings.ToLower(h("Reply-To")), "@") {
				t.Errorf("escalation %s has no Reply-To to the superusers", x.id)
			}
			orig, err := e.mail.Notice(context.Background(), x.ref)
			if err != nil {
				t.Fatal(err)
			}
			mt, content, err := smtpsink.Attachment(m.Raw)
			if err != nil {
				t.Errorf("escalation %s: %v", x.id, err)
				continue
			}
			if !bytes.Equal(content, orig) {
				t.Errorf("escalation %s: the attached notice (%d bytes, %s) is not the original (%d bytes)", x.id, len(content), mt, len(orig))
			}
			if mt != "message/rfc822" && outbox.Transportable(orig) != "" {
				t.Errorf("escalation %s: the original is attached as %s, want message/rfc822", x.id, mt)
			}
		case outbox.KindAlert:
			if h("Importance") != "high" || h("X-Priority") != "1" {
				t.Errorf("alert %s is not urgent", x.id)
			}
		case outbox.KindUserMail:
			lang := x.c.Language
			if x.ref.Expected != x.c.Expected {
				continue // the case moved on; its language is the later notice's
			}
			um, err := e.r.Render(render.KindUserMail, lang, &render.UserMailView{Case: render.NewCase(x.c, nil, nil)})
			if err != nil {
				t.Fatal(err)
			}
			if subject != um.Subject {
				t.Errorf("user mail %s is in another language than the notice's (%s): %q", x.id, lang, subject)
			}
			if rt := strings.ToLower(h("Reply-To")); !strings.Contains(rt, "@be.ch") && !strings.Contains(rt, "@") {
				t.Errorf("user mail %s has no superuser in Reply-To: %q", x.id, rt)
			}
		}
		delete(byID, x.id)
	}
	for id, ms := range byID {
		t.Errorf("unexpected mail %s (%d times): %s", id, len(ms), smtpsink.Header(ms[0].Raw, "Subject"))
	}
}

// crashingOutbox hands mails to the real outbox and, at the n-th mail,
// stops its stage right after the ledger recorded it: as a process killed
// between handing a mail over and recording the effect done.
type crashingOutbox struct {
	actions.Outbox
	n, at int64
	crash func()
}

func (c *crashingOutbox) Enqueue(ctx context.Context, m outbox.Message) (outbox.Entry, bool, error) {
	e, isNew, err := c.Outbox.Enqueue(ctx, m)
	if atomic.AddInt64(&c.n, 1) == c.at {
		c.crash()
		return e, isNew, errors.New("killed (test)")
	}
	return e, isNew, err
}

// TestKillAndRestartMidBatch stops the actions stage in the middle of the
// fixtures, right after a mail was handed to the outbox and before its
// effect was recorded done, and starts a new one: every mail arrives
// exactly once.
func TestKillAndRestartMidBatch(t *testing.T) {
	raws, want := fixtures(t)
	e := newEnv(t, envOptions{authenticate: true})
	var stop func()
	stopped := make(chan struct{})
	first := e.newStage(t, func(o actions.Outbox) actions.Outbox {
		return &crashingOutbox{Outbox: o, at: 17, crash: func() { go func() { stop(); close(stopped) }() }}
	})
	stop = e.runStage(t, first)
	notices := 0
	for name, raw := range raws {
		if want[name].acted() {
			notices++
		}
		e.submit(t, raw, "test:"+name)
	}
	select {
	case <-stopped:
	case <-time.After(waitFor):
		t.Fatal("the first stage never reached its crash")
	}
	before, err := e.out.List(context.Background(), outbox.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	e.runStage(t, e.newStage(t, nil))
	got := e.settled(t, notices)
	exp := e.expectedMails(t)
	if len(before) >= len(exp) || len(before) < 17 {
		t.Errorf("the first stage handed %d of %d mails over before it stopped: not in the middle", len(before), len(exp))
	}
	checkMails(t, e, got, exp)
}

// TestJoinDoesNotEscalateAgain: a second wrong-person notice for the same
// profile joins the case and sends nothing more.
func TestJoinDoesNotEscalateAgain(t *testing.T) {
	raws, _ := fixtures(t)
	e := newEnv(t, envOptions{})
	e.runStage(t, e.newStage(t, nil))
	first := raws["de-table-alt-anna-anja-wrong-person.eml"]
	e.submit(t, first, "first")
	e.settled(t, 1)
	second := bytes.Replace(first, []byte("Message-ID: <"), []byte("Message-ID: <again."), 1)
	second = bytes.Replace(second, []byte("Anja"), []byte("Anke"), -1)
	if bytes.Equal(first, second) {
		t.Fatal("the second notice is the first")
	}
	e.submit(t, second, "second")
	got := e.settled(t, 2)
	c := e.allCases(t)
	if len(c) != 1 || len(c[0].Notices) != 2 || c[0].Notices[1].Change != event.ChangeJoined {
		t.Fatalf("cases %+v", c)
	}
	kinds := byKind(got)
	if len(kinds[outbox.KindEscalation]) != 1 || len(kinds[outbox.KindAlert]) != 1 || len(got) != 2 {
		t.Errorf("mails %v, want one escalation and one alert", kindsCount(kinds))
	}
}

func kindsCount(m map[string][]smtpsink.Message) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", k, len(v)))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}
