// Package summary builds a superuser's triage summary from what the
// actions stage recorded: the cases of the period grouped by class with
// what was done about each, the open tasks and decisions with their age,
// the actions held past a cap, the quarantined and dead-lettered mail and
// the mail that could not be delivered. It is pure: the caller reads the
// records, Build arranges them for package render.
package summary

import (
	"sort"
	"strings"
	"time"

	"github.com/eiamtriage/eiamtriage/actions/render"
	"github.com/eiamtriage/eiamtriage/internal/event"
)

// Input is everything one summary is built from. Build selects what
// belongs to Mailbox and to the period [From, Until) itself, so the caller
// may pass every record it read.
type Input struct {
	Mailbox, Superuser string
	// From and Until bound the period: From is the end of the previous
	// summary's (zero for the first), Until the time of this one, which
	// ages are counted at.
	From, Until time.Time
	// Loc is the time zone every time is written in.
	Loc    *time.Location
	DryRun bool

	Cases []*event.Case
	// Done is what was done about each case, by case id.
	Done map[string][]Done
	// Decisions are the people's decisions, by case id.
	Decisions map[string]Decided
	Tasks     []event.Task
	Held      []Held
	// Quarantined and Dead are the dead-letter stream's records.
	Quarantined []event.MailIgnored
	Dead        []event.DeadLetter
	// Failed are the outbox's mails in a problem state.
	Failed []Failed
}

// Done is one effect of a case.
type Done struct {
	Kind, State string
	To          []string
	Note        string
	At          time.Time
}

// Decided is a person's decision.
type Decided struct {
	Class   event.Class
	By, Why string
	At      time.Time
}

// Held is an effect held past a cap.
type Held struct {
	Kind, Case string
	Since      time.Time
}

// Failed is a mail the outbox could not deliver.
type Failed struct {
	ID, Kind, Subject, State, Error string
	To                              []string
	At                              time.Time
}

// order is the order of the groups: what needs a person first.
var order = []event.Class{event.ClassWrongPerson, event.ClassPrivateEmail, event.ClassReview, event.ClassNegligible}

// Build arranges in as a summary; its Empty says when there is nothing to
// say (then no summary goes out).
func Build(in Input) render.SummaryView {
	loc := in.Loc
	v := render.SummaryView{
		Common:  render.Common{DryRun: in.DryRun},
		Mailbox: render.Clean(in.Mailbox), Superuser: render.Clean(in.Superuser),
		From: render.FormatTime(in.From, loc), Until: render.FormatTime(in.Until, loc),
	}
	inPeriod := func(t time.Time) bool { return !t.Before(in.From) && t.Before(in.Until) }

	groups := map[event.Class][]render.SummaryCase{}
	var review []*event.Case
	for _, c := range in.Cases {
		if c.Mailbox != in.Mailbox {
			continue
		}
		if c.Class == event.ClassReview {
			if _, decided := in.Decisions[c.ID]; !decided && c.Created.Before(in.Until) {
				review = append(review, c)
			}
		}
		if !inPeriod(c.Updated) {
			continue
		}
		sc := render.SummaryCase{Case: render.NewCase(c, nil, loc)}
		for _, d := range in.Done[c.ID] {
			sc.Done = append(sc.Done, render.Action{Kind: render.Clean(d.Kind), State: render.Clean(d.State),
				To: render.Clean(strings.Join(d.To, ", ")), Note: render.Clean(d.Note), When: render.FormatTime(d.At, loc)})
		}
		if d, ok := in.Decisions[c.ID]; ok {
			sc.Decision = &render.Decided{Class: render.Clean(string(d.Class)), By: render.Clean(d.By), Why: render.Clean(d.Why), At: render.FormatTime(d.At, loc)}
		}
		groups[c.Class] = append(groups[c.Class], sc)
		v.CaseCount++
	}
	for _, class := range order {
		if cs := groups[class]; len(cs) > 0 {
			v.Groups = append(v.Groups, render.Group{Class: string(class), Cases: cs})
		}
	}
	sort.SliceStable(review, func(i, j int) bool { return review[i].Created.Before(review[j].Created) })
	for _, c := range review {
		v.OpenDecisions = append(v.OpenDecisions, render.OpenDecision{Case: render.NewCase(c, nil, loc), Age: render.NewAge(in.Until.Sub(c.Created)),
			Command: "eiamtriage cases decide " + render.Clean(c.ID) + " CLASS --by NAME --why TEXT"})
	}
	for _, t := range in.Tasks {
		if t.Mailbox == in.Mailbox && t.State == event.TaskStateOpen && t.Created.Before(in.Until) {
			v.OpenTasks = append(v.OpenTasks, render.NewTask(t, in.Until, loc))
		}
	}
	for _, h := range in.Held {
		v.Held = append(v.Held, render.Held{Kind: render.Clean(h.Kind), Case: render.Clean(h.Case), Since: render.FormatTime(h.Since, loc), Age: render.NewAge(in.Until.Sub(h.Since))})
	}
	for _, q := range in.Quarantined {
		if q.Mailbox != in.Mailbox || !inPeriod(q.At) {
			continue
		}
		item := render.Quarantined{At: render.FormatTime(q.At, loc), Kind: render.Clean(q.Kind), Reason: render.Clean(q.Reason)}
		if q.Notice != nil {
			item.ProfileID = render.Clean(q.Notice.ProfileID)
			item.Name = render.NewPerson(q.Notice.Expected).Name()
		}
		v.Quarantined = append(v.Quarantined, item)
	}
	for _, d := range in.Dead {
		if inPeriod(d.At) {
			v.Dead = append(v.Dead, render.Dead{At: render.FormatTime(d.At, loc), Stage: render.Clean(d.Stage), Reason: render.Clean(d.Reason), Deliveries: d.Deliveries})
		}
	}
	for _, f := range in.Failed {
		if inPeriod(f.At) {
			v.FailedMail = append(v.FailedMail, render.FailedMail{ID: render.Clean(f.ID), Kind: render.Clean(f.Kind), To: render.Clean(strings.Join(f.To, ", ")),
				Subject: render.Clean(f.Subject), State: render.Clean(f.State), Error: render.Clean(f.Error), At: render.FormatTime(f.At, loc)})
		}
	}
	return v
}
