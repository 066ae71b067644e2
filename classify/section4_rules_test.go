package classify

import (
	"fmt"
	"strings"
	"testing"

	"github.com/eiamtriage/eiamtriage/internal/event"
)

// p3 returns a Person with names and an address.
func p3(given, family, email string) event.Person {
	return event.Person{GivenName: given, FamilyName: family, Email: email}
}

// TestClassifySection4 has a row for each clause that changed in NOTICE.md
// section 4: invisible format characters removed first; a name without a
// letter, an e-mail value that is not exactly one address, and a value with a
// control character count as missing (rule 1); an initial matches, for the
// different test alone, a token that begins with its letter. Each row asserts
// the class, the rule, the name verdict, and that the deciding reason (the
// one that says "(rule N)") names the decisive value, escaped, and says why.
func TestClassifySection4(t *testing.T) {
	anna := p3("Anna", "Muster", "anna.muster@be.ch")
	lukas := p3("Lukas", "Meier", "lukas.meier@be.ch")
	tests := []struct {
		name             string
		expected, actual event.Person
		problems         []string
		class            event.Class
		rule             int
		names            NameVerdict
		value            string // the decisive value as the deciding reason quotes it
		why              string // a part of the deciding reason
	}{
		// Invisible format characters are removed before anything else.
		{"Cf: zero width space inside a given name", lukas, p3("Lu\u200bkas", "Meier", "lukas.meier@be.ch"),
			nil, event.ClassNegligible, 7, NamesSame, `'Lu\u200bkas Meier'`, "the same name once the invisible character U+200B (zero width space) is removed"},
		{"Cf: zero width non-joiner", lukas, p3("Lukas", "Mei\u200cer", "lukas.meier@be.ch"),
			nil, event.ClassNegligible, 7, NamesSame, `'Lukas Mei\u200cer'`, "U+200C (zero width non-joiner)"},
		{"Cf: zero width joiner", lukas, p3("Lu\u200dkas", "Meier", "lukas.meier@be.ch"),
			nil, event.ClassNegligible, 7, NamesSame, `'Lu\u200dkas Meier'`, "U+200D (zero width joiner)"},
		{"Cf: word joiner", lukas, p3("Lukas", "Mei\u2060er", "lukas.meier@be.ch"),
			nil, event.ClassNegligible, 7, NamesSame, `'Lukas Mei\u2060er'`, "U+2060 (word joiner)"},
		{"Cf: byte order mark in front", lukas, p3("\ufeffLukas", "Meier", "lukas.meier@be.ch"),
			nil, event.ClassNegligible, 7, NamesSame, `'\ufeffLukas Meier'`, "U+FEFF (byte order mark)"},
		{"Cf: soft hyphen", lukas, p3("Lukas", "Mei\u00ader", "lukas.meier@be.ch"),
			nil, event.ClassNegligible, 7, NamesSame, `'Lukas Mei\u00ader'`, "U+00AD (soft hyphen)"},
		{"Cf: the rest of the category, a bidi override and a tag", lukas, p3("\u202eLukas", "Mei\U000e0041er", "lukas.meier@be.ch"),
			nil, event.ClassNegligible, 7, NamesSame, `'\u202eLukas Mei\U000e0041er'`, "the invisible characters U+202E and U+E0041 are removed"},
		{"Cf: removed before the transcriptions (Mu|eller is Müller)", p3("Anna", "Müller", "anna@be.ch"), p3("Anna", "Mu\u200beller", "anna@be.ch"),
			nil, event.ClassNegligible, 7, NamesSame, `'Anna Mu\u200beller'`, "the same name once"},
		{"Cf: would otherwise split a given name into two (a wrong person today)", lukas, p3("Lu\u200bkas", "Meier", "lukas.meier@gmail.com"),
			nil, event.ClassPrivateEmail, 4, NamesSame, `'lukas.meier@gmail.com'`, "free-mail provider 'gmail.com'"},
		{"Cf: inside an e-mail value", anna, p3("Anna", "Muster", "anna.muster@be\u200b.ch"),
			nil, event.ClassNegligible, 7, NamesSame, `'anna.muster@be\u200b.ch'`, "the same address once the invisible character U+200B (zero width space) is removed"},
		{"Cf: a name of invisible characters only", anna, p3("\u200b\u00ad", "Muster", "anna.muster@be.ch"),
			nil, event.ClassReview, 1, "", `'\u200b\u00ad'`, "the signed-in given name '\\u200b\\u00ad' holds no letters once the invisible characters U+200B (zero width space) and U+00AD (soft hyphen) are removed"},

		// A name without a letter is missing.
		{"no letter: dashes", anna, p3("---", "Muster", "anna.muster@be.ch"),
			nil, event.ClassReview, 1, "", `'---'`, "the signed-in given name '---' holds no letters"},
		{"no letter: digits", anna, p3("Anna", "123", "anna.muster@be.ch"),
			nil, event.ClassReview, 1, "", `'123'`, "the signed-in family name '123' holds no letters"},
		{"no letter: a full stop", p3(".", "Muster", "anna.muster@be.ch"), anna,
			nil, event.ClassReview, 1, "", `'.'`, "the entered given name '.' holds no letters"},
		{"no letter: digits and punctuation around an invisible character", anna, p3("1\u200b2 (3)", "Muster", "anna.muster@be.ch"),
			nil, event.ClassReview, 1, "", `'1\u200b2 (3)'`, "holds no letters"},
		{"no letter wins over a wrong person", anna, p3("Peter", "0", "peter@gmail.com"),
			nil, event.ClassReview, 1, "", `'0'`, "the signed-in family name '0' holds no letters"},
		{"a letter among digits is a name", anna, p3("Anna", "Muster 2", "anna.muster@be.ch"),
			nil, event.ClassNegligible, 7, NamesSame, `'anna.muster@be.ch'`, "the same on both sides"},

		// An e-mail value that is not exactly one address is missing.
		{"address: two '@'", anna, p3("Anna", "Muster", "a@b@c"),
			nil, event.ClassReview, 1, "", `'a@b@c'`, "the signed-in e-mail 'a@b@c' is not one address, it has 2 '@'"},
		{"address: two addresses", anna, p3("Anna", "Muster", "anna.muster@be.ch,anna@gmail.com"),
			nil, event.ClassReview, 1, "", `'anna.muster@be.ch,anna@gmail.com'`, "is not one address, it has 2 '@'"},
		{"address: nothing after the '@'", anna, p3("Anna", "Muster", "anna@"),
			nil, event.ClassReview, 1, "", `'anna@'`, "is not a complete address"},
		{"address: nothing before the '@'", anna, p3("Anna", "Muster", "@be.ch"),
			nil, event.ClassReview, 1, "", `'@be.ch'`, "is not a complete address, nothing stands before the '@'"},
		{"address: a domain without a dot", anna, p3("Anna", "Muster", "anna@localhost"),
			nil, event.ClassReview, 1, "", `'anna@localhost'`, "its domain 'localhost' has no dot"},
		{"address: white space inside", anna, p3("Anna", "Muster", "anna muster@be.ch"),
			nil, event.ClassReview, 1, "", `'anna muster@be.ch'`, "is not one address, it holds white space"},
		{"address: a display name", anna, p3("Anna", "Muster", "Anna Muster <anna.muster@be.ch>"),
			nil, event.ClassReview, 1, "", `'Anna Muster <anna.muster@be.ch>'`, "is not one address, it holds white space"},
		{"address: angle brackets", anna, p3("Anna", "Muster", "<anna.muster@be.ch>"),
			nil, event.ClassReview, 1, "", `'<anna.muster@be.ch>'`, "is not a plain address, it holds '<'"},
		{"address: an empty domain label", anna, p3("Anna", "Muster", "anna@be..ch"),
			nil, event.ClassReview, 1, "", `'anna@be..ch'`, "its domain 'be..ch' has an empty part"},
		{"address: a domain that starts with a dot", anna, p3("Anna", "Muster", "anna@.be.ch"),
			nil, event.ClassReview, 1, "", `'anna@.be.ch'`, "its domain '.be.ch' has an empty part"},
		{"address: the entered one is not one address either", p3("Anna", "Muster", "anna@@be.ch"), anna,
			nil, event.ClassReview, 1, "", `'anna@@be.ch'`, "the entered e-mail 'anna@@be.ch' is not one address, it has 2 '@'"},
		{"address: a trailing dot is still one address", anna, p3("Anna", "Muster", "anna.muster@be.ch."),
			nil, event.ClassNegligible, 5, NamesSame, `'anna.muster@be.ch.'`, "the same domain 'be.ch'"},

		// A value with a control character is missing.
		{"control: an escape sequence in a name", anna, p3("Anna\x1b[2J\x1b[31m", "Muster", "anna.muster@be.ch"),
			nil, event.ClassReview, 1, "", `'Anna\x1b[2J\x1b[31m'`, "holds the control character U+001B, which is no part of a readable name"},
		{"control: NUL", anna, p3("Anna", "Mus\x00ter", "anna.muster@be.ch"),
			nil, event.ClassReview, 1, "", `'Mus\x00ter'`, "the signed-in family name 'Mus\\x00ter' holds the control character U+0000"},
		{"control: DEL", p3("Anna\x7f", "Muster", "anna.muster@be.ch"), anna,
			nil, event.ClassReview, 1, "", `'Anna\x7f'`, "the entered given name 'Anna\\x7f' holds the control character U+007F"},
		{"control: C1, the single-byte CSI", anna, p3("Anna\u009b31m", "Muster", "anna.muster@be.ch"),
			nil, event.ClassReview, 1, "", `'Anna\u009b31m'`, "holds the control character U+009B"},
		{"control: C1 NEL at the end, which TrimSpace would drop", anna, p3("Anna", "Muster\u0085", "anna.muster@be.ch"),
			nil, event.ClassReview, 1, "", `'Muster\u0085'`, "holds the control character U+0085"},
		{"control: a tab", anna, p3("Anna\tMaria", "Muster", "anna.muster@be.ch"),
			nil, event.ClassReview, 1, "", `'Anna\tMaria'`, "holds the control character U+0009"},
		{"control: in an e-mail value", anna, p3("Anna", "Muster", "anna.muster@be.ch\r\nBcc: x@evil.example"),
			nil, event.ClassReview, 1, "", `'anna.muster@be.ch\r\nBcc: x@evil.example'`, "holds the control character U+000D, which is no part of a readable address"},
		{"control: wins over a wrong person", anna, p3("Peter\x1b]0;pwned\x07", "Keller", "peter@gmail.com"),
			nil, event.ClassReview, 1, "", `'Peter\x1b]0;pwned\a'`, "holds the control character U+001B"},
		{"control: in a problem the parser reported", anna, anna,
			[]string{"row \"Vorname\x1b[31m\" unreadable"}, event.ClassReview, 1, "", `row "Vorname\x1b[31m" unreadable`, "the notice could not be read completely"},

		// An initial matches, for the different test alone, a token that
		// begins with its letter; it never makes two names same.
		{"initial with a dot", p3("A.", "Muster", "anna.muster@be.ch"), anna,
			nil, event.ClassReview, 3, NamesPartial, `'A.' for 'Anna'`, "the given names match only by an initial"},
		{"initial without a dot", p3("A", "Muster", "anna.muster@be.ch"), anna,
			nil, event.ClassReview, 3, NamesPartial, `'A' for 'Anna'`, "the family name matches"},
		{"initial on the signed-in side", anna, p3("A.", "Muster", "anna.muster@gmail.com"),
			nil, event.ClassReview, 3, NamesPartial, `'A.' for 'Anna'`, "only a person can tell"},
		{"two initials against two given names", p3("A. B.", "Muster", "a.muster@be.ch"), p3("Anna Beatrice", "Muster", "a.muster@be.ch"),
			nil, event.ClassReview, 3, NamesPartial, `'A.' for 'Anna'`, "the given names match only by an initial"},
		{"initial of a double given name", p3("Hans-P.", "Muster", "hp.muster@be.ch"), p3("Hans-Peter", "Muster", "hp.muster@be.ch"),
			nil, event.ClassReview, 3, NamesPartial, `'Hans'`, "the given names share 'Hans', but other given names differ"},
		{"initial after folding", p3("Ä.", "Muster", "anna.muster@be.ch"), anna,
			nil, event.ClassReview, 3, NamesPartial, `'Ä.' for 'Anna'`, "only by an initial"},
		{"initial after folding, other script", p3("Ж.", "Иванова", "z.ivanova@be.ch"), p3("Жанна", "Иванова", "z.ivanova@be.ch"),
			nil, event.ClassReview, 3, NamesPartial, `'Ж.' for 'Жанна'`, "only by an initial"},
		{"initial and another family name", p3("A.", "Muster", "anna.muster@be.ch"), p3("Anna", "Keller", "anna.keller@be.ch"),
			nil, event.ClassReview, 3, NamesPartial, `'Muster' vs 'Keller'`, "the family name 'Muster' vs 'Keller' differs"},
		{"initial on the family name side", anna, p3("Anna", "M.", "anna.muster@be.ch"),
			nil, event.ClassReview, 3, NamesPartial, `'M.' may be an initial of 'Muster'`, "the given name matches ('Anna')"},
		{"initials on both parts", p3("A.", "M.", "anna.muster@be.ch"), anna,
			nil, event.ClassReview, 3, NamesPartial, `'M.' may be an initial of 'Muster'`, "only by an initial ('A.' for 'Anna')"},
		{"initial against the same initial", p3("A.", "Muster", "anna.muster@be.ch"), p3("A", "Muster", "anna.muster@be.ch"),
			nil, event.ClassNegligible, 7, NamesSame, `'A. Muster' vs 'A Muster'`, "the same name, written differently"},
		{"initial against another initial", p3("A.", "Muster", "anna.muster@be.ch"), p3("B.", "Muster", "anna.muster@be.ch"),
			nil, event.ClassWrongPerson, 2, NamesDifferent, `'A.' vs 'B.'`, "no given name in common, a different person"},
		{"initial of another letter", p3("J.", "Muster", "j.muster@be.ch"), p3("Peter", "Muster", "j.muster@be.ch"),
			nil, event.ClassWrongPerson, 2, NamesDifferent, `'J.' vs 'Peter'`, "no given name in common"},
		{"both sides only initials, equal", p3("A.", "M.", "am@be.ch"), p3("A.", "M.", "am@be.ch"),
			nil, event.ClassNegligible, 7, NamesSame, `'A. M.'`, "is the same on both sides"},
		{"both sides only initials, the given one differs", p3("A.", "M.", "am@be.ch"), p3("B.", "M.", "am@be.ch"),
			nil, event.ClassWrongPerson, 2, NamesDifferent, `'A.' vs 'B.'`, "a different person"},
		{"both sides only initials, the family one differs", p3("A.", "M.", "am@be.ch"), p3("A.", "K.", "am@be.ch"),
			nil, event.ClassReview, 3, NamesPartial, `'M.' vs 'K.'`, "the given name matches ('A.')"},
		{"initial and a middle name", p3("Anna B.", "Muster", "anna.muster@be.ch"), anna,
			nil, event.ClassNegligible, 7, NamesSame, `'B.'`, "the entered name has the additional given name 'B.'"},
		{"initial with given and family name swapped", p3("A.", "Muster", "anna.muster@be.ch"), p3("Muster", "Anna", "anna.muster@be.ch"),
			nil, event.ClassReview, 3, NamesPartial, `'A.' for 'Anna'`, "given and family name look swapped"},
		{"family initial with given and family name swapped", p3("Anna", "M.", "anna.muster@be.ch"), p3("Muster", "Anna", "anna.muster@be.ch"),
			nil, event.ClassReview, 3, NamesPartial, `'M.' for 'Muster'`, "look swapped"},
		{"swapped, other middle names", p3("Anna Maria", "Muster", "anna.muster@be.ch"), p3("Muster", "Anna Lena", "anna.muster@be.ch"),
			nil, event.ClassReview, 3, NamesPartial, `'Anna'`, "the entered given name matches the signed-in family name ('Anna')"},
		{"swapped look-alike that is another person", p3("Peter", "Anders", "p.anders@be.ch"), p3("Anna", "Peters", "a.peters@be.ch"),
			nil, event.ClassWrongPerson, 2, NamesDifferent, `'Peter' vs 'Anna'`, "no given name in common"},
		{"an initial never makes the names same with an equal address", p3("A.", "Muster", "anna.muster@be.ch"), anna,
			nil, event.ClassReview, 3, NamesPartial, `'A. Muster' vs 'Anna Muster'`, "only by an initial"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &event.Notice{Language: "de", Expected: tt.expected, Actual: tt.actual, Problems: tt.problems}
			v := New(nil).Classify(n)
			if v.Class != tt.class || v.Rule != tt.rule || v.Names != tt.names {
				t.Errorf("Classify(%+q / %+q) = class %q, rule %d, names %q; want %q, %d, %q\nreasons: %+q",
					tt.expected, tt.actual, v.Class, v.Rule, v.Names, tt.class, tt.rule, tt.names, v.Reasons)
			}
			// Rules 1 to 3 are decided by the reason that quotes the value;
			// for rules 4 to 7 the name verdict comes first, untagged, and
			// the address decides.
			deciding := ""
			for _, r := range v.Reasons {
				if strings.Contains(r, tt.value) && (tt.rule > 3 || strings.Contains(r, fmt.Sprintf("(rule %d)", tt.rule))) {
					deciding = r
					break
				}
			}
			if deciding == "" {
				t.Errorf("no reason (tagged rule %d when rule 1 to 3 decided) quotes %s: %+q", tt.rule, tt.value, v.Reasons)
			} else if !strings.Contains(deciding, tt.why) {
				t.Errorf("deciding reason %+q lacks %q", deciding, tt.why)
			}
			checkReasons(t, v.Reasons, nil)
		})
	}
}

// TestReasonsPrintable puts every control character, the invisible format
// characters, separators of lines and bytes that are not UTF-8 into each of
// the six compared values in turn, on notices that reach every rule, and
// checks that no raw one reaches a reason: each is escaped.
func TestReasonsPrintable(t *testing.T) {
	var hostile []string
	for c := rune(0); c < 0x20; c++ {
		hostile = append(hostile, string(c))
	}
	for c := rune(0x7f); c <= 0x9f; c++ {
		hostile = append(hostile, string(c))
	}
	hostile = append(hostile, "\u200b", "\u00ad", "\ufeff", "\u202e", "\u2028", "\u2029", "\xff", "\xc2", "\xe2\x80")
	bases := []*event.Notice{
		newNotice(entered), // rule 7
		newNotice(p3("Peter", "Keller", "peter@be.ch")),         // rule 2
		newNotice(p3("Anna", "Keller", "anna@gmail.com")),       // rule 3
		newNotice(p3("Anna", "Muster", "anna@gmail.com")),       // rule 4
		newNotice(p3("Anna", "Muster", "anna@gef.be.ch")),       // rule 5
		newNotice(p3("Anna", "Muster", "anna@zh.ch")),           // rule 6
		newNotice(p3("A.", "Muster", "anna.muster@be.ch")),      // rule 3, an initial
		newNotice(p3("Muster", "A.", "anna.muster@be.ch")),      // rule 3, swapped
		newNotice(p3("Anna", "M.", "anna.muster@be.ch")),        // rule 3, a family initial
		newNotice(p3("Anna Maria", "Muster", "anna@gef.be.ch")), // rule 5, a middle name
	}
	set := []func(p *event.Person, v string){
		func(p *event.Person, v string) { p.GivenName = p.GivenName[:1] + v + p.GivenName[1:] },
		func(p *event.Person, v string) { p.FamilyName += v },
		func(p *event.Person, v string) { p.Email = v + p.Email },
	}
	c := New(nil)
	for _, h := range hostile {
		for bi, base := range bases {
			for side := range 2 {
				for fi, f := range set {
					n := *base
					pp := &n.Expected
					if side == 1 {
						pp = &n.Actual
					}
					f(pp, h)
					v := c.Classify(&n)
					t.Run(fmt.Sprintf("%+q/base%d/side%d/field%d", h, bi, side, fi), func(t *testing.T) {
						checkPrintable(t, v.Reasons)
					})
				}
			}
		}
	}
	t.Run("CompareNames", func(t *testing.T) {
		for _, h := range hostile {
			_, why := CompareNames(person("Lu"+h+"kas", "Meier"), person("Peter", "Mei"+h+"er"))
			checkPrintable(t, []string{why})
		}
	})
}

func TestEscape(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "Anna Muster", "Anna Muster"},
		{"letters and NBSP stay", "Jürg\u00a0Müller Ελένη", "Jürg\u00a0Müller Ελένη"},
		{"escape sequence", "A\x1b[31mB", `A\x1b[31mB`},
		{"NUL, tab, newline", "a\x00b\tc\nd", `a\x00b\tc\nd`},
		{"DEL", "a\x7f", `a\x7f`},
		{"C1", "a\u0085\u009b", `a\u0085\u009b`},
		{"format characters", "Lu\u200bkas\u00ad\ufeff", `Lu\u200bkas\u00ad\ufeff`},
		{"line separator", "a\u2028b", `a\u2028b`},
		{"backslash, so an escape is unambiguous", `a\x1b`, `a\\x1b`},
		{"bytes that are not UTF-8", "a\xffb\xc3", `a\xffb\xc3`},
		{"quotes stay", `D'Amico "Toni"`, `D'Amico "Toni"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := escape(tt.in); got != tt.want {
				t.Errorf("escape(%+q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestNoCopyWithoutFormat checks that the Cf removal and the escaping cost no
// allocation for a value that holds nothing to remove or escape.
func TestNoCopyWithoutFormat(t *testing.T) {
	for _, s := range []string{"Anna Muster", "Jürg Müller-Brändli", "anna.muster@be.ch", "Ελένη"} {
		if n := testing.AllocsPerRun(100, func() { _ = stripFormat(s) }); n != 0 {
			t.Errorf("stripFormat(%q) allocates %.0f times, want 0", s, n)
		}
		if n := testing.AllocsPerRun(100, func() { _ = escape(s) }); n != 0 {
			t.Errorf("escape(%q) allocates %.0f times, want 0", s, n)
		}
		if got := stripFormat(s); got != s {
			t.Errorf("stripFormat(%q) = %q", s, got)
		}
	}
	if got := stripFormat("\u200bLu\u00adkas\ufeff\xff"); got != "Lukas\xff" {
		t.Errorf("stripFormat kept or lost too much: %+q", got)
	}
}
