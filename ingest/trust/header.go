package trust

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/mail"

	"github.com/emersion/go-message/textproto"
)

// maxHeader bounds the outer header Check reads. A mail whose header is
// longer is not read: its senders cannot all be seen.
const maxHeader = 1 << 20

// readOuter reads the outer header of raw, which must end within maxHeader
// bytes (a mail without body may end without the blank line).
func readOuter(raw []byte) (textproto.Header, error) {
	n := headerLen(raw)
	hdr := raw
	switch {
	case n > maxHeader || n < 0 && len(raw) > maxHeader:
		return textproto.Header{}, fmt.Errorf("the header is longer than %d bytes", maxHeader)
	case n >= 0:
		hdr = raw[:n]
	default:
		// No blank line: the whole mail is a header. End it, so that the
		// last field is not lost to io.EOF.
		hdr = append(append(make([]byte, 0, len(raw)+4), raw...), "\r\n\r\n"...)
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(hdr)))
	if err != nil {
		return textproto.Header{}, err
	}
	return h, nil
}

// headerLen returns the length of the header of raw up to and including
// the blank line that ends it, or -1 when there is none.
func headerLen(raw []byte) int {
	switch {
	case bytes.HasPrefix(raw, []byte("\r\n")):
		return 2
	case bytes.HasPrefix(raw, []byte("\n")):
		return 1
	}
	for i := 0; ; {
		j := bytes.IndexByte(raw[i:], '\n')
		if j < 0 {
			return -1
		}
		k := i + j + 1
		switch {
		case k < len(raw) && raw[k] == '\n':
			return k + 1
		case k+1 < len(raw) && raw[k] == '\r' && raw[k+1] == '\n':
			return k + 2
		}
		i = k
	}
}

// singleFrom returns the folded address of the header's one From field
// holding one address, or a problem saying why there is no such address.
func singleFrom(h textproto.Header) (from, problem string) {
	vs := h.Values("From")
	switch len(vs) {
	case 0:
		return "", "the mail has no From field"
	case 1:
	default:
		return "", fmt.Sprintf("the mail has %d From fields (%s): which one the mail program shows is anybody's guess", len(vs), quoteList(vs))
	}
	v := vs[0]
	if listOrGroup(v) {
		return "", fmt.Sprintf("the From field %s is a list or a group, not exactly one address", quote(v))
	}
	a, err := addressParser().Parse(v)
	if err != nil {
		return "", fmt.Sprintf("the From field %s cannot be read as one address (%s)", quote(v), quote(err.Error()))
	}
	f, ok := Address(a.Address)
	if !ok {
		return "", fmt.Sprintf("the From address %s is not a plain ASCII address (one '@', a domain with a dot, no space or control character)", quote(a.Address))
	}
	return f, ""
}

// addressParser reads addresses without caring about the charset of a
// display name: only the address counts, and an unknown charset must not
// make a From unreadable.
func addressParser() *mail.AddressParser {
	return &mail.AddressParser{WordDecoder: &mime.WordDecoder{
		CharsetReader: func(_ string, input io.Reader) (io.Reader, error) { return input, nil },
	}}
}

// listOrGroup reports whether a From value holds a ',' (a list), a ':' or
// ';' (a group, or an obsolete route) outside quoted strings and comments.
// net/mail reads a group as the addresses in it, so this is checked first.
func listOrGroup(v string) bool {
	depth := 0
	inQuote := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && (depth > 0 || inQuote):
			i++
		case depth > 0:
			switch c {
			case '(':
				depth++
			case ')':
				depth--
			}
		case inQuote:
			if c == '"' {
				inQuote = false
			}
		default:
			switch c {
			case '"':
				inQuote = true
			case '(':
				depth = 1
			case ',', ':', ';':
				return true
			}
		}
	}
	return false
}
