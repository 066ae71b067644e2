package classify

import (
	"fmt"
	"slices"
	"strings"

	"github.com/eiamtriage/eiamtriage/internal/event"
)

// NameVerdict says how the entered and the signed-in names relate.
type NameVerdict string

// The name verdicts of NOTICE.md section 4.
const (
	// NamesSame: equal after normalisation, or plus or minus middle names or
	// one part of a double family name, or given and family name swapped,
	// or one token differs by a typo.
	NamesSame NameVerdict = "same"
	// NamesPartial: neither same nor different, typically the same given
	// name with another family name.
	NamesPartial NameVerdict = "partial"
	// NamesDifferent: no given-name token of one side matches, equal or one
	// typo apart, any given-name token of the other; for this test alone an
	// initial matches a token that begins with its letter.
	NamesDifferent NameVerdict = "different"
)

// CompareNames returns the name verdict between the person entered in the
// portal (expected) and the signed-in person (actual), and a sentence that
// says why, quoting the original values. The e-mail fields are ignored.
//
// An initial (one letter, with or without its full stop) never makes two
// names the same, but for the different test alone it matches a token that
// begins with its letter: "A. Muster" against "Anna Muster" is NamesPartial.
// When given and family name look swapped (the given names of each side
// match the family names of the other), the different test compares them
// swapped, so that a swap that the same test cannot accept is never
// different on its own.
//
// A name part that holds no letter on either side (empty, separators or
// digits only) cannot be judged and gives NamesPartial; Classify never gets
// that far, as rule 1 catches such a notice first. Values are quoted in the
// reason with their control and invisible characters escaped.
func CompareNames(expected, actual event.Person) (NameVerdict, string) {
	var tb tokenBuf
	p := tb.pair(expected, actual)
	return p.compare()
}

// side is one person's name: the trimmed original values and their tokens.
type side struct {
	given, family string
	g, f          []string
}

// full returns the whole name as written, given name first.
func (s *side) full() string {
	switch {
	case s.given == "":
		return s.family
	case s.family == "":
		return s.given
	}
	return s.given + " " + s.family
}

// namePair holds the two names being compared.
type namePair struct {
	e, a side // entered (expected) and signed-in (actual)
}

// tokenBuf gives the token slices of a namePair room without allocating in
// the common case of short names.
type tokenBuf struct {
	eg, ef, ag, af [6]string
}

// pair folds both names into tokens.
func (tb *tokenBuf) pair(expected, actual event.Person) namePair {
	return namePair{
		e: makeSide(expected, tb.eg[:0], tb.ef[:0]),
		a: makeSide(actual, tb.ag[:0], tb.af[:0]),
	}
}

// makeSide folds one person's name, appending the tokens to gb and fb.
func makeSide(p event.Person, gb, fb []string) side {
	s := side{given: strings.TrimSpace(p.GivenName), family: strings.TrimSpace(p.FamilyName)}
	s.g = appendTokens(gb, fold(s.given))
	s.f = appendTokens(fb, fold(s.family))
	return s
}

// compare decides the name verdict, checking the clauses of section 4 in
// their order.
func (p *namePair) compare() (NameVerdict, string) {
	e, a := &p.e, &p.a
	vs := "name " + quote(e.full()) + " vs " + quote(a.full()) + ": "
	if !e.letters() || !a.letters() {
		return NamesPartial, vs + "a name part holds no letters, so the names cannot be compared"
	}

	// Same: equal after normalisation.
	if slices.Equal(e.g, a.g) && slices.Equal(e.f, a.f) {
		if e.given == a.given && e.family == a.family {
			return NamesSame, "name " + quote(e.full()) + " is the same on both sides"
		}
		if rs := formatRunes(nil, e.given, e.family, a.given, a.family); len(rs) > 0 {
			return NamesSame, vs + "the same name once " + describeFormat(rs)
		}
		return NamesSame, vs + "the same name, written differently"
	}
	// Same: plus or minus middle names, or one part of a double family name.
	if within(e.g, a.g) && within(e.f, a.f) {
		return NamesSame, vs + "the same person, " + p.tolerance()
	}
	// Same: given and family name swapped, with the same tolerances.
	if within(e.g, a.f) && within(e.f, a.g) {
		how := "the same person, given and family name swapped"
		if !slices.Equal(e.g, a.f) || !slices.Equal(e.f, a.g) {
			how += ", with a middle name or a part of a double name more on one side"
		}
		return NamesSame, vs + how
	}
	// Same: one token differs by a typo, all else equal (also when swapped).
	if x, y, ok := p.typo(); ok {
		return NamesSame, vs + "the same person, " + quote(x) + " vs " + quote(y) + " is a typo"
	}

	// Different: no given-name token in common, an initial matching a token
	// that begins with its letter; given and family name compared swapped
	// when they look swapped.
	m := common(e.g, a.g)
	if m.how == noMatch {
		gf, fg := common(e.g, a.f), common(e.f, a.g)
		if gf.how == noMatch || fg.how == noMatch {
			return NamesDifferent, "given name " + quote(e.given) + " vs " + quote(a.given) +
				": no given name in common, a different person"
		}
		return NamesPartial, vs + "given and family name look swapped: the entered given name matches the " +
			"signed-in family name (" + pair(gf, e.given, e.g, a.family, a.f) + ") and the entered family name " +
			"the signed-in given name (" + pair(fg, e.family, e.f, a.given, a.g) + "), but the names do not " +
			"match as a whole; only a person can tell whether this is the same person"
	}

	// Partial: everything else.
	if m.how == initialMatch {
		why := vs + "the given names match only by an initial (" + pair(m, e.given, e.g, a.given, a.g) +
			"), which cannot tell one person from another"
		if within(e.f, a.f) {
			return NamesPartial, why + "; the family name matches; only a person can tell whether this is the same person"
		}
		return NamesPartial, why + ", and the family name " + quote(e.family) + " vs " + quote(a.family) +
			" differs" + p.familyInitial() + "; only a person can tell whether this is the same person"
	}
	shared := quote(original(e.given, e.g, m.i))
	if within(e.f, a.f) {
		return NamesPartial, vs + "the family name matches and the given names share " + shared +
			", but other given names differ; only a person can tell whether this is the same person"
	}
	if note := p.familyInitial(); note != "" {
		return NamesPartial, vs + "the given name matches (" + shared + ") but the family name " +
			quote(e.family) + " vs " + quote(a.family) + " differs" + note +
			"; only a person can tell whether this is the same person"
	}
	return NamesPartial, vs + "the given name matches (" + shared + ") but the family name " +
		quote(e.family) + " vs " + quote(a.family) +
		" differs; a change of name or another person, nobody can tell from the mail"
}

// letters reports whether both name parts hold a letter.
func (s *side) letters() bool {
	return len(s.g) > 0 && len(s.f) > 0 && hasLetter(s.given) && hasLetter(s.family)
}

// pair quotes the tokens x[m.i] and y[m.j] of a match as the notice wrote
// them (xo and yo): "'Anna'" when equal, "'Christian' and 'Christina', one
// typo apart", "'A.' for 'Anna'" for an initial (the initial first).
func pair(m tokenMatch, xo string, x []string, yo string, y []string) string {
	tx, ty := quote(original(xo, x, m.i)), quote(original(yo, y, m.j))
	switch m.how {
	case equalMatch:
		return tx
	case typoMatch:
		return tx + " and " + ty + ", one typo apart"
	}
	if !isInitial(x[m.i]) {
		tx, ty = ty, tx
	}
	return tx + " for " + ty
}

// familyInitial returns ", which may be an initial of ..." when the family
// names differ only in that one side writes an initial of the other's.
func (p *namePair) familyInitial() string {
	e, a := &p.e, &p.a
	m := common(e.f, a.f)
	if m.how != initialMatch {
		return ""
	}
	x, y := quote(original(e.family, e.f, m.i)), quote(original(a.family, a.f, m.j))
	if !isInitial(e.f[m.i]) {
		x, y = y, x
	}
	return " (" + x + " may be an initial of " + y + ")"
}

// tolerance describes how two names that are within each other differ: more
// given names on one side, one part of a double family name.
func (p *namePair) tolerance() string {
	e, a := &p.e, &p.a
	var parts []string
	if !slices.Equal(e.g, a.g) {
		switch {
		case subset(e.g, a.g) && !subset(a.g, e.g):
			parts = append(parts, "the signed-in name has the additional "+extra(a.given, a.g, e.g))
		case subset(a.g, e.g) && !subset(e.g, a.g):
			parts = append(parts, "the entered name has the additional "+extra(e.given, e.g, a.g))
		default:
			parts = append(parts, "the given names are in another order")
		}
	}
	if !slices.Equal(e.f, a.f) {
		switch {
		case subset(e.f, a.f) && !subset(a.f, e.f):
			parts = append(parts, "the entered family name "+quote(e.family)+" is one part of "+quote(a.family))
		case subset(a.f, e.f) && !subset(e.f, a.f):
			parts = append(parts, "the signed-in family name "+quote(a.family)+" is one part of "+quote(e.family))
		default:
			parts = append(parts, "the family name parts are in another order")
		}
	}
	return strings.Join(parts, " and ")
}

// typo looks for exactly one token that differs by a typo with everything
// else equal, first given to given and family to family, then swapped. It
// returns the two tokens as the notice wrote them.
func (p *namePair) typo() (x, y string, ok bool) {
	e, a := &p.e, &p.a
	try := func(x1, y1, x2, y2 []string, ox1, oy1, ox2, oy2 string) (string, string, bool) {
		if len(x1) != len(y1) || len(x2) != len(y2) {
			return "", "", false
		}
		at, diffs := -1, 0
		src := 0
		for i := range x1 {
			if x1[i] != y1[i] {
				diffs, at, src = diffs+1, i, 1
			}
		}
		for i := range x2 {
			if x2[i] != y2[i] {
				diffs, at, src = diffs+1, i, 2
			}
		}
		if diffs != 1 {
			return "", "", false
		}
		if src == 1 && typo(x1[at], y1[at]) {
			return original(ox1, x1, at), original(oy1, y1, at), true
		}
		if src == 2 && typo(x2[at], y2[at]) {
			return original(ox2, x2, at), original(oy2, y2, at), true
		}
		return "", "", false
	}
	if x, y, ok := try(e.g, a.g, e.f, a.f, e.given, a.given, e.family, a.family); ok {
		return x, y, true
	}
	return try(e.g, a.f, e.f, a.g, e.given, a.family, e.family, a.given)
}

// How two tokens match in the different test.
const (
	noMatch = iota
	equalMatch
	typoMatch
	initialMatch // one token is an initial, the other begins with its letter
)

// tokenMatch is a pair of matching tokens: x[i] and y[j], and how they match.
type tokenMatch struct {
	i, j, how int
}

// common returns the first pair of tokens of x and y that match, equal or one
// typo apart, or failing that the first where one token is an initial and
// the other begins with its letter.
func common(x, y []string) tokenMatch {
	initial := tokenMatch{how: noMatch}
	for i, t := range x {
		for j, u := range y {
			switch {
			case t == u:
				return tokenMatch{i, j, equalMatch}
			case typo(t, u):
				return tokenMatch{i, j, typoMatch}
			case initial.how == noMatch && (isInitial(t) && strings.HasPrefix(u, t) || isInitial(u) && strings.HasPrefix(t, u)):
				initial = tokenMatch{i, j, initialMatch}
			}
		}
	}
	return initial
}

// within reports whether one token list's set is a subset of the other's.
func within(x, y []string) bool {
	return subset(x, y) || subset(y, x)
}

// subset reports whether every token of x occurs in y.
func subset(x, y []string) bool {
	for _, t := range x {
		found := false
		for _, u := range y {
			if t == u {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// extra names, as orig wrote them, the given names of toks that other lacks.
func extra(orig string, toks, other []string) string {
	var q []string
	for i := range toks {
		if !subset(toks[i:i+1], other) {
			q = append(q, quote(original(orig, toks, i)))
		}
	}
	if len(q) == 1 {
		return "given name " + q[0]
	}
	return "given names " + strings.Join(q, ", ")
}

// original returns token i of toks as orig wrote it, or the folded token
// when the original does not split the same way.
func original(orig string, toks []string, i int) string {
	if ws := words(orig, len(toks)); ws != nil {
		return ws[i]
	}
	return toks[i]
}

// quote puts a value in single quotes for a reason sentence, its control and
// invisible characters escaped (escape).
func quote(s string) string {
	return "'" + escape(s) + "'"
}

// describeFormat names invisible format characters for a reason, with its
// verb: "the invisible character U+200B (zero width space) is removed".
func describeFormat(rs []rune) string {
	var b strings.Builder
	b.WriteString("the invisible character")
	if len(rs) > 1 {
		b.WriteString("s")
	}
	for i, r := range rs {
		switch {
		case i == 0:
			b.WriteString(" ")
		case i == len(rs)-1:
			b.WriteString(" and ")
		default:
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "U+%04X", r)
		if n := formatNames[r]; n != "" {
			b.WriteString(" (" + n + ")")
		}
	}
	if len(rs) > 1 {
		b.WriteString(" are removed")
	} else {
		b.WriteString(" is removed")
	}
	return b.String()
}

// formatNames names the invisible format characters that editors and copy
// and paste leave in names most often.
var formatNames = map[rune]string{
	'\u00ad': "soft hyphen",
	'\u200b': "zero width space",
	'\u200c': "zero width non-joiner",
	'\u200d': "zero width joiner",
	'\u200e': "left-to-right mark",
	'\u200f': "right-to-left mark",
	'\u2060': "word joiner",
	'\ufeff': "byte order mark",
}
