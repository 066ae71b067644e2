package main

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Everything the commands print that comes from a mail (a header, a name
// whoever redeemed the code chose, a reason quoting them) or from the file
// system (a file name) is hostile: an escape sequence in it would clear the
// screen, rewrite the line (CR), set the terminal's title or write to the
// clipboard (OSC 52). The human-readable output escapes it with visible
// (through printf); the JSON output with jsonLines.

// visible returns s as it can be shown on a terminal: graphic runes and
// the space stay as they are; every other rune (the C0 and C1 control
// characters, DEL, CR, tab and newline, format characters such as
// zero-width spaces and bidirectional overrides, the line and paragraph
// separators) is written as Go escapes it (\x1b, \r, \u009b, \u202e),
// bytes that are not UTF-8 as \xNN, and the backslash as \\ so that an
// escape is never ambiguous. No quotes are added.
func visible(s string) string {
	if !needsEscape(s, false) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case shown(r):
			b.WriteString(s[i : i+size])
		default:
			// QuoteRuneToGraphic writes the rune's escape between single
			// quotes: \a, \r, \x1b, \u009b, \U000e0041.
			q := strconv.QuoteRuneToGraphic(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// shown reports whether a rune is shown as it is: the space and the
// graphic runes that are not format characters.
func shown(r rune) bool {
	return r == ' ' || unicode.IsGraphic(r) && !unicode.Is(unicode.Cf, r)
}

// needsEscape reports whether s holds a rune that is not shown, an invalid
// byte or (unless inJSON, where it starts the escapes encoding/json wrote)
// a backslash. In JSON the newline and the tab are the encoder's own.
func needsEscape(s string, inJSON bool) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= ' ' && c < 0x7f {
			if c == '\\' && !inJSON {
				return true
			}
			i++
			continue
		}
		if inJSON && (c == '\n' || c == '\t') {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || !shown(r) {
			return true
		}
		i += size
	}
	return false
}

// printf is fmt.Fprintf with every string, error and fmt.Stringer
// argument passed through visible first. The format itself is the
// command's own and keeps its newlines and tabs. Use it for every line
// that shows a value from a mail or a path.
func printf(w io.Writer, format string, args ...any) {
	safe := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			safe[i] = visible(v)
		case error:
			safe[i] = visible(v.Error())
		case fmt.Stringer:
			safe[i] = visible(v.String())
		default:
			if v := reflect.ValueOf(a); v.Kind() == reflect.String {
				safe[i] = visible(v.String()) // event.Class, event.Change
			} else {
				safe[i] = a
			}
		}
	}
	fmt.Fprintf(w, format, safe...)
}

// jsonLines returns an encoder writing one JSON value a line, with <, >
// and & as they are and no control character raw: encoding/json escapes
// C0 controls and U+2028/2029 itself, and jsonEscaper the rest (DEL, C1,
// format characters), so that a JSON line piped to a terminal is as safe
// as the table.
func jsonLines(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(jsonEscaper{w})
	enc.SetEscapeHTML(false)
	return enc
}

// jsonEscaper rewrites, in JSON text written to it, every rune visible
// would escape as a \uXXXX escape (a surrogate pair above U+FFFF). Outside
// of strings JSON is ASCII without control characters, so every such rune
// stands inside a string, where the escape means the same rune. It expects
// whole values per Write, as json.Encoder writes them.
type jsonEscaper struct{ w io.Writer }

func (e jsonEscaper) Write(p []byte) (int, error) {
	s := string(p)
	if !needsEscape(s, true) {
		return e.w.Write(p)
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\n' || r == '\t' || shown(r):
			b.WriteString(s[i : i+size])
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\ufffd`) // encoding/json writes no invalid UTF-8; be safe
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += size
	}
	if _, err := io.WriteString(e.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}
