package actions

import (
	"strings"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
)

// EffectKind is one kind of side effect of a case.
type EffectKind string

// The effects. Which a class causes is plan's business.
const (
	// EffectRecord: nothing but the record (negligible).
	EffectRecord EffectKind = "record"
	// EffectDeactivate and EffectRecreate open tasks.
	EffectDeactivate EffectKind = "deactivate"
	EffectRecreate   EffectKind = "recreate"
	// EffectUserMail mails the user at the entered address; EffectDraft
	// drafts that mail for the superusers instead.
	EffectUserMail EffectKind = "user-mail"
	EffectDraft    EffectKind = "draft"
	// EffectEscalation forwards the case to federal support with the
	// original notice; EffectAlert alerts the superuser urgently.
	EffectEscalation EffectKind = "escalation"
	EffectAlert      EffectKind = "alert"
	// EffectDecision asks the superusers to decide a review case.
	EffectDecision EffectKind = "decision"
)

// The capped kinds of action (actions.caps): per mailbox and clock hour.
const (
	CapUserMail   = "user_mail"
	CapEscalation = "escalation"
	CapDeactivate = "deactivate"
)

// Problems that turn the mail to a user into a draft for the superusers
// (render labels "problem.<code>").
const (
	// ProblemNoAddress: the entered address is missing or not one plain
	// address.
	ProblemNoAddress = "no-address"
	// ProblemSameAddress: the entered address is the private one the user
	// signed in with.
	ProblemSameAddress = "same-address"
)

// step is one effect a class causes.
type step struct {
	Kind EffectKind
	// Cap is the cap the effect counts against ("" for none).
	Cap string
	// Follows: the effect is held when the effect of that kind (earlier
	// in the plan) is held, and counts against no cap of its own (the
	// recreate task goes with the deactivate task).
	Follows EffectKind
	// Problem, for a draft, says why the user is not mailed ("" : the
	// mailbox drafts by configuration).
	Problem string
}

// plan returns what a case of class causes, in the order it is done: for
// a wrong person the escalation first (at once), then the task, then the
// alert (which says whether the escalation went out).
func plan(class event.Class, c *event.Case, mb *config.Mailbox) []step {
	switch class {
	case event.ClassNegligible:
		return []step{{Kind: EffectRecord}}
	case event.ClassReview:
		return []step{{Kind: EffectDecision}}
	case event.ClassPrivateEmail:
		user := step{Kind: EffectUserMail, Cap: CapUserMail}
		if _, problem := userAddress(c); problem != "" {
			user = step{Kind: EffectDraft, Problem: problem}
		} else if mb.UserMail == config.UserMailDraft {
			user = step{Kind: EffectDraft}
		}
		return []step{
			{Kind: EffectDeactivate, Cap: CapDeactivate},
			{Kind: EffectRecreate, Follows: EffectDeactivate},
			user,
		}
	case event.ClassWrongPerson:
		return []step{
			{Kind: EffectEscalation, Cap: CapEscalation},
			{Kind: EffectDeactivate, Cap: CapDeactivate},
			{Kind: EffectAlert},
		}
	}
	return nil
}

// userAddress returns the address the user of a private-email case is
// mailed at: the entered, professional one. It is never the signed-in
// (private) address; problem says why there is none.
func userAddress(c *event.Case) (addr, problem string) {
	a := strings.TrimSpace(c.Expected.Email)
	if !plainAddress(a) {
		return "", ProblemNoAddress
	}
	if strings.EqualFold(a, strings.TrimSpace(c.Actual.Email)) {
		return "", ProblemSameAddress
	}
	return a, ""
}

// plainAddress reports whether s is local@domain in printable ASCII, one
// '@', a dot in the domain, nothing that could start another address or
// header: the only form of a mail value used as a recipient.
func plainAddress(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at != strings.LastIndexByte(s, '@') || !strings.Contains(s[at+1:], ".") ||
		strings.HasSuffix(s, ".") || strings.Contains(s[at+1:], "..") || len(s) > 254 {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune("<>,;:\"()[]\\", r) })
}

// EffectState is where an effect stands.
type EffectState string

// The states of an effect.
const (
	// StatePending: recorded and being done (a crash leaves it so; the
	// redelivered event finishes it).
	StatePending EffectState = "pending"
	// StateDone: done (a mail handed to the outbox, a task opened, a
	// record made).
	StateDone EffectState = "done"
	// StateHeld: past its cap, waiting for `eiamtriage actions release`.
	StateHeld EffectState = "held"
	// StateDiscarded: a held effect a person discarded.
	StateDiscarded EffectState = "discarded"
	// StateFailed: it can never be done as it stands (a template error, no
	// superuser to write to); the note says why.
	StateFailed EffectState = "failed"
)

// Effect is the record of one side effect of a case, written before it is
// done and updated when it is: the key of the fact (the case event's
// cause and the kind) makes it happen once, also long after the event
// stream's duplicate window.
type Effect struct {
	Key     string      `json:"key"`
	Kind    EffectKind  `json:"kind"`
	Case    string      `json:"case"`
	Mailbox string      `json:"mailbox"`
	Class   event.Class `json:"class"`
	// Cause is the mail id of the notice whose event caused it, or
	// "decision" for a person's decision.
	Cause string `json:"cause"`
	// Event is the id of the case event.
	Event string      `json:"event,omitempty"`
	State EffectState `json:"state"`
	// Cap is the cap it counts against; Problem a draft's reason.
	Cap     string `json:"cap,omitempty"`
	Problem string `json:"problem,omitempty"`
	// Mail is the outbox id of the mail it sent, Task the task it
	// opened, To the mail's recipients.
	Mail string   `json:"mail,omitempty"`
	Task string   `json:"task,omitempty"`
	To   []string `json:"to,omitempty"`
	// Note says what happened, in words an operator understands.
	Note    string    `json:"note,omitempty"`
	DryRun  bool      `json:"dry_run,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// CauseDecision is the cause of the effects of a person's decision.
const CauseDecision = "decision"

func effectKey(mailbox, caseID, cause string, kind EffectKind) string {
	return "effect." + mailbox + "." + caseID + "." + cause + "." + string(kind)
}

// mailID is the outbox id of the mail an effect sends: stable for its
// fact.
func mailID(kind EffectKind, caseID, cause string) string {
	return string(kind) + "." + caseID + "." + cause
}

// taskID is the id of a case's task of kind: one per case.
func taskID(kind event.TaskKind, caseID string) string { return string(kind) + "." + caseID }
