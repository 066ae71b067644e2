package notice

import (
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"golang.org/x/text/encoding/charmap"
)

// The notices come in UTF-8, ISO-8859-1 or windows-1252. go-message's
// charset package decodes the last two through x/text's transformers,
// which cost two 4 KiB buffers a part; this reader decodes them directly.
// ISO-8859-1 is read as windows-1252, as browsers and mail programs do:
// mail labelled ISO-8859-1 often holds windows-1252 punctuation (’ € –),
// and the two agree on every other byte. Every other charset goes to the
// charset package.
func init() {
	base := message.CharsetReader
	message.CharsetReader = func(charset string, input io.Reader) (io.Reader, error) {
		switch strings.ToLower(strings.TrimSpace(charset)) {
		case "iso-8859-1", "iso8859-1", "latin1", "l1", "iso_8859-1", "windows-1252", "cp1252", "x-cp1252", "us-ascii", "ascii":
			return &cp1252Reader{src: input}, nil
		}
		if base == nil {
			return nil, errUnknownCharset(charset)
		}
		return base(charset, input)
	}
}

type errUnknownCharset string

func (e errUnknownCharset) Error() string { return "notice: unknown charset " + string(e) }

// cp1252Table maps windows-1252 bytes from 0x80 to runes.
var cp1252Table = func() (t [128]rune) {
	dec := charmap.Windows1252
	for i := range t {
		t[i] = dec.DecodeByte(byte(0x80 + i))
	}
	return t
}()

type cp1252Reader struct {
	src     io.Reader
	buf     [512]byte
	pending []byte
	out     []byte
	err     error
}

func (r *cp1252Reader) Read(p []byte) (int, error) {
	for len(r.pending) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		n, err := r.src.Read(r.buf[:])
		r.err = err
		out := r.out[:0]
		for _, c := range r.buf[:n] {
			if c < 0x80 {
				out = append(out, c)
			} else {
				out = utf8.AppendRune(out, cp1252Table[c-0x80])
			}
		}
		r.out, r.pending = out, out
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}
