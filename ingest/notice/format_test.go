package notice

import "testing"

// TestFormatCharacters checks that the invisible format characters (Unicode
// category Cf) are removed from values, label keys and headings, not read as
// white space: "Lu&#8203;kas" is "Lukas" (NOTICE.md section 4).
func TestFormatCharacters(t *testing.T) {
	values := []struct{ in, want string }{
		{"Lu\u200bkas", "Lukas"},
		{"  Mei\u00ader\u2060 ", "Meier"},
		{"\ufeffAnna Maria", "Anna Maria"},
		{"Anna \u200b Maria", "Anna Maria"},
		{"\u200b", ""},
		{"Anna\u00a0Maria", "Anna Maria"},
		{"Anna\x1bMaria", "Anna\x1bMaria"}, // control characters are the classifier's to refuse
	}
	for _, tt := range values {
		if got := cleanValue(tt.in); got != tt.want {
			t.Errorf("cleanValue(%+q) = %+q, want %+q", tt.in, got, tt.want)
		}
	}
	var a, b keyBuf
	for _, label := range []string{"Vor\u200bname", "\ufeffVorname:", "Vorname\u00ad"} {
		if got, want := string(keyOf(&a, label)), string(keyOf(&b, "Vorname")); got != want {
			t.Errorf("keyOf(%+q) = %+q, want %+q", label, got, want)
		}
	}
}
