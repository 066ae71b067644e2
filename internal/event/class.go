package event

import (
	"fmt"
	"strings"
)

// Class is the triage class of a notice and of its case (docs/NOTICE.md
// section 4). It is the last token of a case subject, eiam.case.<class>.
type Class string

// The classes, and the one list of them in order of severity: a case takes
// the most severe class of its notices.
const (
	// ClassNegligible: nothing to do, eIAM updates the data by itself.
	ClassNegligible Class = "negligible"
	// ClassReview: a person has to decide.
	ClassReview Class = "review"
	// ClassPrivateEmail: the user signed in with a private (free-mail)
	// address.
	ClassPrivateEmail Class = "private-email"
	// ClassWrongPerson: the code was redeemed by somebody else. Never
	// missed.
	ClassWrongPerson Class = "wrong-person"
)

// classes holds every class, least severe first.
var classes = [...]Class{ClassNegligible, ClassReview, ClassPrivateEmail, ClassWrongPerson}

// Classes returns every class, least severe first.
func Classes() []Class { return classes[:] }

// Severity orders the classes: 1 for negligible up to 4 for wrong-person,
// 0 for anything else.
func (c Class) Severity() int {
	for i, k := range classes {
		if k == c {
			return i + 1
		}
	}
	return 0
}

// ParseClass returns the class named s. An unknown name is an error that
// lists the known ones.
func ParseClass(s string) (Class, error) {
	if c := Class(s); c.Severity() > 0 {
		return c, nil
	}
	names := make([]string, len(classes))
	for i, c := range classes {
		names[i] = string(c)
	}
	return "", fmt.Errorf("event: unknown class %q: use one of %s", s, strings.Join(names, ", "))
}
