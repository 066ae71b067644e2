package actions_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/actions"
	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/actions/outbox/smtpsink"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

const (
	wrongPerson = "de-table-alt-anna-anja-wrong-person.eml"
	private     = "de-table-alt-private-bluewin.eml"
	review      = "de-blocks-review-name-change.eml"
	negligible  = "de-html-subdomain-negligible.eml"
)

// variant is fixture name as another notice: a profile id and a
// Message-ID of its own.
func variant(t testing.TB, name string, i int) []byte {
	t.Helper()
	raws, want := fixtures(t)
	raw, id := raws[name], want[name].ProfileID
	nid := id[:len(id)-4] + fmt.Sprintf("%04x", i)
	out := bytes.ReplaceAll(raw, []byte(id), []byte(nid))
	out = bytes.Replace(out, []byte("Message-ID: <"), []byte(fmt.Sprintf("Message-ID: <v%d.", i)), 1)
	if bytes.Equal(out, raw) || !bytes.Contains(out, []byte(nid)) {
		t.Fatalf("variant %d of %s changed nothing", i, name)
	}
	return out
}

func caseID(t testing.TB, name string, i int) string {
	t.Helper()
	_, want := fixtures(t)
	id := want[name].ProfileID
	return "p." + id[:len(id)-4] + fmt.Sprintf("%04x", i)
}

func heldKinds(t *testing.T, st *actions.Stage) map[actions.EffectKind]int {
	t.Helper()
	held, err := st.HeldEffects(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[actions.EffectKind]int{}
	for _, e := range held {
		out[e.Kind]++
	}
	return out
}

// TestCapHoldAndRelease: past the cap on escalations and deactivate tasks
// per hour the rest is held, the superusers are alerted once per cap, the
// next hour does not lift the hold, and release sends what was held and
// lets the next case through.
func TestCapHoldAndRelease(t *testing.T) {
	clk := newClock(time.Date(2026, 5, 4, 9, 10, 0, 0, time.UTC))
	e := newEnv(t, envOptions{caps: config.Caps{UserMail: 100, Escalation: 2, Deactivate: 3}, now: clk.Now})
	st := e.newStage(t, nil)
	e.runStage(t, st)
	for i := range 4 {
		e.submit(t, variant(t, wrongPerson, i), fmt.Sprint("wp", i))
	}
	got := e.settled(t, 4)
	k := byKind(got)
	if n := len(k[outbox.KindEscalation]); n != 2 {
		t.Errorf("%d escalations went out, want the cap, 2", n)
	}
	alerts, holdAlerts := 0, 0
	heldSays := 0
	for _, m := range k[outbox.KindAlert] {
		id := smtpsink.Header(m.Raw, outbox.HeaderOwn)
		if strings.HasPrefix(id, "hold.") {
			holdAlerts++
			if got, want := lower(m.To), lower(baseSuperusers); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("hold alert to %v, want every superuser", m.To)
			}
			continue
		}
		alerts++
		if bytes.Contains(m.Raw, []byte("ZUR=C3=9CCKGEHALTEN")) || bytes.Contains(m.Raw, []byte("ZURÜCKGEHALTEN")) {
			heldSays++
		}
	}
	if alerts != 4 || holdAlerts != 2 || heldSays != 2 {
		t.Errorf("%d case alerts (%d saying the escalation is held), %d hold alerts; want 4 (2), 2", alerts, heldSays, holdAlerts)
	}
	if h := heldKinds(t, st); h[actions.EffectEscalation] != 2 || h[actions.EffectDeactivate] != 1 {
		t.Errorf("held %v, want 2 escalations and 1 deactivate task", h)
	}
	tasks, _ := st.Tasks(context.Background(), "", false)
	if len(tasks) != 3 {
		t.Errorf("%d tasks open, want the cap, 3", len(tasks))
	}

	// An hour later the hold is still on: a person must release it.
	clk.Advance(time.Hour)
	e.submit(t, variant(t, wrongPerson, 4), "wp4")
	got = e.settled(t, 5)
	if n := len(byKind(got)[outbox.KindEscalation]); n != 2 {
		t.Errorf("%d escalations after an hour, want still 2", n)
	}
	if h := heldKinds(t, st); h[actions.EffectEscalation] != 3 || h[actions.EffectDeactivate] != 2 {
		t.Errorf("held %v, want 3 escalations and 2 deactivate tasks", h)
	}

	res, err := st.Release(context.Background(), mailbox, false, "test operator")
	if err != nil || len(res.Errors) > 0 {
		t.Fatalf("Release: %v %v", err, res.Errors)
	}
	if res.Released != 5 || res.Discarded != 0 || strings.Join(res.Holds, ",") != "be/deactivate,be/escalation" {
		t.Errorf("Release = %+v", res)
	}
	got = e.settled(t, 5)
	if n := len(byKind(got)[outbox.KindEscalation]); n != 5 {
		t.Errorf("%d escalations after release, want 5", n)
	}
	if h := heldKinds(t, st); len(h) != 0 {
		t.Errorf("still held after release: %v", h)
	}
	tasks, _ = st.Tasks(context.Background(), "", false)
	if len(tasks) != 5 {
		t.Errorf("%d tasks after release, want 5", len(tasks))
	}
	// Counting starts afresh: the next case goes out at once.
	e.submit(t, variant(t, wrongPerson, 5), "wp5")
	got = e.settled(t, 6)
	if n := len(byKind(got)[outbox.KindEscalation]); n != 6 {
		t.Errorf("%d escalations after the next case, want 6", n)
	}
	if res, err := st.Release(context.Background(), mailbox, false, "x"); err != nil || res.Released != 0 || len(res.Holds) != 0 {
		t.Errorf("a second release = %+v, %v; want nothing to do", res, err)
	}
}

// TestCapDiscard: a person who judges held actions forged discards them:
// nothing more is sent.
func TestCapDiscard(t *testing.T) {
	e := newEnv(t, envOptions{caps: config.Caps{UserMail: 100, Escalation: 1, Deactivate: 100}})
	st := e.newStage(t, nil)
	e.runStage(t, st)
	e.submit(t, variant(t, wrongPerson, 1), "a")
	e.submit(t, variant(t, wrongPerson, 2), "b")
	e.settled(t, 2)
	res, err := st.Release(context.Background(), "", true, "martina")
	if err != nil || res.Discarded != 1 || res.Released != 0 {
		t.Fatalf("Release(discard) = %+v, %v", res, err)
	}
	got := e.settled(t, 2)
	if n := len(byKind(got)[outbox.KindEscalation]); n != 1 {
		t.Errorf("%d escalations, want 1 (the other discarded)", n)
	}
	if _, err := st.Release(context.Background(), "zh", false, "x"); err == nil {
		t.Error("release of an unknown mailbox succeeded")
	}
}

// TestDryRun records and renders everything and sends nothing.
func TestDryRun(t *testing.T) {
	e := newEnv(t, envOptions{dryRun: true})
	st := e.newStage(t, nil)
	e.runStage(t, st)
	e.submit(t, variant(t, wrongPerson, 1), "wp")
	e.submit(t, variant(t, private, 1), "pe")
	e.settled(t, 2)
	entries, err := e.out.List(context.Background(), outbox.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, en := range entries {
		kinds[en.Kind]++
		if en.State != outbox.StateDryRun {
			t.Errorf("mail %s is %s, want dry-run", en.ID, en.State)
		}
		_, raw, err := e.out.Get(context.Background(), en.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(raw, []byte("dry_run")) {
			t.Errorf("mail %s does not say it is a dry run", en.ID)
		}
	}
	if kinds[outbox.KindEscalation] != 1 || kinds[outbox.KindAlert] != 1 || kinds[outbox.KindUserMail] != 1 {
		t.Errorf("recorded mails %v, want an escalation, an alert and a user mail", kinds)
	}
	tasks, err := st.Tasks(context.Background(), "", true)
	if err != nil || len(tasks) != 3 {
		t.Fatalf("%d tasks (%v), want 3", len(tasks), err)
	}
	for _, tk := range tasks {
		if !tk.DryRun {
			t.Errorf("task %s is not marked dry run", tk.ID)
		}
	}
	if n := len(e.sink.Messages()); n != 0 {
		t.Errorf("the sink received %d mails in dry-run mode", n)
	}
}

// TestDraftMode: with user_mail: draft the superuser gets the draft, the
// user nothing.
func TestDraftMode(t *testing.T) {
	e := newEnv(t, envOptions{userMail: config.UserMailDraft})
	e.runStage(t, e.newStage(t, nil))
	e.submit(t, variant(t, private, 1), "pe")
	got := e.settled(t, 1)
	k := byKind(got)
	if len(got) != 1 || len(k[outbox.KindDraft]) != 1 {
		t.Fatalf("mails %s, want one draft", kindsCount(k))
	}
	m := k[outbox.KindDraft][0]
	c := e.allCases(t)[0]
	if len(m.To) != 1 || m.To[0] != "martina.graf@be.ch" {
		t.Errorf("draft to %v, want the superuser the notice was addressed to", m.To)
	}
	if !bytes.Contains(m.Raw, []byte(c.Expected.Email)) {
		t.Errorf("the draft does not name the entered address %s", c.Expected.Email)
	}
}

// TestDecide: a review case asks for a decision; deciding private-email
// runs that class's actions, once; deciding again the same changes
// nothing, otherwise is refused; a case not for review cannot be decided.
func TestDecide(t *testing.T) {
	e := newEnv(t, envOptions{})
	st := e.newStage(t, nil)
	e.runStage(t, st)
	e.submit(t, variant(t, review, 1), "rv")
	e.submit(t, variant(t, private, 1), "pe")
	got := e.settled(t, 2)
	if n := len(byKind(got)[outbox.KindDecision]); n != 1 {
		t.Fatalf("%d decision mails, want 1", n)
	}
	rv := caseID(t, review, 1)
	ctx := context.Background()
	if _, _, err := st.Decide(ctx, rv, event.ClassPrivateEmail, "", "x"); err == nil {
		t.Error("a decision without --by succeeded")
	}
	d, _, err := st.Decide(ctx, rv, event.ClassPrivateEmail, "Martina Graf", "she confirmed her new login by phone")
	if err != nil {
		t.Fatal(err)
	}
	if d.Class != event.ClassPrivateEmail || d.Previous != event.ClassReview || d.By != "Martina Graf" {
		t.Errorf("decision %+v", d)
	}
	// The review case's entered address is the one signed in with: the
	// user mail becomes a draft for the superuser (never mail a private
	// address).
	got = e.settled(t, 2)
	if k := byKind(got); len(k[outbox.KindUserMail]) != 1 || len(k[outbox.KindDraft]) != 1 {
		t.Errorf("mails %s, want the private-email case's user mail and the decided case's draft", kindsCount(k))
	}
	if _, _, err := st.Decide(ctx, rv, event.ClassPrivateEmail, "Martina Graf", "again"); err != nil {
		t.Errorf("deciding the same again: %v", err)
	}
	if _, _, err := st.Decide(ctx, rv, event.ClassWrongPerson, "Peter", "no"); !errors.Is(err, actions.ErrDecided) {
		t.Errorf("deciding otherwise = %v, want ErrDecided", err)
	}
	if _, _, err := st.Decide(ctx, caseID(t, private, 1), event.ClassNegligible, "Peter", "no"); !errors.Is(err, actions.ErrNotReview) {
		t.Errorf("deciding a private-email case = %v, want ErrNotReview", err)
	}
	got = e.settled(t, 2)
	if k := byKind(got); len(k[outbox.KindUserMail]) != 1 || len(k[outbox.KindDraft]) != 1 || len(got) != 3 {
		t.Errorf("mails after deciding again %s, want the same three", kindsCount(k))
	}
	tasks, _ := st.Tasks(ctx, "", false)
	if len(tasks) != 4 {
		t.Errorf("%d tasks, want 4 (two per private-email case)", len(tasks))
	}
}

// TestTasksDone: `tasks done` closes a task and publishes its event;
// another system's task-done event closes one too; unknown tasks are
// dead letters.
func TestTasksDone(t *testing.T) {
	e := newEnv(t, envOptions{})
	st := e.newStage(t, nil)
	e.runStage(t, st)
	tc := actions.TaskConsumer(e.cfg)
	tc.AckWait, tc.Workers, tc.Status = 5*time.Second, 2, &pipeline.Status{}
	e.background(t, "tasks", func(ctx context.Context) error { return pipeline.Run(ctx, e.js, tc, st.HandleTask, quiet(t), nil) })
	e.submit(t, variant(t, private, 1), "pe")
	e.settled(t, 1)
	ctx := context.Background()
	open, err := st.Tasks(ctx, "", false)
	if err != nil || len(open) != 2 {
		t.Fatalf("%d open tasks (%v), want 2", len(open), err)
	}
	id := "deactivate." + caseID(t, private, 1)
	tk, changed, err := st.CloseTask(ctx, id, "Martina Graf", "deactivated in the portal")
	if err != nil || !changed || tk.State != event.TaskStateDone || tk.Done.By != "Martina Graf" {
		t.Fatalf("CloseTask = %+v %v %v", tk, changed, err)
	}
	if _, changed, err := st.CloseTask(ctx, id, "Martina Graf", ""); err != nil || changed {
		t.Errorf("closing it again: changed %v, %v", changed, err)
	}
	// Another system closes the recreate task.
	other := "recreate." + caseID(t, private, 1)
	ev, err := event.New(event.TypeTaskDone, "eiam-workflow", "wf-42", time.Now(), event.TaskDone{Task: other, By: "eIAM workflow"})
	if err != nil {
		t.Fatal(err)
	}
	if err := pipeline.Publish(ctx, e.js, event.SubjectTaskDone, ev); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other system's event to close the task", func() bool {
		tk, err := st.Task(ctx, other)
		return err == nil && tk.State == event.TaskStateDone && tk.Done.By == "eIAM workflow"
	})
	if open, _ := st.Tasks(ctx, "", false); len(open) != 0 {
		t.Errorf("%d tasks still open", len(open))
	}
	if _, _, err := st.CloseTask(ctx, "deactivate.p.nonexistent", "x", ""); !errors.Is(err, actions.ErrNoTask) {
		t.Errorf("closing an unknown task = %v", err)
	}
	bad, _ := event.New(event.TypeTaskDone, "eiam-workflow", "wf-43", time.Now(), event.TaskDone{Task: "deactivate.p.unknown", By: "x"})
	if err := pipeline.Publish(ctx, e.js, event.SubjectTaskDone, bad); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the unknown task's event to be dead-lettered", func() bool {
		recs, err := pipeline.ReadDead(ctx, e.js, 0)
		if err != nil {
			return false
		}
		for _, r := range recs {
			if r.Letter != nil && r.Letter.Stage == actions.TasksName && strings.Contains(r.Letter.Reason, "deactivate.p.unknown") {
				return true
			}
		}
		return false
	})
}
