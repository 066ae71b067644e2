package trust

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// Address folds an e-mail address for comparison: ASCII letters to lower
// case, nothing else. Unicode case folding is deliberately not applied:
// strings.ToLower maps the Turkish dotted capital İ (U+0130) to "i", which
// would make "noreply@eİam.admİn.ch" equal to the eIAM sender.
//
// ok is false, and folded "", unless s is exactly one '@' between a
// non-empty local part and a domain of at least two dot-separated labels of
// ASCII letters, digits and '-' (no empty label, no trailing dot, no domain
// literal), and s holds no white space, control character or non-ASCII
// byte. Such an address is never an eIAM sender nor a superuser.
func Address(s string) (folded string, ok bool) {
	at := strings.IndexByte(s, '@')
	if at <= 0 || strings.IndexByte(s[at+1:], '@') >= 0 {
		return "", false
	}
	for i := 0; i < at; i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return "", false
		}
	}
	if !validDomain(s[at+1:]) {
		return "", false
	}
	return asciiLower(s), true
}

// foldDomain folds a domain name the way Address folds the domain part of an
// address; ok is false for anything that is not a valid ASCII domain of at
// least two labels.
func foldDomain(s string) (string, bool) {
	if !validDomain(s) {
		return "", false
	}
	return asciiLower(s), true
}

func validDomain(d string) bool {
	if len(d) == 0 || len(d) > 253 {
		return false
	}
	labels, n := 0, 0
	for i := 0; i <= len(d); i++ {
		if i == len(d) || d[i] == '.' {
			if n == 0 || n > 63 {
				return false
			}
			labels++
			n = 0
			continue
		}
		c := d[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
		n++
	}
	return labels >= 2
}

// asciiLower lower-cases ASCII letters only; it returns s itself when there
// is nothing to change.
func asciiLower(s string) string {
	i := 0
	for i < len(s) && !(s[i] >= 'A' && s[i] <= 'Z') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if c := b[i]; c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// domainOf returns the domain of a folded address.
func domainOf(addr string) string {
	return addr[strings.LastIndexByte(addr, '@')+1:]
}

// orgDomain returns the organisational domain of a folded domain (RFC 7489
// section 3.2: the public suffix plus one label), or "" when d is a public
// suffix itself or not a domain.
func orgDomain(d string) string {
	od, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return ""
	}
	return od
}

// aligned reports whether the domain d (as written in a header: it is
// validated and folded here) is in relaxed alignment (RFC 7489 section
// 3.1.1) with the folded domain from: both have the same organisational
// domain. A non-ASCII or otherwise invalid d is never aligned.
func aligned(d, from string) bool {
	fd, ok := foldDomain(d)
	if !ok {
		return false
	}
	od := orgDomain(fd)
	return od != "" && od == orgDomain(from)
}

// fold folds a list of addresses; the invalid ones are left out.
func fold(list []string) []string {
	out := make([]string, 0, len(list))
	for _, a := range list {
		if f, ok := Address(strings.TrimSpace(a)); ok {
			out = append(out, f)
		}
	}
	return out
}

func contains(list []string, folded string) bool {
	for _, a := range list {
		if a == folded {
			return true
		}
	}
	return false
}

// maxQuoted bounds a value quoted into a reason: a hostile header must not
// make a record huge.
const maxQuoted = 200

// quote renders a value from a mail (an address, a header value) for a
// reason: quoted, every non-ASCII or control character escaped, cut after
// maxQuoted bytes.
func quote(s string) string {
	if len(s) > maxQuoted {
		return strconv.QuoteToASCII(s[:maxQuoted]) + "..."
	}
	return strconv.QuoteToASCII(s)
}

// maxListed bounds the values of one list named in a reason.
const maxListed = 8

// quoteList renders a list of values with quote, comma separated, at most
// maxListed of them.
func quoteList(list []string) string {
	n := min(len(list), maxListed)
	q := make([]string, n, n+1)
	for i, s := range list[:n] {
		q[i] = quote(s)
	}
	if len(list) > n {
		q = append(q, fmt.Sprintf("and %d more", len(list)-n))
	}
	return strings.Join(q, ", ")
}
