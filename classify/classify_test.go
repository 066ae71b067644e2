package classify

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/eiamtriage/eiamtriage/internal/event"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"umlaut", "Müller", "muller"},
		{"transcription ue", "Mueller", "muller"},
		{"plain", "Muller", "muller"},
		{"umlaut decomposed", "Mu\u0308ller", "muller"},
		{"transcription everywhere", "Juerg", "jurg"},
		{"transcription ae", "Aebischer", "abischer"},
		{"a umlaut", "Äbischer", "abischer"},
		{"ligature ae", "Æbischer", "abischer"},
		{"transcription oe", "Goetschi", "gotschi"},
		{"o umlaut", "Götschi", "gotschi"},
		{"sharp s", "Strauß", "strauss"},
		{"capital sharp s", "STRAUẞ", "strauss"},
		{"double s", "Strauss", "strauss"},
		{"case fold", "ANNA MUSTER", "anna muster"},
		{"NFKC fullwidth", "ＭＵＬＬＥＲ", "muller"},
		{"NFKC ligature", "ﬁscher", "fischer"},
		{"diacritics", "Hélène Gérard", "helene gerard"},
		{"cedilla", "Çelik", "celik"},
		{"stroke", "Øystein Łukasz", "oystein lukasz"},
		{"hyphen", "Keller-Steiner", "keller steiner"},
		{"en dash", "Keller–Steiner", "keller steiner"},
		{"fullwidth hyphen", "Keller－Steiner", "keller steiner"},
		{"apostrophe", "D'Amico", "d amico"},
		{"typographic apostrophe", "D’Amico", "d amico"},
		{"modifier apostrophe", "Dʼ Amico", "d amico"},
		{"full stop", "J.-P.", "j p"},
		{"NBSP", "Anna\u00a0Maria", "anna maria"},
		{"narrow NBSP", "Anna\u202fMaria", "anna maria"},
		{"white space collapsed", " \tAnna  \n Maria  ", "anna maria"},
		{"soft hyphen removed", "Mül\u00adler", "muller"},
		{"zero-width space removed", "Mül\u200bler", "muller"},
		{"format characters removed first", "Lu\u200bkas", "lukas"},
		{"format character is no word break", "Anna\u2060Maria", "annamaria"},
		{"byte order mark and bidi override", "\ufeff\u202eAnna\u200e", "anna"},
		{"format characters removed before the transcriptions", "Mu\u200deller", "muller"},
		{"format character between letter and its mark", "Mu\u200b\u0308ller", "muller"},
		{"a separator before e ends the transcription", "Mu-eller", "mu eller"},
		{"separators only", " - . ' ", ""},
		{"empty", "", ""},
		{"other punctuation kept", "Anna (Hanni)", "anna (hanni)"},
		{"other script", "Ελένη", "ελενη"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Normalize(tt.in)
			if got != tt.want {
				t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if again := Normalize(got); again != got {
				t.Errorf("Normalize(%q) = %q, not stable: folding again gives %q", tt.in, got, again)
			}
		})
	}
}

func TestTokens(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"one", "Müller", []string{"muller"}},
		{"double name", "Keller-Steiner", []string{"keller", "steiner"}},
		{"middle names", " Anna  Maria\u00a0Luisa ", []string{"anna", "maria", "luisa"}},
		{"apostrophe", "O’Brien", []string{"o", "brien"}},
		{"nothing", " - ", nil},
		{"format characters inside", "Lu\u200bkas Mei\u00ader", []string{"lukas", "meier"}},
		{"format characters only", "\u200b\ufeff", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Tokens(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("Tokens(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestTypo(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"substitution, 5 letters", "Meier", "Meyer", true},
		{"substitution, 4 letters", "Egli", "Egly", false},
		{"insertion, 4 to 5 letters", "Anna", "Annna", false},
		{"insertion", "Schmid", "Schmidt", true},
		{"deletion down to 5 letters", "Muster", "Muste", true},
		{"transposition", "Muster", "Mustre", true},
		{"transposition at the start", "Muster", "uMster", true},
		{"transposition, 4 letters", "Anna", "Anan", false},
		{"two substitutions", "Muster", "Mastre", false},
		{"two transpositions", "Christian", "hCristina", false},
		{"substitution and insertion", "Muster", "Mustrre", false},
		{"equal", "Muster", "Muster", false},
		{"equal after folding", "Müller", "Mueller", false},
		{"measured on the folded form", "Müller", "Mueler", true},
		{"non-ASCII letters", "Ελένη", "Ελέμη", true},
		{"several tokens", "Anna Muster", "Anna Mustre", false},
		{"empty", "", "Muster", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Typo(tt.a, tt.b); got != tt.want {
				t.Errorf("Typo(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
			if got := Typo(tt.b, tt.a); got != tt.want {
				t.Errorf("Typo(%q, %q) = %v, want %v (not symmetric)", tt.b, tt.a, got, tt.want)
			}
		})
	}
}

// person returns a Person with the given names and no address.
func person(given, family string) event.Person {
	return event.Person{GivenName: given, FamilyName: family}
}

func TestCompareNames(t *testing.T) {
	tests := []struct {
		name     string
		expected event.Person
		actual   event.Person
		want     NameVerdict
		reason   string // a part of the reason
	}{
		{"equal", person("Anna", "Muster"), person("Anna", "Muster"), NamesSame,
			"name 'Anna Muster' is the same on both sides"},
		{"equal after normalisation", person("Jürg", "Müller"), person("Juerg", "MUELLER"), NamesSame,
			"name 'Jürg Müller' vs 'Juerg MUELLER': the same name, written differently"},
		{"extra middle name signed in", person("Anna", "Muster"), person("Anna Maria", "Muster"), NamesSame,
			"the signed-in name has the additional given name 'Maria'"},
		{"missing middle name signed in", person("Anna Maria Luisa", "Muster"), person("Anna", "Muster"), NamesSame,
			"the entered name has the additional given names 'Maria', 'Luisa'"},
		{"double family name signed in", person("Anna", "Keller"), person("Anna", "Keller-Steiner"), NamesSame,
			"the entered family name 'Keller' is one part of 'Keller-Steiner'"},
		{"double family name entered", person("Anna", "Keller-Steiner"), person("Anna", "Steiner"), NamesSame,
			"the signed-in family name 'Steiner' is one part of 'Keller-Steiner'"},
		{"middle name and double name at once", person("Anna Maria", "Keller-Steiner"), person("Anna", "Keller"), NamesSame,
			"additional given name 'Maria' and the signed-in family name 'Keller' is one part of 'Keller-Steiner'"},
		{"swapped", person("Anna", "Muster"), person("Muster", "Anna"), NamesSame,
			"given and family name swapped"},
		{"swapped with a middle name", person("Anna Maria", "Muster"), person("Muster", "Anna"), NamesSame,
			"swapped, with a middle name or a part of a double name more on one side"},
		{"typo in the family name", person("Anna", "Muster"), person("Anna", "Mustre"), NamesSame,
			"the same person, 'Muster' vs 'Mustre' is a typo"},
		{"typo in the given name", person("Christian", "Muster"), person("Christina", "Muster"), NamesSame,
			"'Christian' vs 'Christina' is a typo"},
		{"typo in a double name", person("Anna", "Keller-Steiner"), person("Anna", "Keller-Stiener"), NamesSame,
			"'Steiner' vs 'Stiener' is a typo"},
		{"typo when swapped", person("Anna", "Muster"), person("Mustre", "Anna"), NamesSame,
			"'Muster' vs 'Mustre' is a typo"},
		{"typo of 4 letters is not one", person("Anna", "Egli"), person("Anna", "Egly"), NamesPartial,
			"the given name matches ('Anna') but the family name 'Egli' vs 'Egly' differs"},
		{"two typos", person("Christian", "Muster"), person("Christina", "Mustre"), NamesPartial,
			"the given name matches ('Christian')"},
		{"different", person("Anna", "Muster"), person("Peter", "Muster"), NamesDifferent,
			"given name 'Anna' vs 'Peter': no given name in common, a different person"},
		{"different whatever the family name", person("Anna", "Muster"), person("Peter", "Keller"), NamesDifferent,
			"no given name in common"},
		{"different: 4-letter given names one letter apart", person("Anna", "Muster"), person("Anja", "Muster"), NamesDifferent,
			"given name 'Anna' vs 'Anja'"},
		{"not different: a middle name in common", person("Anna Maria", "Muster"), person("Maria", "Keller"), NamesPartial,
			"the given name matches ('Maria')"},
		{"not different: given names one typo apart", person("Christian", "Muster"), person("Christina", "Keller"), NamesPartial,
			"the given name matches ('Christian')"},
		{"partial: same given, other family", person("Anna", "Muster"), person("Anna", "Keller"), NamesPartial,
			"name 'Anna Muster' vs 'Anna Keller': the given name matches ('Anna') but the family name 'Muster' vs 'Keller' differs"},
		{"partial: same family, other middle names", person("Anna Maria", "Muster"), person("Anna Lena", "Muster"), NamesPartial,
			"the family name matches and the given names share 'Anna', but other given names differ"},
		{"nothing to compare", person("Anna", "-"), person("Anna", "Muster"), NamesPartial,
			"holds no letters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := CompareNames(tt.expected, tt.actual)
			if got != tt.want {
				t.Errorf("CompareNames(%v, %v) = %q, want %q (reason %q)", tt.expected, tt.actual, got, tt.want, reason)
			}
			if !strings.Contains(reason, tt.reason) {
				t.Errorf("CompareNames(%v, %v) reason = %q, want it to contain %q", tt.expected, tt.actual, reason, tt.reason)
			}
		})
	}
}

func TestSameDomain(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"equal", "be.ch", "be.ch", true},
		{"subdomain", "be.ch", "gef.be.ch", true},
		{"parent", "gef.be.ch", "be.ch", true},
		{"deeper subdomain", "be.ch", "a.gef.be.ch", true},
		{"letter case", "BE.ch", "gef.Be.CH", true},
		{"addresses", "anna.muster@be.ch", "Anna@GEF.be.ch", true},
		{"trailing dot", "be.ch.", "gef.be.ch", true},
		{"suffix that is no subdomain", "xbe.ch", "be.ch", false},
		{"siblings", "gef.be.ch", "dis.be.ch", false},
		{"other canton", "be.ch", "zh.ch", false},
		{"top-level domain is no parent", "ch", "be.ch", false},
		{"empty", "", "be.ch", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SameDomain(tt.a, tt.b); got != tt.want {
				t.Errorf("SameDomain(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestDefaultFreeMail(t *testing.T) {
	// Every domain NOTICE.md section 4 names.
	spec := []string{"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.ch",
		"hotmail.fr", "hotmail.it", "live.com", "msn.com", "yahoo.com", "yahoo.fr", "yahoo.de", "yahoo.it",
		"icloud.com", "me.com", "mac.com", "aol.com", "gmx.ch", "gmx.net", "gmx.de", "gmx.at", "web.de",
		"t-online.de", "protonmail.com", "protonmail.ch", "proton.me", "libero.it", "orange.fr", "free.fr",
		"laposte.net", "wanadoo.fr", "bluewin.ch", "sunrise.ch", "hispeed.ch", "bluemail.ch",
		"swissonline.ch", "mail.com", "yandex.com", "tutanota.com"}
	defaults := DefaultFreeMail()
	c := New(nil)
	for _, d := range spec {
		t.Run(d, func(t *testing.T) {
			if !slices.Contains(defaults, d) {
				t.Errorf("DefaultFreeMail() lacks %q", d)
			}
			if !c.IsFreeMail(d) {
				t.Errorf("IsFreeMail(%q) = false, want true", d)
			}
		})
	}
	t.Run("sorted, no repeats, lower case", func(t *testing.T) {
		if !slices.IsSorted(defaults) {
			t.Error("DefaultFreeMail() is not sorted")
		}
		if len(slices.Compact(slices.Clone(defaults))) != len(defaults) {
			t.Error("DefaultFreeMail() has repeats")
		}
		for _, d := range defaults {
			if d != cleanDomain(d) {
				t.Errorf("DefaultFreeMail() holds %q, not in clean form", d)
			}
		}
	})
	t.Run("caller owns the slice", func(t *testing.T) {
		DefaultFreeMail()[0] = "changed.example"
		if DefaultFreeMail()[0] == "changed.example" {
			t.Error("DefaultFreeMail() returns shared memory")
		}
	})
}

func TestIsFreeMail(t *testing.T) {
	tests := []struct {
		name   string
		opts   *Options
		domain string
		want   bool
	}{
		{"default", nil, "gmail.com", true},
		{"professional", nil, "be.ch", false},
		{"letter case, space, trailing dot", nil, " GMail.Com. ", true},
		{"whole address", nil, "anna.muster@GMX.ch", true},
		{"subdomain of a free-mail domain", nil, "mail.gmail.com", false},
		{"empty", nil, "", false},
		{"added", &Options{AddFreeMail: []string{" @Example.ORG "}}, "example.org", true},
		{"removed", &Options{RemoveFreeMail: []string{"Bluewin.ch"}}, "bluewin.ch", false},
		{"others kept when one is removed", &Options{RemoveFreeMail: []string{"bluewin.ch"}}, "gmx.ch", true},
		{"removal wins over addition", &Options{AddFreeMail: []string{"example.org"}, RemoveFreeMail: []string{"example.org"}}, "example.org", false},
		{"blank entries ignored", &Options{AddFreeMail: []string{"", "  "}}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := New(tt.opts).IsFreeMail(tt.domain); got != tt.want {
				t.Errorf("New(%+v).IsFreeMail(%q) = %v, want %v", tt.opts, tt.domain, got, tt.want)
			}
		})
	}
	t.Run("options do not change the defaults", func(t *testing.T) {
		New(&Options{RemoveFreeMail: []string{"bluewin.ch"}})
		if !New(nil).IsFreeMail("bluewin.ch") || !slices.Contains(DefaultFreeMail(), "bluewin.ch") {
			t.Error("removing a domain from one Classifier changed the defaults")
		}
	})
	t.Run("nil classifier uses the defaults", func(t *testing.T) {
		var c *Classifier
		if !c.IsFreeMail("gmail.com") || c.IsFreeMail("be.ch") {
			t.Error("a nil *Classifier does not use the default list")
		}
	})
}

// entered is the person the superuser entered in the portal in the
// Classify tests.
var entered = event.Person{GivenName: "Anna", FamilyName: "Muster", Email: "anna.muster@be.ch"}

// newNotice returns a readable notice comparing entered with actual.
func newNotice(actual event.Person) *event.Notice {
	return &event.Notice{Language: "de", Expected: entered, Actual: actual}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name    string
		opts    *Options
		notice  *event.Notice
		class   event.Class
		rule    int
		names   NameVerdict
		private string
		reasons []string // parts of the reasons, in order
	}{
		{
			name:    "rule 1: no notice",
			notice:  nil,
			class:   event.ClassReview,
			rule:    1,
			reasons: []string{"there is no notice to classify (rule 1)"},
		},
		{
			name: "rule 1: entered given name missing",
			notice: &event.Notice{
				Expected: event.Person{FamilyName: "Muster", Email: "anna.muster@be.ch"},
				Actual:   entered,
			},
			class:   event.ClassReview,
			rule:    1,
			reasons: []string{"the entered given name is missing (rule 1)"},
		},
		{
			name:    "rule 1: signed-in family name only white space and NBSP",
			notice:  newNotice(event.Person{GivenName: "Anna", FamilyName: " \u00a0 ", Email: "anna.muster@be.ch"}),
			class:   event.ClassReview,
			rule:    1,
			reasons: []string{"the signed-in family name is missing (rule 1)"},
		},
		{
			name:    "rule 1: a name without letters",
			notice:  newNotice(event.Person{GivenName: "-", FamilyName: "Muster", Email: "anna.muster@be.ch"}),
			class:   event.ClassReview,
			rule:    1,
			reasons: []string{"the signed-in given name '-' holds no letters (rule 1)"},
		},
		{
			name:    "rule 1: signed-in e-mail missing",
			notice:  newNotice(event.Person{GivenName: "Peter", FamilyName: "Keller"}),
			class:   event.ClassReview,
			rule:    1,
			reasons: []string{"the signed-in e-mail is missing (rule 1)"},
		},
		{
			name:    "rule 1: e-mail without @",
			notice:  newNotice(event.Person{GivenName: "Anna", FamilyName: "Muster", Email: "anna.muster.be.ch"}),
			class:   event.ClassReview,
			rule:    1,
			reasons: []string{"the signed-in e-mail 'anna.muster.be.ch' is not an address, it has no '@' (rule 1)"},
		},
		{
			name:    "rule 1: e-mail without domain",
			notice:  newNotice(event.Person{GivenName: "Anna", FamilyName: "Muster", Email: "anna.muster@"}),
			class:   event.ClassReview,
			rule:    1,
			reasons: []string{"the signed-in e-mail 'anna.muster@' is not a complete address (rule 1)"},
		},
		{
			name: "rule 1: several values missing",
			notice: &event.Notice{
				Expected: event.Person{GivenName: "Anna", FamilyName: "Muster"},
				Actual:   event.Person{GivenName: "Peter", Email: "peter@gmail.com"},
			},
			class: event.ClassReview,
			rule:  1,
			reasons: []string{
				"the entered e-mail is missing (rule 1)",
				"the signed-in family name is missing (rule 1)",
			},
		},
		{
			name: "rule 1: unreadable notice wins over a wrong person",
			notice: &event.Notice{
				Expected: entered,
				Actual:   event.Person{GivenName: "Peter", FamilyName: "Keller", Email: "peter.keller@gmail.com"},
				Problems: []string{"no signed-in column found"},
			},
			class:   event.ClassReview,
			rule:    1,
			reasons: []string{"the notice could not be read completely: no signed-in column found (rule 1)"},
		},
		{
			name:   "rule 2: different person",
			notice: newNotice(event.Person{GivenName: "Peter", FamilyName: "Keller", Email: "peter.keller@be.ch"}),
			class:  event.ClassWrongPerson,
			rule:   2,
			names:  NamesDifferent,
			reasons: []string{
				"given name 'Anna' vs 'Peter': no given name in common, a different person (rule 2)",
				"e-mail 'anna.muster@be.ch' vs 'peter.keller@be.ch': the addresses differ too",
			},
		},
		{
			name:    "rule 2: wins over a private address",
			notice:  newNotice(event.Person{GivenName: "Peter", FamilyName: "Muster", Email: "peter@gmail.com"}),
			class:   event.ClassWrongPerson,
			rule:    2,
			names:   NamesDifferent,
			reasons: []string{"(rule 2)"},
		},
		{
			name:    "rule 2: same address, other person",
			notice:  newNotice(event.Person{GivenName: "Petra", FamilyName: "Muster", Email: "anna.muster@be.ch"}),
			class:   event.ClassWrongPerson,
			rule:    2,
			names:   NamesDifferent,
			reasons: []string{"given name 'Anna' vs 'Petra': no given name in common, a different person (rule 2)"},
		},
		{
			name:    "rule 3: same given name, other family name",
			notice:  newNotice(event.Person{GivenName: "Anna", FamilyName: "Keller", Email: "anna.keller@be.ch"}),
			class:   event.ClassReview,
			rule:    3,
			names:   NamesPartial,
			reasons: []string{"the family name 'Muster' vs 'Keller' differs; a change of name or another person, nobody can tell from the mail (rule 3)"},
		},
		{
			name:    "rule 3: wins over a private address",
			notice:  newNotice(event.Person{GivenName: "Anna", FamilyName: "Keller", Email: "anna.keller@gmail.com"}),
			class:   event.ClassReview,
			rule:    3,
			names:   NamesPartial,
			reasons: []string{"(rule 3)", "the addresses differ too"},
		},
		{
			name:    "rule 4: private address",
			notice:  newNotice(event.Person{GivenName: "Anna", FamilyName: "Muster", Email: " anna.muster@GMail.com "}),
			class:   event.ClassPrivateEmail,
			rule:    4,
			names:   NamesSame,
			private: "gmail.com",
			reasons: []string{
				"name 'Anna Muster' is the same on both sides",
				"e-mail 'anna.muster@be.ch' vs 'anna.muster@GMail.com': the signed-in address is a private one at the free-mail provider 'gmail.com' (rule 4)",
			},
		},
		{
			name:    "rule 4: with a middle name",
			notice:  newNotice(event.Person{GivenName: "Anna Maria", FamilyName: "Muster", Email: "a.m.muster@bluewin.ch"}),
			class:   event.ClassPrivateEmail,
			rule:    4,
			names:   NamesSame,
			private: "bluewin.ch",
			reasons: []string{"additional given name 'Maria'", "'bluewin.ch' (rule 4)"},
		},
		{
			name: "rule 4: entered address private too",
			notice: &event.Notice{
				Expected: event.Person{GivenName: "Anna", FamilyName: "Muster", Email: "anna@gmx.ch"},
				Actual:   event.Person{GivenName: "Anna", FamilyName: "Muster", Email: "anna.muster@gmail.com"},
			},
			class:   event.ClassPrivateEmail,
			rule:    4,
			names:   NamesSame,
			private: "gmail.com",
			reasons: []string{"(rule 4)", "the entered address 'anna@gmx.ch' is at a free-mail provider too"},
		},
		{
			name:    "rule 4: added free-mail domain",
			opts:    &Options{AddFreeMail: []string{"example.org"}},
			notice:  newNotice(event.Person{GivenName: "Anna", FamilyName: "Muster", Email: "anna@example.org"}),
			class:   event.ClassPrivateEmail,
			rule:    4,
			names:   NamesSame,
			private: "example.org",
			reasons: []string{"(rule 4)"},
		},
		{
			name:    "rule 5: subdomain",
			notice:  newNotice(event.Person{GivenName: "Anna", FamilyName: "Muster", Email: "anna.muster@gef.be.ch"}),
			class:   event.ClassNegligible,
			rule:    5,
			names:   NamesSame,
			reasons: []string{"the addresses differ but are in the same domain ('be.ch' and 'gef.be.ch'), a negligible difference (rule 5)"},
		},
		{
			name:    "rule 5: same domain, other mailbox",
			notice:  newNotice(event.Person{GivenName: "Anna", FamilyName: "Mustre", Email: "a.muster@BE.ch"}),
			class:   event.ClassNegligible,
			rule:    5,
			names:   NamesSame,
			reasons: []string{"'Muster' vs 'Mustre' is a typo", "in the same domain 'be.ch', a negligible difference (rule 5)"},
		},
		{
			name:    "rule 6: other non-private domain",
			notice:  newNotice(event.Person{GivenName: "Anna", FamilyName: "Muster", Email: "anna.muster@zh.ch"}),
			class:   event.ClassReview,
			rule:    6,
			names:   NamesSame,
			reasons: []string{"the signed-in address is in another domain, 'zh.ch' instead of 'be.ch', and not at a known free-mail provider (rule 6)"},
		},
		{
			name:    "rule 6: look-alike domain",
			notice:  newNotice(event.Person{GivenName: "Anna", FamilyName: "Muster", Email: "anna.muster@xbe.ch"}),
			class:   event.ClassReview,
			rule:    6,
			names:   NamesSame,
			reasons: []string{"(rule 6)"},
		},
		{
			name:    "rule 6: removed free-mail domain",
			opts:    &Options{RemoveFreeMail: []string{"bluewin.ch"}},
			notice:  newNotice(event.Person{GivenName: "Anna", FamilyName: "Muster", Email: "anna@bluewin.ch"}),
			class:   event.ClassReview,
			rule:    6,
			names:   NamesSame,
			reasons: []string{"'bluewin.ch' instead of 'be.ch'"},
		},
		{
			name:    "rule 7: nothing differs",
			notice:  newNotice(entered),
			class:   event.ClassNegligible,
			rule:    7,
			names:   NamesSame,
			reasons: []string{"name 'Anna Muster' is the same on both sides", "e-mail 'anna.muster@be.ch' is the same on both sides (rule 7)"},
		},
		{
			name: "rule 7: transcription and address letter case",
			notice: &event.Notice{
				Expected: event.Person{GivenName: "Jürg", FamilyName: "Müller", Email: "juerg.mueller@be.ch"},
				Actual:   event.Person{GivenName: "Juerg", FamilyName: "Mueller", Email: "Juerg.Mueller@BE.CH"},
			},
			class: event.ClassNegligible,
			rule:  7,
			names: NamesSame,
			reasons: []string{
				"name 'Jürg Müller' vs 'Juerg Mueller': the same name, written differently",
				"the same address in another letter case (rule 7)",
			},
		},
		{
			name:    "rule 7: double family name",
			notice:  newNotice(event.Person{GivenName: "Anna", FamilyName: "Muster-Keller", Email: "anna.muster@be.ch"}),
			class:   event.ClassNegligible,
			rule:    7,
			names:   NamesSame,
			reasons: []string{"the entered family name 'Muster' is one part of 'Muster-Keller'", "(rule 7)"},
		},
		{
			name:    "rule 7: swapped",
			notice:  newNotice(event.Person{GivenName: "Muster", FamilyName: "Anna", Email: "anna.muster@be.ch"}),
			class:   event.ClassNegligible,
			rule:    7,
			names:   NamesSame,
			reasons: []string{"swapped", "(rule 7)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := New(tt.opts).Classify(tt.notice)
			if v.Class != tt.class || v.Rule != tt.rule || v.Names != tt.names || v.PrivateDomain != tt.private {
				t.Errorf("Classify() = class %q, rule %d, names %q, private domain %q; want %q, %d, %q, %q\nreasons: %q",
					v.Class, v.Rule, v.Names, v.PrivateDomain, tt.class, tt.rule, tt.names, tt.private, v.Reasons)
			}
			checkReasons(t, v.Reasons, tt.reasons)
			if tt.notice != nil && (v.Expected != tt.notice.Expected || v.Actual != tt.notice.Actual) {
				t.Errorf("Classify() compared values = %v, %v; want the notice's %v, %v",
					v.Expected, v.Actual, tt.notice.Expected, tt.notice.Actual)
			}
		})
	}
}

// checkReasons fails the test unless each of want is part of a reason, in
// the order given, and exactly one reason names the deciding rule.
func checkReasons(t *testing.T, reasons, want []string) {
	t.Helper()
	i := 0
	for _, r := range reasons {
		if i < len(want) && strings.Contains(r, want[i]) {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("reasons %q lack %q (in this order)", reasons, want[i:])
	}
	tagged := 0
	for _, r := range reasons {
		if strings.Contains(r, "(rule ") {
			tagged++
		}
	}
	if tagged == 0 {
		t.Errorf("reasons %q name no rule", reasons)
	}
	checkPrintable(t, reasons)
}

// checkPrintable fails the test when a reason holds a control character (C0,
// DEL, C1), an invisible format character or a byte that is not UTF-8: a
// value from a mail must reach a reason escaped.
func checkPrintable(t *testing.T, reasons []string) {
	t.Helper()
	for _, r := range reasons {
		if !utf8.ValidString(r) {
			t.Errorf("reason %+q is not valid UTF-8", r)
		}
		for _, c := range r {
			if c < 0x20 || (0x7f <= c && c <= 0x9f) || unicode.Is(unicode.Cf, c) || c == '\u2028' || c == '\u2029' {
				t.Errorf("reason %+q holds the raw character U+%04X", r, c)
				break
			}
		}
	}
}

func TestClassifyNilClassifier(t *testing.T) {
	var c *Classifier
	v := c.Classify(newNotice(event.Person{GivenName: "Anna", FamilyName: "Muster", Email: "anna@gmail.com"}))
	if v.Class != event.ClassPrivateEmail || v.Rule != 4 {
		t.Errorf("nil Classifier: Classify() = %q rule %d, want %q rule 4", v.Class, v.Rule, event.ClassPrivateEmail)
	}
}

func TestVerdictJSON(t *testing.T) {
	tests := []struct {
		name     string
		n        *event.Notice
		contains []string
		lacks    []string
	}{
		{
			name:     "rule 1 has no name verdict",
			n:        newNotice(event.Person{GivenName: "Anna"}),
			contains: []string{`"class":"review"`, `"rule":1`, `"reasons":[`},
			lacks:    []string{`"names"`, `"private_domain"`},
		},
		{
			name:     "rule 4 names the domain",
			n:        newNotice(event.Person{GivenName: "Anna", FamilyName: "Muster", Email: "anna@gmail.com"}),
			contains: []string{`"class":"private-email"`, `"rule":4`, `"names":"same"`, `"private_domain":"gmail.com"`, `"expected":{"given_name":"Anna"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(New(nil).Classify(tt.n))
			if err != nil {
				t.Fatalf("marshal verdict: %v", err)
			}
			for _, s := range tt.contains {
				if !bytes.Contains(b, []byte(s)) {
					t.Errorf("JSON %s lacks %s", b, s)
				}
			}
			for _, s := range tt.lacks {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("JSON %s holds %s", b, s)
				}
			}
		})
	}
}

func TestClassifyConcurrent(t *testing.T) {
	c := New(&Options{AddFreeMail: []string{"example.org"}})
	n := newNotice(event.Person{GivenName: "Änna", FamilyName: "Mustre", Email: "anna@example.org"})
	want := c.Classify(n)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if got := c.Classify(n); got.Class != want.Class || got.Rule != want.Rule {
					t.Errorf("concurrent Classify() = %q rule %d, want %q rule %d", got.Class, got.Rule, want.Class, want.Rule)
					return
				}
			}
		})
	}
	wg.Wait()
}

// benchNotices are typical notices, one per rule that reads names.
var benchNotices = []*event.Notice{
	newNotice(event.Person{GivenName: "Peter", FamilyName: "Keller", Email: "peter.keller@be.ch"}),
	newNotice(event.Person{GivenName: "Anna", FamilyName: "Keller", Email: "anna.keller@be.ch"}),
	newNotice(event.Person{GivenName: "Anna", FamilyName: "Muster", Email: "anna.muster@gmail.com"}),
	newNotice(event.Person{GivenName: "Anna Maria", FamilyName: "Muster", Email: "anna.muster@gef.be.ch"}),
	newNotice(event.Person{GivenName: "Anna", FamilyName: "Muster", Email: "anna.muster@zh.ch"}),
	{
		Expected: event.Person{GivenName: "Jürg", FamilyName: "Müller-Brändli", Email: "juerg.mueller@be.ch"},
		Actual:   event.Person{GivenName: "Juerg", FamilyName: "Mueller", Email: "juerg.mueller@be.ch"},
	},
}

func BenchmarkClassify(b *testing.B) {
	c := New(nil)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Classify(benchNotices[i%len(benchNotices)])
	}
}
