package render

import (
	"strings"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/event"
)

// TimeLayout is how every time in a mail is written, in the mailbox's time
// zone.
const TimeLayout = "02.01.2006 15:04"

// FormatTime writes t in loc as TimeLayout, "" for the zero time.
func FormatTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format(TimeLayout)
}

// Person is one side of a comparison, cleaned.
type Person struct {
	GivenName, FamilyName, Email string
}

// NewPerson cleans p.
func NewPerson(p event.Person) Person {
	return Person{GivenName: Clean(strings.TrimSpace(p.GivenName)), FamilyName: Clean(strings.TrimSpace(p.FamilyName)), Email: Clean(strings.TrimSpace(p.Email))}
}

// Name is the given and the family name.
func (p Person) Name() string { return strings.TrimSpace(p.GivenName + " " + p.FamilyName) }

// Row is one compared attribute: its field (given_name, family_name,
// email), both values, and whether they differ.
type Row struct {
	Field             string
	Entered, SignedIn string
	Differs           bool
}

// Compare lays the entered and the signed-in values side by side, marking
// the attributes that differ (e-mail addresses without regard to letter
// case, names exactly as written: the reader sees every difference).
func Compare(entered, signedIn event.Person) []Row {
	e, s := NewPerson(entered), NewPerson(signedIn)
	return []Row{
		{Field: "given_name", Entered: e.GivenName, SignedIn: s.GivenName, Differs: strings.TrimSpace(entered.GivenName) != strings.TrimSpace(signedIn.GivenName)},
		{Field: "family_name", Entered: e.FamilyName, SignedIn: s.FamilyName, Differs: strings.TrimSpace(entered.FamilyName) != strings.TrimSpace(signedIn.FamilyName)},
		{Field: "email", Entered: e.Email, SignedIn: s.Email, Differs: !strings.EqualFold(strings.TrimSpace(entered.Email), strings.TrimSpace(signedIn.Email))},
	}
}

// Case is a case as a mail shows it; every value cleaned.
type Case struct {
	ID, ProfileID, Organisation, Application, Mailbox, Class, Language string
	// SignedInAt is when the user signed in (TimeLayout), "" when unknown.
	SignedInAt string
	Rule       int
	Names      string
	Rows       []Row
	Entered    Person
	SignedIn   Person
	Reasons    []string
	Problems   []string
	// AddressedTo is the superuser the notice was sent to ("" when it
	// names none); Delivery how it arrived; Forwarders who forwarded it.
	AddressedTo string
	Delivery    string
	Forwarders  []string
	// Notices counts the notices of the case.
	Notices int
}

// NewCase is the view of c, with the notice ref (nil: none in
// particular) and times in loc.
func NewCase(c *event.Case, ref *event.NoticeRef, loc *time.Location) Case {
	v := Case{
		ID: Clean(c.ID), ProfileID: Clean(c.ProfileID), Organisation: Clean(c.Organisation), Application: Clean(c.Application),
		Mailbox: Clean(c.Mailbox), Class: Clean(string(c.Class)), Language: Clean(c.Language),
		SignedInAt: FormatTime(c.SignedInAt, loc), Rule: c.Rule, Names: Clean(c.Names),
		Rows: Compare(c.Expected, c.Actual), Entered: NewPerson(c.Expected), SignedIn: NewPerson(c.Actual),
		Reasons: CleanAll(c.Reasons), Problems: CleanAll(c.Problems), Notices: len(c.Notices),
	}
	if ref != nil {
		v.AddressedTo, v.Delivery, v.Forwarders = Clean(ref.AddressedTo), Clean(string(ref.Delivery)), CleanAll(ref.Forwarders)
		if v.SignedInAt == "" {
			v.SignedInAt = Clean(ref.SignedIn)
		}
	}
	return v
}

// Age is a duration as a mail says it: days, hours and minutes.
type Age struct{ Days, Hours, Minutes int }

// NewAge splits d (a negative d is zero).
func NewAge(d time.Duration) Age {
	if d < 0 {
		d = 0
	}
	m := int(d / time.Minute)
	return Age{Days: m / (24 * 60), Hours: m / 60 % 24, Minutes: m % 60}
}

// TaskData is what the task step templates are rendered with.
type TaskData struct {
	// ID is the task's id (for `eiamtriage tasks done ID`).
	ID string
	// Portal is the delegation portal's address ("" when not configured).
	Portal       string
	ProfileID    string
	Organisation string
	Application  string
	Entered      Person
	SignedIn     Person
	Urgent       bool
}

// NewTaskData is the step templates' data for a task on c.
func NewTaskData(id string, c *event.Case, portal string, urgent bool) TaskData {
	return TaskData{ID: Clean(id), Portal: Clean(portal), ProfileID: Clean(c.ProfileID), Organisation: Clean(c.Organisation), Application: Clean(c.Application),
		Entered: NewPerson(c.Expected), SignedIn: NewPerson(c.Actual), Urgent: urgent}
}

// Task is a task as a mail shows it.
type Task struct {
	ID, Kind, Case, ProfileID, Organisation string
	Urgent                                  bool
	Where                                   string
	Steps                                   []string
	Entered                                 Person
	Created                                 string
	Age                                     Age
	DryRun                                  bool
}

// NewTask is the view of t, its age counted at now.
func NewTask(t event.Task, now time.Time, loc *time.Location) Task {
	return Task{ID: Clean(t.ID), Kind: Clean(string(t.Kind)), Case: Clean(t.Case), ProfileID: Clean(t.ProfileID), Organisation: Clean(t.Organisation),
		Urgent: t.Urgent, Where: escapeUnsafe(t.Where), Steps: escapeAllUnsafe(t.Steps), Entered: NewPerson(t.Entered),
		Created: FormatTime(t.Created, loc), Age: NewAge(now.Sub(t.Created)), DryRun: t.DryRun}
}

// escapeUnsafe escapes what Clean escapes but backslashes, in text this
// package rendered from cleaned values (a task's steps): such text comes
// through unchanged, and anything else is still made safe.
func escapeUnsafe(s string) string {
	if !strings.ContainsFunc(s, isUnsafe) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isUnsafe(r) {
			b.WriteString(Clean(string(r)))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func escapeAllUnsafe(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = escapeUnsafe(s)
	}
	return out
}

// EscalationView is the escalation to federal support.
type EscalationView struct {
	Common
	Case Case
	// Superusers are whom support answers (Reply-To).
	Superusers []string
	// Attached: the original notice is attached; otherwise AttachProblem
	// says why it is not.
	Attached      bool
	AttachProblem string
	Task          *Task
}

// UserMailView is the mail to the user of a private-email case.
type UserMailView struct {
	Common
	Case    Case
	ReplyTo []string
}

// DraftView is that mail as a draft for the superusers.
type DraftView struct {
	Common
	Case Case
	// To is the entered address the draft is meant for ("" when it is
	// unusable: Problem says why).
	To      string
	Problem string
	// UserSubject and UserText are the user's mail, in its language.
	UserSubject, UserText string
	UserLang              string
}

// AlertView is the urgent alert of a wrong-person case.
type AlertView struct {
	Common
	Case           Case
	EscalatedTo    []string
	EscalationHeld bool
	Task           *Task
}

// DecisionView asks the superusers to decide a review case.
type DecisionView struct {
	Common
	Case    Case
	Command string
}

// HoldView says that actions are held past a cap.
type HoldView struct {
	Common
	Mailbox string
	// Action is the capped kind: user_mail, escalation or deactivate.
	Action  string
	Cap     int
	Since   string
	Command string
}

// SummaryView is one superuser's triage summary.
type SummaryView struct {
	Common
	Mailbox, Superuser string
	// From and Until bound the period (From "" for the first summary).
	From, Until string
	// CaseCount counts the cases of all groups.
	CaseCount     int
	Groups        []Group
	OpenTasks     []Task
	OpenDecisions []OpenDecision
	Held          []Held
	Quarantined   []Quarantined
	Dead          []Dead
	FailedMail    []FailedMail
}

// Group is the cases of one class.
type Group struct {
	Class string
	Cases []SummaryCase
}

// SummaryCase is a case of the period with what was done about it.
type SummaryCase struct {
	Case     Case
	Done     []Action
	Decision *Decided
}

// Action is one thing done (or held) about a case: Kind is an effect kind
// (record, user-mail, draft, escalation, alert, decision, deactivate,
// recreate), State its state (done, held, discarded, failed; for a mail
// the outbox's: queued, sent, failed, dry-run, ...).
type Action struct {
	Kind, State, To, Note, When string
}

// Decided is a person's decision on a review case.
type Decided struct {
	Class, By, Why, At string
}

// OpenDecision is a review case waiting for a person.
type OpenDecision struct {
	Case    Case
	Age     Age
	Command string
}

// Held is an action held past a cap.
type Held struct {
	Kind, Case, Since string
	Age               Age
}

// Quarantined is a mail that looked like a notice from an untrusted
// sender.
type Quarantined struct {
	At, Kind, Reason, ProfileID, Name string
}

// Dead is a message a stage gave up on.
type Dead struct {
	At, Stage, Reason string
	Deliveries        uint64
}

// FailedMail is a mail the outbox could not deliver.
type FailedMail struct {
	ID, Kind, To, Subject, State, Error, At string
}

// Empty reports whether the summary has nothing to say.
func (s *SummaryView) Empty() bool {
	return len(s.Groups) == 0 && len(s.OpenTasks) == 0 && len(s.OpenDecisions) == 0 && len(s.Held) == 0 &&
		len(s.Quarantined) == 0 && len(s.Dead) == 0 && len(s.FailedMail) == 0
}
