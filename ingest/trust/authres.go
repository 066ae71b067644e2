package trust

import (
	"errors"
	"fmt"
	"strings"
)

// This file holds the Authentication-Results parser (RFC 8601) that Check
// relies on. go-msgauth's authres.Parse is not used for the decision: it
// splits the field on every ';' (also inside comments, go-msgauth #74: every
// OpenDKIM header "dkim=pass (2048-bit key; unprotected) ..." fails), does not
// strip comments, and refuses Microsoft 365's fields, which carry no
// authserv-id (go-msgauth #64). On those it returns partial results with an
// error, and a partial read of the counted header is no ground for trust.
// This parser reads a field whole or not at all.

// arField is one Authentication-Results header field as parseAR read it.
type arField struct {
	// id is the authserv-id; "" when the field has none (noID).
	id string
	// noID is true for a field that starts with a result, as Microsoft 365
	// writes them.
	noID bool
	// results are the field's resinfos, in order; empty for "none".
	results []arResult
}

// arResult is one resinfo: method=result and its properties.
type arResult struct {
	method string // lower case, without a method version ("dkim/1" is "dkim")
	value  string // lower case
	props  []arProp
}

// arProp is one property (ptype.property=value, or reason=value).
type arProp struct {
	key   string // lower case: "header.d", "reason"
	value string // as written, unquoted
}

// errNoID means the field's authserv-id itself cannot be read: nothing can
// be said about who wrote the field.
var errNoID = errors.New("its authserv-id cannot be read")

// prop returns the value of the property key and how many times it occurs.
func (r *arResult) prop(key string) (value string, n int) {
	for _, p := range r.props {
		if p.key == key {
			if n == 0 {
				value = p.value
			}
			n++
		}
	}
	return value, n
}

// parseAR reads the value of one Authentication-Results field (unfolded, as
// the header reader returns it). Comments are removed (nested, with quoted
// pairs), ';' separates resinfos only outside comments and quoted strings.
//
// It fails on anything it cannot read with certainty: an unclosed comment
// or quoted string, a resinfo that is not method=result followed by
// key=value properties, an unknown version. The error wraps errNoID when
// not even the authserv-id can be read; otherwise the returned field carries
// the authserv-id (or noID), so that the caller knows whose unreadable field
// it is.
//
// A field without authserv-id (its first part is a result, Microsoft 365)
// may hold parts that are a single word, such as "; contoso.com;" which
// Exchange Online has been seen writing after smtp.mailfrom and header.d:
// those are skipped.
func parseAR(v string) (arField, error) {
	var f arField
	segs, err := splitAR(v)
	if len(segs) == 0 {
		if err == nil {
			err = errors.New("the field is empty")
		}
		return f, fmt.Errorf("%w: %w", errNoID, err)
	}
	first := words(segs[0])
	if len(first) == 0 {
		return f, fmt.Errorf("%w: the field starts with ';'", errNoID)
	}
	rest := segs[1:]
	if strings.Contains(first[0], "=") {
		// No authserv-id: the first part is already a result.
		f.noID = true
		rest = segs
	} else {
		id, ok := unquote(first[0])
		if !ok || id == "" {
			return f, fmt.Errorf("%w: %s", errNoID, quote(first[0]))
		}
		f.id = id
		switch {
		case len(first) == 1:
		case len(first) == 2 && first[1] == "1":
		case len(first) == 2 && allDigits(first[1]):
			return f, fmt.Errorf("version %s is not supported (only 1)", quote(first[1]))
		default:
			return f, fmt.Errorf("the authserv-id %s is followed by %s", quote(first[0]), quote(strings.Join(first[1:], " ")))
		}
	}
	if err != nil {
		return f, err
	}
	for _, s := range rest {
		ws := words(s)
		switch {
		case len(ws) == 0:
			continue // ";;" or a trailing ';'
		case len(ws) == 1 && strings.EqualFold(ws[0], "none"):
			continue // no-result
		case len(ws) == 1 && f.noID && !strings.ContainsAny(ws[0], "=\""):
			continue // Exchange Online's "; contoso.com;"
		}
		r, err := parseResinfo(ws)
		if err != nil {
			return f, err
		}
		f.results = append(f.results, r)
	}
	return f, nil
}

// parseResinfo reads the words of one resinfo.
func parseResinfo(ws []string) (arResult, error) {
	var r arResult
	k, v, ok := pair(ws[0])
	if !ok {
		return r, fmt.Errorf("the result %s is not method=result", quote(strings.Join(ws, " ")))
	}
	method, _, _ := strings.Cut(k, "/")
	if !keyword(method) || !keyword(v) {
		return r, fmt.Errorf("the result %s is not method=result", quote(ws[0]))
	}
	r.method, r.value = strings.ToLower(method), strings.ToLower(v)
	for _, w := range ws[1:] {
		k, v, ok := pair(w)
		if !ok {
			return r, fmt.Errorf("the %s result has %s, which is not property=value", r.method, quote(w))
		}
		pv, ok := unquote(v)
		if !ok {
			return r, fmt.Errorf("the %s result has %s, a badly quoted value", r.method, quote(w))
		}
		r.props = append(r.props, arProp{key: strings.ToLower(k), value: pv})
	}
	return r, nil
}

// splitAR removes the comments from v and splits it on the ';' outside
// quoted strings. A comment becomes a space; quoted strings are kept with
// their quotes and quoted pairs, for words and unquote. It returns the
// segments read up to the first error.
func splitAR(v string) ([]string, error) {
	var segs []string
	var b strings.Builder
	b.Grow(len(v))
	depth := 0
	inQuote := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case depth > 0:
			switch c {
			case '\\':
				i++
			case '(':
				depth++
			case ')':
				depth--
				if depth == 0 {
					b.WriteByte(' ')
				}
			}
		case inQuote:
			b.WriteByte(c)
			switch c {
			case '\\':
				if i+1 < len(v) {
					i++
					b.WriteByte(v[i])
				}
			case '"':
				inQuote = false
			}
		default:
			switch c {
			case '(':
				depth = 1
				b.WriteByte(' ')
			case ')':
				return segs, errors.New("a ')' closes no comment")
			case '"':
				inQuote = true
				b.WriteByte(c)
			case ';':
				segs = append(segs, b.String())
				b.Reset()
			default:
				b.WriteByte(c)
			}
		}
	}
	switch {
	case depth > 0:
		return segs, errors.New("a comment is not closed")
	case inQuote:
		return segs, errors.New("a quoted string is not closed")
	}
	return append(segs, b.String()), nil
}

// words splits a segment on white space outside quoted strings.
func words(s string) []string {
	var ws []string
	start := -1
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if inQuote {
			switch c {
			case '\\':
				i++
			case '"':
				inQuote = false
			}
			continue
		}
		if isWSP(c) {
			if start >= 0 {
				ws = append(ws, s[start:i])
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
		if c == '"' {
			inQuote = true
		}
	}
	if start >= 0 {
		ws = append(ws, s[start:])
	}
	return ws
}

// pair splits key=value at the first '=' outside a quoted string; the key
// must be non-empty and unquoted.
func pair(w string) (k, v string, ok bool) {
	i := strings.IndexByte(w, '=')
	if i <= 0 || strings.ContainsRune(w[:i], '"') {
		return "", "", false
	}
	return w[:i], w[i+1:], true
}

// unquote returns the content of a quoted string, or s itself when it holds
// no quote at all. ok is false for a value that is partly quoted.
func unquote(s string) (string, bool) {
	if !strings.ContainsRune(s, '"') {
		return s, true
	}
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", false
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		c := s[i]
		switch c {
		case '\\':
			i++
			if i >= len(s)-1 {
				return "", false
			}
			b.WriteByte(s[i])
		case '"':
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// keyword reports whether s is an RFC 8601 Keyword (letters, digits, '-'),
// which methods and results are.
func keyword(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isWSP(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
}
