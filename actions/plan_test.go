package actions

import (
	"slices"
	"testing"

	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
)

func kinds(steps []step) []EffectKind {
	out := make([]EffectKind, len(steps))
	for i, s := range steps {
		out[i] = s.Kind
	}
	return out
}

// TestPlan: what each class causes, in order, and when the user mail
// becomes a draft: never a mail to anything but one plain entered address
// that is not the signed-in one.
func TestPlan(t *testing.T) {
	send := &config.Mailbox{Name: "be", UserMail: config.UserMailSend}
	draft := &config.Mailbox{Name: "be", UserMail: config.UserMailDraft}
	private := func(entered, signedIn string) *event.Case {
		return &event.Case{Expected: event.Person{Email: entered}, Actual: event.Person{Email: signedIn}}
	}
	ok := private("anna.muster@be.ch", "anna@gmail.com")
	for _, tc := range []struct {
		name    string
		class   event.Class
		c       *event.Case
		mb      *config.Mailbox
		want    []EffectKind
		problem string
	}{
		{"negligible", event.ClassNegligible, ok, send, []EffectKind{EffectRecord}, ""},
		{"review", event.ClassReview, ok, send, []EffectKind{EffectDecision}, ""},
		{"wrong person: escalation first", event.ClassWrongPerson, ok, send, []EffectKind{EffectEscalation, EffectDeactivate, EffectAlert}, ""},
		{"private", event.ClassPrivateEmail, ok, send, []EffectKind{EffectDeactivate, EffectRecreate, EffectUserMail}, ""},
		{"private, drafted by configuration", event.ClassPrivateEmail, ok, draft, []EffectKind{EffectDeactivate, EffectRecreate, EffectDraft}, ""},
		{"private, no entered address", event.ClassPrivateEmail, private("", "anna@gmail.com"), send, []EffectKind{EffectDeactivate, EffectRecreate, EffectDraft}, ProblemNoAddress},
		{"private, entered address is the signed-in one", event.ClassPrivateEmail, private("Anna@Gmail.com", "anna@gmail.com"), send, []EffectKind{EffectDeactivate, EffectRecreate, EffectDraft}, ProblemSameAddress},
		{"private, a header in the address", event.ClassPrivateEmail, private("a@be.ch\r\nBcc: x@evil.example", "x@gmail.com"), send, []EffectKind{EffectDeactivate, EffectRecreate, EffectDraft}, ProblemNoAddress},
		{"private, two addresses", event.ClassPrivateEmail, private("a@be.ch, b@be.ch", "x@gmail.com"), send, []EffectKind{EffectDeactivate, EffectRecreate, EffectDraft}, ProblemNoAddress},
		{"private, a display name", event.ClassPrivateEmail, private("Anna <a@be.ch>", "x@gmail.com"), send, []EffectKind{EffectDeactivate, EffectRecreate, EffectDraft}, ProblemNoAddress},
		{"private, not ASCII", event.ClassPrivateEmail, private("änna@be.ch", "x@gmail.com"), send, []EffectKind{EffectDeactivate, EffectRecreate, EffectDraft}, ProblemNoAddress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps := plan(tc.class, tc.c, tc.mb)
			if got := kinds(steps); !slices.Equal(got, tc.want) {
				t.Fatalf("plan = %v, want %v", got, tc.want)
			}
			last := steps[len(steps)-1]
			if last.Problem != tc.problem {
				t.Errorf("problem %q, want %q", last.Problem, tc.problem)
			}
			for _, s := range steps {
				wantCap := map[EffectKind]string{EffectEscalation: CapEscalation, EffectDeactivate: CapDeactivate, EffectUserMail: CapUserMail}[s.Kind]
				if s.Cap != wantCap {
					t.Errorf("%s counts against %q, want %q", s.Kind, s.Cap, wantCap)
				}
				if s.Kind == EffectRecreate && s.Follows != EffectDeactivate {
					t.Errorf("the recreate task does not go with the deactivation")
				}
			}
		})
	}
}
