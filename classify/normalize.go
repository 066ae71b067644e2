package classify

import (
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Normalize returns the folded form of s that every name comparison runs on
// (NOTICE.md section 4), in this order:
//
//   - invisible format characters (Unicode category Cf: zero-width space,
//     zero-width joiners, word joiner, byte-order mark, soft hyphen, the
//     bidirectional marks, ...) removed before anything else, so that
//     "Lu\u200bkas" is "Lukas";
//   - Unicode compatibility normalisation (NFKC), so that fullwidth letters,
//     ligatures and non-breaking spaces become their plain forms;
//   - case folding, with ß (and ẞ) written as ss;
//   - hyphen and the other dashes, the apostrophes ' ’ ‘ ʼ ` and the full
//     stop . treated as word separators, and white space of every kind
//     collapsed to one ASCII space and trimmed;
//   - diacritics removed (é = e, ä = a), and the letters that carry a stroke
//     or are ligatures mapped to their base letters (ø = o, ł = l, æ = ae,
//     œ = oe); the Catalan middle dot removed;
//   - the German transcriptions ae, oe, ue written as a, o, u, anywhere in a
//     word, so that Müller, Mueller and Muller all fold to "muller" (an e
//     directly after a, o or u is dropped, so the result is stable when
//     folded again; an e after a separator starts a word and is kept).
//
// The folded form is for comparison only; it is never shown to a person.
// Other punctuation is kept as it is; control characters separate words
// (Classify never compares a value that holds one: rule 1).
func Normalize(s string) string {
	return fold(s)
}

// Tokens returns the words of the folded form of s, in order. It returns nil
// when s holds nothing but white space and separators.
func Tokens(s string) []string {
	return appendTokens(nil, fold(s))
}

// fold implements Normalize.
func fold(s string) string {
	if isASCII(s) { // no format character is ASCII
		f := folder{buf: make([]byte, 0, len(s))}
		for i := 0; i < len(s); i++ {
			f.ascii(s[i])
		}
		return string(f.buf)
	}
	d := norm.NFKD.String(stripFormat(s))
	f := folder{buf: make([]byte, 0, len(d))}
	for _, r := range d {
		if r < utf8.RuneSelf {
			f.ascii(byte(r))
			continue
		}
		f.other(r)
	}
	// Removing the marks leaves the text decomposed only where no mark was
	// involved (Hangul, for one); compose it again so the result is NFKC.
	return norm.NFC.String(string(f.buf))
}

// folder accumulates the folded form. A separator only sets space, so that
// runs of separators collapse and none is written at either end.
type folder struct {
	buf   []byte
	space bool
}

// sep records a word boundary.
func (f *folder) sep() {
	if len(f.buf) > 0 {
		f.space = true
	}
}

// add appends one folded letter, applying the ae/oe/ue transcription.
func (f *folder) add(c byte) {
	if f.space {
		f.buf = append(f.buf, ' ')
		f.space = false
	} else if c == 'e' && len(f.buf) > 0 {
		switch f.buf[len(f.buf)-1] {
		case 'a', 'o', 'u':
			return
		}
	}
	f.buf = append(f.buf, c)
}

// addRune appends one folded non-ASCII rune.
func (f *folder) addRune(r rune) {
	if f.space {
		f.buf = append(f.buf, ' ')
		f.space = false
	}
	f.buf = utf8.AppendRune(f.buf, r)
}

// ascii folds one ASCII byte.
func (f *folder) ascii(c byte) {
	switch {
	case 'A' <= c && c <= 'Z':
		f.add(c + 'a' - 'A')
	case c == '-', c == '\'', c == '.', c == '`', c <= ' ', c == 0x7f:
		f.sep()
	default:
		f.add(c)
	}
}

// other folds one non-ASCII rune of NFKD text.
func (f *folder) other(r rune) {
	switch {
	case unicode.In(r, unicode.Mn, unicode.Me), r == '\u00b7':
		// Diacritics and the Catalan middle dot (format characters are
		// gone already: stripFormat).
		return
	case isSeparator(r):
		f.sep()
		return
	}
	switch r = unicode.ToLower(r); r {
	case 'ß':
		f.add('s')
		f.add('s')
	case 'æ':
		f.add('a')
		f.add('e')
	case 'œ':
		f.add('o')
		f.add('e')
	case 'þ':
		f.add('t')
		f.add('h')
	case 'ø':
		f.add('o')
	case 'ł':
		f.add('l')
	case 'đ', 'ð':
		f.add('d')
	case 'ħ':
		f.add('h')
	case 'ı':
		f.add('i')
	case 'ŧ':
		f.add('t')
	case 'ς':
		f.addRune('σ')
	default:
		if r < utf8.RuneSelf {
			f.ascii(byte(r))
			return
		}
		f.addRune(r)
	}
}

// stripFormat returns s without its invisible format characters (Unicode
// category Cf). It returns s itself, without a copy, when s holds none; bytes
// that are not UTF-8 are kept as they are.
func stripFormat(s string) string {
	i := indexFormat(s)
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i >= 0 {
		b = append(b, s[:i]...)
		_, n := utf8.DecodeRuneInString(s[i:])
		s = s[i+n:]
		i = indexFormat(s)
	}
	return string(append(b, s...))
}

// indexFormat returns the byte index of the first invisible format character
// (Unicode category Cf) in s, or -1. Every such character lies outside ASCII.
func indexFormat(s string) int {
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if unicode.Is(unicode.Cf, r) {
			return i
		}
		i += n
	}
	return -1
}

// formatRunes appends to dst the distinct invisible format characters of the
// values, in the order they first occur.
func formatRunes(dst []rune, values ...string) []rune {
	for _, v := range values {
		for i := indexFormat(v); i >= 0; {
			r, n := utf8.DecodeRuneInString(v[i:])
			if !slices.Contains(dst, r) {
				dst = append(dst, r)
			}
			v = v[i+n:]
			i = indexFormat(v)
		}
	}
	return dst
}

// valueScan is what one pass over a compared value finds (scanValue).
type valueScan struct {
	control int  // the byte index of the first control character, or -1
	ascii   bool // only ASCII bytes: no format character to remove
	letter  bool // a letter (Unicode category L)
}

// scanValue looks at s once for what rule 1 needs to know: the first control
// character (C0, U+0000 to U+001F; DEL, U+007F; C1, U+0080 to U+009F), where
// it stops, whether s is ASCII, and whether it holds a letter. Format
// characters are no letters, so the letter test holds for s without them.
func scanValue(s string) valueScan {
	sc := valueScan{control: -1, ascii: true}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c < 0x20 || c == 0x7f:
				sc.control = i
				return sc
			case 'a' <= c|0x20 && c|0x20 <= 'z':
				sc.letter = true
			}
			i++
			continue
		}
		sc.ascii = false
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case 0x80 <= r && r <= 0x9f:
			sc.control = i
			return sc
		case !sc.letter && unicode.IsLetter(r):
			sc.letter = true
		}
		i += n
	}
	return sc
}

// hasLetter reports whether s holds a letter (Unicode category L).
func hasLetter(s string) bool {
	for _, r := range s {
		if r < utf8.RuneSelf {
			if 'a' <= r|0x20 && r|0x20 <= 'z' {
				return true
			}
			continue
		}
		if unicode.IsLetter(r) {
			return true
		}
	}
	return false
}

// isInitial reports whether a folded token is an initial: one letter (its
// full stop, if any, was a separator).
func isInitial(tok string) bool {
	r, n := utf8.DecodeRuneInString(tok)
	return n == len(tok) && n > 0 && unicode.IsLetter(r)
}

// escape makes a value from a mail safe to show: every character that is not
// graphic (control characters, invisible format characters, line and
// paragraph separators) and every byte that is not UTF-8 is written as an
// escape, \x1b, \u200b, \xff, as strconv.QuoteToGraphic writes it, and a
// backslash as \\, so that the escapes are unambiguous. A value that needs
// none comes back without a copy.
func escape(s string) string {
	i := indexEscape(s)
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s)+8)
	for {
		b = append(b, s[:i]...)
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, `\x`...)
			b = append(b, "0123456789abcdef"[s[i]>>4], "0123456789abcdef"[s[i]&15])
		case r == '\\':
			b = append(b, `\\`...)
		default:
			q := strconv.QuoteRuneToGraphic(r) // '\x1b', with its quotes
			b = append(b, q[1:len(q)-1]...)
		}
		s = s[i+n:]
		if i = indexEscape(s); i < 0 {
			return string(append(b, s...))
		}
	}
}

// indexEscape returns the byte index of the first character of s that escape
// must write as an escape, or -1.
func indexEscape(s string) int {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < ' ' || c == 0x7f || c == '\\' {
				return i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || !unicode.IsGraphic(r) {
			return i
		}
		i += n
	}
	return -1
}

// isSeparator reports whether a non-ASCII rune separates words: white space,
// control characters, dashes, the minus sign and the apostrophe look-alikes.
func isSeparator(r rune) bool {
	switch r {
	case '\u2018', '\u2019', '\u201b', '\u02bc', '\u02bb', '\u2032', '\u00b4', '\u2212':
		return true
	}
	return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Pd, r)
}

// isASCII reports whether s holds only ASCII bytes.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// appendTokens appends the space-separated words of a folded string to dst.
// The words share the memory of folded.
func appendTokens(dst []string, folded string) []string {
	for folded != "" {
		i := strings.IndexByte(folded, ' ')
		if i < 0 {
			return append(dst, folded)
		}
		dst = append(dst, folded[:i])
		folded = folded[i+1:]
	}
	return dst
}

// words splits an original value at the places where Normalize separates
// words, keeping the original spelling; it is used to quote a token as the
// notice wrote it. A word of a single letter keeps the full stop that follows
// it ("A." of "A. Muster"). It returns nil when the split does not line up
// with the n tokens of the folded form.
func words(s string, n int) []string {
	var ws []string
	start := -1
	for i := 0; i <= len(s); {
		r, size := rune(' '), 1
		if i < len(s) {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		switch {
		case i < len(s) && !isWordBreak(r):
			if start < 0 {
				start = i
			}
		case start >= 0:
			from := start
			start = -1
			w := s[from:i]
			letters := utf8.RuneCountInString(w)
			if indexFormat(w) >= 0 {
				w0 := stripFormat(w)
				if w0 == "" {
					break // invisible characters only: no word of the folded form
				}
				letters = utf8.RuneCountInString(w0)
			}
			if letters == 1 && i < len(s) && s[i] == '.' {
				w = s[from : i+1]
			}
			ws = append(ws, w)
		}
		i += size
	}
	if len(ws) != n {
		return nil
	}
	return ws
}

// isWordBreak reports whether r separates words in an original value, as
// fold separates them once the value is in NFKC.
func isWordBreak(r rune) bool {
	if r < utf8.RuneSelf {
		c := byte(r)
		return c == '-' || c == '\'' || c == '.' || c == '`' || c <= ' ' || c == 0x7f
	}
	return isSeparator(r) || r == '\uff0d' || r == '\uff07' || r == '\uff0e'
}

// Typo reports whether a and b, once folded, are single tokens exactly one
// edit apart, the edit being the insertion, deletion or substitution of one
// letter or the transposition of two adjacent letters, and both hold at
// least 5 letters. Equal tokens are not a typo; a token of 4 letters or fewer
// never is.
func Typo(a, b string) bool {
	fa, fb := fold(a), fold(b)
	if fa == "" || fb == "" || strings.IndexByte(fa, ' ') >= 0 || strings.IndexByte(fb, ' ') >= 0 {
		return false
	}
	return typo(fa, fb)
}

// minTypoLetters is the length a token must have on both sides before a one
// letter difference counts as a typo.
const minTypoLetters = 5

// typo is Typo on tokens that are already folded.
func typo(a, b string) bool {
	if a == b {
		return false
	}
	if isASCII(a) && isASCII(b) {
		return oneEdit([]byte(a), []byte(b))
	}
	var ba, bb [64]rune
	return oneEdit(appendRunes(ba[:0], a), appendRunes(bb[:0], b))
}

// appendRunes appends the runes of s to dst.
func appendRunes(dst []rune, s string) []rune {
	for _, r := range s {
		dst = append(dst, r)
	}
	return dst
}

// oneEdit reports whether a and b, of minTypoLetters letters or more each,
// are one insertion, deletion, substitution or adjacent transposition apart.
func oneEdit[T byte | rune](a, b []T) bool {
	if len(a) < minTypoLetters || len(b) < minTypoLetters {
		return false
	}
	if len(a) < len(b) {
		a, b = b, a
	}
	// Skip the common prefix; i is the first position that differs.
	i := 0
	for i < len(b) && a[i] == b[i] {
		i++
	}
	switch len(a) - len(b) {
	case 0:
		if i == len(a) {
			return false // equal
		}
		if slices.Equal(a[i+1:], b[i+1:]) {
			return true // substitution
		}
		return i+1 < len(a) && a[i] == b[i+1] && a[i+1] == b[i] && slices.Equal(a[i+2:], b[i+2:])
	case 1:
		return slices.Equal(a[i+1:], b[i:]) // a has one letter more
	}
	return false
}
