package classify

import (
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
	// typo apart, any given-name token of the other.
	NamesDifferent NameVerdict = "different"
)

// CompareNames returns the name verdict between the person entered in the
// portal (expected) and the signed-in person (actual), and a sentence that
// says why, quoting the original values. The e-mail fields are ignored.
//
// A name that holds no letters on either side (empty, or separators only)
// cannot be judged and gives NamesPartial; Classify never gets that far, as
// rule 1 catches such a notice first.
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
	if len(e.g) == 0 || len(e.f) == 0 || len(a.g) == 0 || len(a.f) == 0 {
		return NamesPartial, vs + "a name part holds no letters, so the names cannot be compared"
	}

	// Same: equal after normalisation.
	if slices.Equal(e.g, a.g) && slices.Equal(e.f, a.f) {
		if e.given == a.given && e.family == a.family {
			return NamesSame, "name " + quote(e.full()) + " is the same on both sides"
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

	// Different: no given-name token in common.
	i, ok := common(e.g, a.g)
	if !ok {
		return NamesDifferent, "given name " + quote(e.given) + " vs " + quote(a.given) +
			": no given name in common, a different person"
	}

	// Partial: everything else.
	shared := quote(original(e.given, e.g, i))
	if within(e.f, a.f) {
		return NamesPartial, vs + "the family name matches and the given names share " + shared +
			", but other given names differ; only a person can tell whether this is the same person"
	}
	return NamesPartial, vs + "the given name matches (" + shared + ") but the family name " +
		quote(e.family) + " vs " + quote(a.family) +
		" differs; a change of name or another person, nobody can tell from the mail"
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

// common returns the index in x of the first token that matches a token of
// y, equal or one typo apart.
func common(x, y []string) (int, bool) {
	for i, t := range x {
		for _, u := range y {
			if t == u || typo(t, u) {
				return i, true
			}
		}
	}
	return 0, false
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

// quote puts a value in single quotes for a reason sentence.
func quote(s string) string {
	return "'" + s + "'"
}
