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
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

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

	// Rule 1: a compared value is missing, or the notice cannot be read. A
	// value counts as missing when, once its invisible format characters
	// are removed, a name holds no letter or an e-mail value is not exactly
	// one address, or when either holds a control character.
	var tb tokenBuf
	p := tb.pair(n.Expected, n.Actual)
	fields := [...]struct {
		what, value string
		mail        bool
	}{
		{"entered given name", n.Expected.GivenName, false},
		{"entered family name", n.Expected.FamilyName, false},
		{"entered e-mail", n.Expected.Email, true},
		{"signed-in given name", n.Actual.GivenName, false},
		{"signed-in family name", n.Actual.FamilyName, false},
		{"signed-in e-mail", n.Actual.Email, true},
	}
	missing := !n.Readable()
	var clean [len(fields)]string // the values as they are compared
	for i, f := range fields {
		var pr string
		if clean[i], pr = checkValue(f.value, f.mail); pr != "" {
			missing = true
		}
	}
	if missing {
		for _, pr := range n.Problems {
			v.Reasons = append(v.Reasons, "the notice could not be read completely: "+escape(pr)+" (rule 1)")
		}
		for _, f := range fields {
			if _, pr := checkValue(f.value, f.mail); pr != "" {
				v.Reasons = append(v.Reasons, "the "+f.what+pr+" (rule 1)")
			}
		}
		v.Class, v.Rule = event.ClassReview, 1
		return v
	}

	// The addresses as the notice wrote them, and as they are compared.
	expShown, actShown := strings.TrimSpace(n.Expected.Email), strings.TrimSpace(n.Actual.Email)
	expMail, actMail := clean[2], clean[5]
	expDomain, actDomain := mailDomain(expMail), mailDomain(actMail)

	names, why := p.compare()
	v.Names = names
	sameMail := strings.EqualFold(expMail, actMail)
	mails := "e-mail " + quote(expShown) + " vs " + quote(actShown) + ": "

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
		switch {
		case expShown == actShown:
			v.Reasons = append(v.Reasons, "e-mail "+quote(expShown)+" is the same on both sides (rule 7)")
		case expMail == actMail:
			v.Reasons = append(v.Reasons, mails+"the same address once "+
				describeFormat(formatRunes(nil, expShown, actShown))+" (rule 7)")
		default:
			v.Reasons = append(v.Reasons, mails+"the same address in another letter case (rule 7)")
		}
	case c.IsFreeMail(actDomain):
		// Rule 4.
		v.Class, v.Rule, v.PrivateDomain = event.ClassPrivateEmail, 4, actDomain
		v.Reasons = append(v.Reasons, mails+"the signed-in address is a private one at the free-mail provider "+
			quote(actDomain)+" (rule 4)")
		if c.IsFreeMail(expDomain) {
			v.Reasons = append(v.Reasons, "the entered address "+quote(expShown)+
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

// checkValue returns a compared value as it is compared (trimmed, without
// its invisible format characters), and why it counts as missing (rule 1),
// as the end of a sentence that begins with the value's name ("the signed-in
// e-mail"), or "" when it can be compared. A value counts as missing when it
// holds a control character, when it is empty once its invisible format
// characters and surrounding white space are removed, when a name holds no
// letter, and when an e-mail value is not exactly one address. The value is
// quoted with its control and invisible characters escaped.
func checkValue(value string, mail bool) (clean, problem string) {
	sc := scanValue(value)
	if i := sc.control; i >= 0 {
		r, _ := utf8.DecodeRuneInString(value[i:])
		what := "name"
		if mail {
			what = "address"
		}
		return "", " " + quote(value) + fmt.Sprintf(" holds the control character U+%04X, which is no part of a readable ", r) + what
	}
	shown := strings.TrimSpace(value)
	v := shown
	if !sc.ascii {
		v = strings.TrimSpace(stripFormat(shown))
	}
	switch {
	case v == "" && shown == "":
		return v, " is missing"
	case v == "":
		return v, " " + quote(shown) + " holds no letters once " + describeFormat(formatRunes(nil, shown))
	case !mail:
		if !sc.letter {
			return v, " " + quote(shown) + " holds no letters"
		}
		return v, ""
	}
	if pr := addressProblem(v); pr != "" {
		return v, " " + quote(shown) + pr
	}
	return v, ""
}

// addressByte sorts the bytes of an address for addressProblem: 0 for a byte
// an address may hold, '@', ' ' for the space, '<' for a character that only
// a display name or a list of addresses holds, 0x80 for the start of a
// character outside ASCII.
var addressByte = func() (t [256]byte) {
	t['@'], t[' '] = '@', ' '
	for _, c := range []byte("<>()[],;:\"\\") {
		t[c] = '<'
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = 0x80
	}
	return t
}()

// addressProblem returns why a trimmed e-mail value without format characters
// is not exactly one address (local@domain, one '@', a domain of two or more
// labels separated by dots, no white space and none of the characters that
// only a display name or a list of addresses holds), or "".
func addressProblem(v string) string {
	// One pass: the '@' (the first, and how many), and the first white
	// space or character that no plain address holds.
	at, ats, odd, space := -1, 0, -1, false
	for i := 0; i < len(v); i++ {
		switch addressByte[v[i]] {
		case 0:
		case '@':
			if at < 0 {
				at = i
			}
			ats++
		case ' ':
			if odd < 0 {
				odd, space = i, true
			}
		case '<':
			if odd < 0 {
				odd = i
			}
		default: // not ASCII
			r, n := utf8.DecodeRuneInString(v[i:])
			if odd < 0 && unicode.IsSpace(r) {
				odd, space = i, true
			}
			i += n - 1
		}
	}
	switch {
	case at < 0:
		return " is not an address, it has no '@'"
	case ats > 1:
		return fmt.Sprintf(" is not one address, it has %d '@'", ats)
	case space:
		return " is not one address, it holds white space"
	case odd >= 0:
		return " is not a plain address, it holds " + quote(v[odd:odd+1])
	}
	local, domain := v[:at], v[at+1:]
	if strings.HasSuffix(domain, ".") {
		domain = domain[:len(domain)-1]
	}
	switch {
	case domain == "":
		return " is not a complete address"
	case local == "":
		return " is not a complete address, nothing stands before the '@'"
	}
	dots, empty := 0, domain[0] == '.'
	for i := 1; i < len(domain); i++ {
		if domain[i] == '.' {
			dots++
			empty = empty || domain[i-1] == '.'
		}
	}
	if domain[0] == '.' {
		dots++
	}
	switch {
	case dots == 0:
		return " is not a complete address, its domain " + quote(domain) + " has no dot"
	case empty:
		return " is not a complete address, its domain " + quote(domain) + " has an empty part"
	}
	return ""
}
