package summary

import (
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/event"
)

func TestBuild(t *testing.T) {
	from := time.Date(2026, 3, 29, 5, 30, 0, 0, time.UTC)
	until := from.Add(24 * time.Hour)
	c := func(id string, class event.Class, mailbox string, updated time.Time) *event.Case {
		return &event.Case{ID: id, Class: class, Mailbox: mailbox, Created: updated, Updated: updated,
			Expected: event.Person{GivenName: "Anna", FamilyName: "Muster", Email: "a@be.ch"}, Actual: event.Person{GivenName: "Anja", FamilyName: "Muster", Email: "a@be.ch"}}
	}
	in := Input{
		Mailbox: "be", Superuser: "su@be.ch", From: from, Until: until, Loc: time.UTC,
		Cases: []*event.Case{
			c("p.neg", event.ClassNegligible, "be", from.Add(time.Hour)),
			c("p.wp", event.ClassWrongPerson, "be", from.Add(2*time.Hour)),
			c("p.old", event.ClassPrivateEmail, "be", from.Add(-time.Hour)), // before the period
			c("p.late", event.ClassPrivateEmail, "be", until),               // the next period's
			c("p.zh", event.ClassWrongPerson, "zh", from.Add(time.Hour)),    // another mailbox
			c("p.rv", event.ClassReview, "be", from.Add(-48*time.Hour)),     // open decision, old
			c("p.rv2", event.ClassReview, "be", from.Add(-48*time.Hour)),    // decided
		},
		Decisions: map[string]Decided{"p.rv2": {Class: event.ClassNegligible, By: "M", Why: "w"}},
		Done:      map[string][]Done{"p.wp": {{Kind: "escalation", State: "sent", To: []string{"spiges@bfs.admin.ch"}}}},
		Tasks: []event.Task{
			{ID: "deactivate.p.wp", Mailbox: "be", State: event.TaskStateOpen, Created: from.Add(2 * time.Hour)},
			{ID: "deactivate.p.x", Mailbox: "be", State: event.TaskStateDone, Created: from},
			{ID: "deactivate.p.zh", Mailbox: "zh", State: event.TaskStateOpen, Created: from},
		},
		Quarantined: []event.MailIgnored{{Mailbox: "be", Kind: "untrusted-forwarder", Reason: "x\r\n", At: from.Add(time.Minute)}, {Mailbox: "zh", At: from.Add(time.Minute)}},
		Dead:        []event.DeadLetter{{Stage: "classify", At: from.Add(-time.Minute)}, {Stage: "actions", At: from.Add(time.Minute), Reason: "boom"}},
		Failed:      []Failed{{ID: "user-mail.p.x.1", At: until.Add(time.Second)}},
	}
	v := Build(in)
	if v.CaseCount != 2 || len(v.Groups) != 2 || v.Groups[0].Class != "wrong-person" || v.Groups[1].Class != "negligible" {
		t.Fatalf("groups %+v (%d cases), want wrong-person then negligible, 2 cases", v.Groups, v.CaseCount)
	}
	if d := v.Groups[0].Cases[0].Done; len(d) != 1 || d[0].To != "spiges@bfs.admin.ch" {
		t.Errorf("what was done: %+v", d)
	}
	if rows := v.Groups[0].Cases[0].Case.Rows; !rows[0].Differs || rows[1].Differs || rows[2].Differs {
		t.Errorf("differences %+v, want the given name only", rows)
	}
	if len(v.OpenDecisions) != 1 || v.OpenDecisions[0].Case.ID != "p.rv" || v.OpenDecisions[0].Age.Days != 3 {
		t.Errorf("open decisions %+v, want p.rv, 3 days old", v.OpenDecisions)
	}
	if len(v.OpenTasks) != 1 || v.OpenTasks[0].ID != "deactivate.p.wp" || v.OpenTasks[0].Age.Hours != 22 {
		t.Errorf("open tasks %+v", v.OpenTasks)
	}
	if len(v.Quarantined) != 1 || v.Quarantined[0].Reason != `x\r\n` {
		t.Errorf("quarantined %+v", v.Quarantined)
	}
	if len(v.Dead) != 1 || v.Dead[0].Stage != "actions" || len(v.FailedMail) != 0 {
		t.Errorf("dead %+v, failed %+v", v.Dead, v.FailedMail)
	}
	if v.Empty() {
		t.Error("a summary with cases is empty")
	}
	if e := Build(Input{Mailbox: "be", From: from, Until: until, Loc: time.UTC}); !e.Empty() {
		t.Errorf("a summary of nothing is not empty: %+v", e)
	}
}
