package cases_test

import (
	"context"
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/cases"
	"github.com/eiamtriage/eiamtriage/internal/event"
)

func newStore(t *testing.T) *cases.Store {
	t.Helper()
	kv := caseBucket(t)
	clock := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	return cases.NewStore(kv, func() time.Time { clock = clock.Add(time.Second); return clock })
}

func incoming(mail, msgID, profile string, class event.Class, actualGiven string) cases.Incoming {
	return cases.Incoming{
		MailID: mail, ReceivedSeq: 1, ReceivedAt: time.Unix(1, 0),
		Notice: &event.Notice{
			ProfileID: profile, MessageID: msgID, Language: "de", Delivery: event.DeliveryDirect,
			Expected: event.Person{GivenName: "Anna", FamilyName: "Muster", Email: "a@be.ch"},
			Actual:   event.Person{GivenName: actualGiven, FamilyName: "Muster", Email: "a@be.ch"},
		},
		Verdict: cases.Verdict{Class: class, Rule: 7, Reasons: []string{string(class)}},
	}
}

// TestRecord walks one profile through every change Record reports, in
// order: a case opens, a further notice joins, a more serious one
// escalates, the same mail and the same notice in another mail are
// duplicates (counted once per mail), and a different notice that reuses a
// Message-ID joins.
func TestRecord(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	steps := []struct {
		name       string
		in         cases.Incoming
		change     event.Change
		class      event.Class
		notices    int
		duplicates int
	}{
		{"first notice opens the case", incoming("m1", "<1@eiam>", "P-1", event.ClassReview, "Anna"), cases.Created, event.ClassReview, 1, 0},
		{"a less serious notice joins", incoming("m2", "<2@eiam>", "p-1", event.ClassNegligible, "Anna"), cases.Joined, event.ClassReview, 2, 0},
		{"a more serious notice escalates", incoming("m3", "<3@eiam>", "P-1", event.ClassWrongPerson, "Peter"), cases.Escalated, event.ClassWrongPerson, 3, 0},
		{"the same mail again", incoming("m1", "<1@eiam>", "P-1", event.ClassReview, "Anna"), cases.Duplicate, event.ClassWrongPerson, 3, 0},
		{"the same notice forwarded", incoming("m1-fwd", "<1@eiam>", "P-1", event.ClassReview, "Anna"), cases.Duplicate, event.ClassWrongPerson, 3, 1},
		{"the forward redelivered", incoming("m1-fwd", "<1@eiam>", "P-1", event.ClassReview, "Anna"), cases.Duplicate, event.ClassWrongPerson, 3, 1},
		{"a reused Message-ID with other values", incoming("m4", "<1@eiam>", "P-1", event.ClassReview, "Annette"), cases.Joined, event.ClassWrongPerson, 4, 1},
	}
	for _, st := range steps {
		c, change, err := s.Record(ctx, st.in)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if change != st.change || c.Class != st.class || len(c.Notices) != st.notices || c.Notices[0].Duplicates != st.duplicates {
			t.Errorf("%s: change %s, class %s, %d notices, %d duplicates; want %s, %s, %d, %d",
				st.name, change, c.Class, len(c.Notices), c.Notices[0].Duplicates, st.change, st.class, st.notices, st.duplicates)
		}
		if c.ID != "p.p-1" {
			t.Errorf("%s: case id %q, want p.p-1 (profile ids compare without case)", st.name, c.ID)
		}
	}
	got, _, err := s.Get(ctx, "p.p-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Actual.GivenName != "Peter" || got.Rule != 7 || got.Notices[2].Change != cases.Escalated {
		t.Errorf("stored case %+v: the escalating notice's values should be the case's", got)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 {
		t.Errorf("List: %d cases, %v", len(list), err)
	}
}

func TestKeyFor(t *testing.T) {
	tests := []struct{ profile, mail, want string }{
		{"442E3D43-7204", "m", "p.442e3d43-7204"},
		{" spaced-id ", "m", "p.spaced-id"},
		{"", "abc", "m.abc"},
		{"with/slash and space", "m", "p.h"}, // hashed: only the prefix is fixed
	}
	for _, tt := range tests {
		got := cases.KeyFor(&event.Notice{ProfileID: tt.profile}, tt.mail)
		if got != tt.want && !(len(tt.want) == 3 && len(got) == 35 && got[:3] == tt.want) {
			t.Errorf("KeyFor(%q) = %q, want %q", tt.profile, got, tt.want)
		}
	}
}
