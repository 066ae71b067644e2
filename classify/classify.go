// Package classify triages an eIAM mismatch notice: it compares the person
// entered in the portal with the person who signed in and returns a Verdict,
// the class of NOTICE.md section 4 with the rule that decided it and the
// reasons in words a superuser understands.
//
// The package is pure: it performs no I/O and triggers nothing. Which
// actions a class drives is the business of package actions and of the
// configuration.
package classify

import (
	"strings"

	"github.com/eiamtriage/eiamtriage/internal/event"
)

// Verdict is the result of classifying one notice.
type Verdict struct {
	// Class is the triage class.
	Class event.Class `json:"class"`
	// Rule is the number, 1 to 7, of the row of the class table in NOTICE.md
	// section 4 that decided the class.
	Rule int `json:"rule"`
	// Names is the name verdict; empty when rule 1 decided before the names
	// were compared.
	Names NameVerdict `json:"names,omitempty"`
	// Reasons are sentences a superuser understands, naming the values
	// compared; the one that decided says "(rule N)". Never empty.
	Reasons []string `json:"reasons"`
	// Expected and Actual are copies of the compared values as the notice
	// gave them: entered in the portal, and of the signed-in user.
	Expected event.Person `json:"expected"`
	Actual   event.Person `json:"actual"`
	// PrivateDomain is the free-mail domain of the signed-in address, in
	// lower case, when rule 4 fired.
	PrivateDomain string `json:"private_domain,omitempty"`
}

// Options adjust a Classifier. A nil *Options means the defaults.
type Options struct {
	// AddFreeMail lists domains to treat as free-mail in addition to
	// DefaultFreeMail.
	AddFreeMail []string
	// RemoveFreeMail lists domains of DefaultFreeMail (or AddFreeMail) not
	// to treat as free-mail. Removal wins over addition.
	RemoveFreeMail []string
}

// Classifier classifies notices. It is immutable after New and safe for
// concurrent use. A nil *Classifier classifies with the defaults.
type Classifier struct {
	free map[string]struct{}
}

// defaultClassifier serves a nil *Classifier.
var defaultClassifier = New(nil)

// New returns a Classifier configured by opts; nil opts means the defaults.
// Domains in opts are compared without regard to case, surrounding white
// space, a leading '@' or a trailing dot; blank entries are ignored.
func New(opts *Options) *Classifier {
	c := &Classifier{free: make(map[string]struct{}, len(defaultFreeMail))}
	for _, d := range defaultFreeMail {
		c.free[d] = struct{}{}
	}
	if opts != nil {
		for _, d := range opts.AddFreeMail {
			if d = cleanDomain(d); d != "" {
				c.free[d] = struct{}{}
			}
		}
		for _, d := range opts.RemoveFreeMail {
			delete(c.free, cleanDomain(d))
		}
	}
	return c
}

// freeMail returns the set of free-mail domains.
func (c *Classifier) freeMail() map[string]struct{} {
	if c == nil {
		return defaultClassifier.free
	}
	return c.free
}

// Classify returns the verdict for n following the class table of NOTICE.md
// section 4: the first rule that applies wins. A nil n is classified as
// unreadable (rule 1).
func (c *Classifier) Classify(n *event.Notice) Verdict {
	if n == nil {
		return Verdict{Class: event.ClassReview, Rule: 1, Reasons: []string{"there is no notice to classify (rule 1)"}}
	}
	v := Verdict{Expected: n.Expected, Actual: n.Actual}

	// Rule 1: a compared value is missing, or the notice cannot be read.
	var tb tokenBuf
	p := tb.pair(n.Expected, n.Actual)
	expMail, actMail := strings.TrimSpace(n.Expected.Email), strings.TrimSpace(n.Actual.Email)
	expDomain, expOK := splitAddress(expMail)
	actDomain, actOK := splitAddress(actMail)
	if !n.Readable() || len(p.e.g) == 0 || len(p.e.f) == 0 || len(p.a.g) == 0 || len(p.a.f) == 0 || !expOK || !actOK {
		for _, pr := range n.Problems {
			v.Reasons = append(v.Reasons, "the notice could not be read completely: "+pr+" (rule 1)")
		}
		v.Reasons = appendMissingName(v.Reasons, "entered given name", p.e.given, p.e.g)
		v.Reasons = appendMissingName(v.Reasons, "entered family name", p.e.family, p.e.f)
		v.Reasons = appendMissingAddress(v.Reasons, "entered e-mail", expMail, expOK)
		v.Reasons = appendMissingName(v.Reasons, "signed-in given name", p.a.given, p.a.g)
		v.Reasons = appendMissingName(v.Reasons, "signed-in family name", p.a.family, p.a.f)
		v.Reasons = appendMissingAddress(v.Reasons, "signed-in e-mail", actMail, actOK)
		v.Class, v.Rule = event.ClassReview, 1
		return v
	}

	names, why := p.compare()
	v.Names = names
	sameMail := strings.EqualFold(expMail, actMail)
	mails := "e-mail " + quote(expMail) + " vs " + quote(actMail) + ": "

	switch names {
	case NamesDifferent:
		// Rule 2.
		v.Class, v.Rule = event.ClassWrongPerson, 2
		v.Reasons = append(v.Reasons, why+" (rule 2)")
		if !sameMail {
			v.Reasons = append(v.Reasons, mails+"the addresses differ too")
		}
		return v
	case NamesPartial:
		// Rule 3.
		v.Class, v.Rule = event.ClassReview, 3
		v.Reasons = append(v.Reasons, why+" (rule 3)")
		if !sameMail {
			v.Reasons = append(v.Reasons, mails+"the addresses differ too")
		}
		return v
	}

	v.Reasons = append(v.Reasons, why)
	switch {
	case sameMail:
		// Rule 7.
		v.Class, v.Rule = event.ClassNegligible, 7
		if expMail == actMail {
			v.Reasons = append(v.Reasons, "e-mail "+quote(expMail)+" is the same on both sides (rule 7)")
		} else {
			v.Reasons = append(v.Reasons, mails+"the same address in another letter case (rule 7)")
		}
	case c.IsFreeMail(actDomain):
		// Rule 4.
		v.Class, v.Rule, v.PrivateDomain = event.ClassPrivateEmail, 4, actDomain
		v.Reasons = append(v.Reasons, mails+"the signed-in address is a private one at the free-mail provider "+
			quote(actDomain)+" (rule 4)")
		if c.IsFreeMail(expDomain) {
			v.Reasons = append(v.Reasons, "the entered address "+quote(expMail)+
				" is at a free-mail provider too, so there is no professional address to ask for")
		}
	case SameDomain(expDomain, actDomain):
		// Rule 5.
		v.Class, v.Rule = event.ClassNegligible, 5
		where := "the same domain " + quote(expDomain)
		if expDomain != actDomain {
			where = "the same domain (" + quote(expDomain) + " and " + quote(actDomain) + ")"
		}
		v.Reasons = append(v.Reasons, mails+"the addresses differ but are in "+where+
			", a negligible difference (rule 5)")
	default:
		// Rule 6.
		v.Class, v.Rule = event.ClassReview, 6
		v.Reasons = append(v.Reasons, mails+"the signed-in address is in another domain, "+
			quote(actDomain)+" instead of "+quote(expDomain)+", and not at a known free-mail provider (rule 6)")
	}
	return v
}

// appendMissingName appends a rule 1 reason when a name value is missing or
// holds no letters.
func appendMissingName(reasons []string, what, value string, toks []string) []string {
	switch {
	case value == "":
		return append(reasons, "the "+what+" is missing (rule 1)")
	case len(toks) == 0:
		return append(reasons, "the "+what+" "+quote(value)+" holds no letters (rule 1)")
	}
	return reasons
}

// appendMissingAddress appends a rule 1 reason when an address is missing
// or cannot be read as an address.
func appendMissingAddress(reasons []string, what, value string, ok bool) []string {
	switch {
	case value == "":
		return append(reasons, "the "+what+" is missing (rule 1)")
	case !strings.Contains(value, "@"):
		return append(reasons, "the "+what+" "+quote(value)+" is not an address, it has no '@' (rule 1)")
	case !ok:
		return append(reasons, "the "+what+" "+quote(value)+" is not a complete address (rule 1)")
	}
	return reasons
}
