package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// terminalUnsafe returns a description of the first rune of out that a
// terminal would act on or that is no text (a control character other than
// the newline and the tab, a C1 control, a format character such as a
// bidirectional override, the line or paragraph separator, a byte that is
// not UTF-8), or "" when there is none.
func terminalUnsafe(out string) string {
	for i := 0; i < len(out); {
		r, size := utf8.DecodeRuneInString(out[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return describeAt(out, i, "the byte not UTF-8")
		case r == '\n' || r == '\t':
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r), r == '\u2028', r == '\u2029':
			return describeAt(out, i, "the control or format character")
		}
		i += size
	}
	return ""
}

func describeAt(out string, i int, what string) string {
	from := max(0, i-40)
	to := min(len(out), i+20)
	r, _ := utf8.DecodeRuneInString(out[i:])
	return fmt.Sprintf("%s %U at byte %d in …%s…", what, r, i, visible(out[from:to]))
}

// hostile holds what a mail or a file name can carry to take over a
// terminal: clear screen, OSC 52 (write the clipboard), CR to overwrite the
// line, NUL, C1 CSI, a bidirectional override, a zero-width space, the line
// separator, DEL and a byte that is not UTF-8.
const hostile = "A\x1b[2JB\x1b]52;c;ZXZpbA==\x07C\rD\x00E\u009b31mF\u202eG\u200bH\u2028I\x7fJ\xffK\\L"

func TestVisible(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"Jürg Müller-Weiss", "Jürg Müller-Weiss"},
		{"Anna\u00a0Muster", "Anna\u00a0Muster"}, // NBSP is a graphic space
		{"a\tb\nc", `a\tb\nc`},
		{hostile, `A\x1b[2JB\x1b]52;c;ZXZpbA==\aC\rD\x00E\u009b31mF\u202eG\u200bH\u2028I\x7fJ\xffK\\L`},
		{"\U000e0041", `\U000e0041`}, // a tag character (format)
	} {
		if got := visible(tt.in); got != tt.want {
			t.Errorf("visible(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if bad := terminalUnsafe(visible(tt.in)); bad != "" {
			t.Errorf("visible(%q) holds %s", tt.in, bad)
		}
	}
	var b bytes.Buffer
	printf(&b, "%s|%v|%d|%s\n", hostile, errors.New(hostile), 42, testClass(hostile))
	if bad := terminalUnsafe(b.String()); bad != "" || strings.Count(b.String(), "\n") != 1 || !strings.Contains(b.String(), "|42|") {
		t.Errorf("printf wrote %q (%s)", b.String(), bad)
	}
}

// testClass is a named string type, as event.Class is.
type testClass string

// TestJSONLinesEscapes: the JSON lines carry every value intact (decoding
// gives back the hostile string) with no control or format character raw,
// including those encoding/json leaves raw (C1, DEL, format characters).
func TestJSONLinesEscapes(t *testing.T) {
	var raw bytes.Buffer
	json.NewEncoder(&raw).Encode(map[string]string{"v": hostile})
	if terminalUnsafe(raw.String()) == "" {
		t.Fatal("encoding/json escapes everything itself: the escaper is not needed, and this test proves nothing")
	}
	var b bytes.Buffer
	enc := jsonLines(&b)
	in := map[string]string{"name": hostile, "plain": "a<b>&c", "astral": "\U000e0041 😀"}
	if err := enc.Encode(in); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if bad := terminalUnsafe(out); bad != "" {
		t.Fatalf("JSON line holds %s", bad)
	}
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, "a<b>&c") || !strings.Contains(out, "😀") {
		t.Errorf("JSON line %q: want one line, <, > and & and the emoji as they are", out)
	}
	var back map[string]string
	if err := json.Unmarshal([]byte(out), &back); err != nil {
		t.Fatal(err)
	}
	want := strings.ToValidUTF8(hostile, "\ufffd") // encoding/json's own replacement
	if back["name"] != want || back["astral"] != in["astral"] || back["plain"] != in["plain"] {
		t.Errorf("decoded %q, want %q", back, want)
	}
}
