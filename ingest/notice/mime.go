package notice

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/emersion/go-message"
	// Registers the character sets beyond the contract's (ISO-8859-15,
	// KOI8, ...) with go-message's CharsetReader.
	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
)

// The limits of what Parse reads of one mail. Real mail stays far below
// them (a notice is one or two text parts, a forward chain a few levels);
// a mail beyond them is hostile or broken, and is read no further: it
// becomes an unreadable-mail record, or a notice with a Problem when what
// was read of it is recognisably a notice. The cost of reading a mail is
// linear in its size whatever its shape.
const (
	// MaxDepth bounds how deep multiparts and attached messages nest
	// inside one another.
	MaxDepth = 16
	// MaxParts bounds the MIME parts of the whole mail, the parts of
	// every attached message included.
	MaxParts = 500
	// MaxAttached bounds the attached messages (message/rfc822 parts),
	// at every depth.
	MaxAttached = 20
	// MaxPartBytes bounds the decoded bytes read of one text part; the
	// rest of a longer part is not read, and the notice says so.
	MaxPartBytes = 4 << 20
	// MaxHeaderBytes bounds the header of the mail and of every part.
	MaxHeaderBytes = 1 << 20
	// MaxForwards bounds the messages a notice is forwarded through
	// (attached, or quoted under a forward header block).
	MaxForwards = 8
	// maxBoundary bounds a multipart boundary (RFC 2046 allows 70
	// characters): a longer one would make the boundary search costly.
	maxBoundary = 200
)

// errLimit stops the walk of a mail when a limit is reached; budget.exceeded
// says which.
var errLimit = errors.New("notice: a limit was reached")

// budget is what one Parse may still read: the limits, shared by the mail
// and every message attached to it, and the caller's context.
type budget struct {
	ctx      context.Context
	parts    int
	attached int
	exceeded string // the first limit reached, as a sentence; "" if none
	ticks    int
}

// tick is called in every loop that can be long; every 1024 calls it
// reports whether the context has ended.
func (b *budget) tick() error {
	b.ticks++
	if b.ticks&1023 == 0 {
		return b.ctx.Err()
	}
	return nil
}

func (b *budget) exceed(format string, args ...any) error {
	if b.exceeded == "" {
		b.exceeded = fmt.Sprintf(format, args...)
	}
	return errLimit
}

// bodies holds the text parts of one message (not of attached messages)
// and the messages attached to it.
type bodies struct {
	plain    []string // decoded text/plain parts, format=flowed undone
	html     []string // decoded text/html parts
	attached []attachedMessage
	problems []string // what could not be read, in words
}

// attachedMessage is a message/rfc822 part: the message's bytes (transfer
// encoding undone), its IMAP part number and its MIME depth.
type attachedMessage struct {
	raw   []byte
	part  string
	depth int
}

func (b *bodies) problem(format string, args ...any) {
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

// walker reads the MIME tree of one message into bodies.
type walker struct {
	b   *budget
	out *bodies
}

// walk reads the entity with header h and body at MIME depth depth; num is
// its IMAP part number ("" for the mail itself: its parts are "1", "2",
// ...; an attached message's top entity has the number of its
// message/rfc822 part), top says it is a message's top entity. It returns errLimit when a limit is reached and the
// context's error when it ends; anything else that cannot be read is noted
// in the bodies' problems.
func (w *walker) walk(h textproto.Header, body []byte, depth int, num string, top bool) error {
	if err := w.b.ctx.Err(); err != nil {
		return err
	}
	w.b.parts++
	if w.b.parts > MaxParts {
		return w.b.exceed("the mail has more than %d MIME parts; the parser reads no more than %d", MaxParts, MaxParts)
	}
	if depth > MaxDepth {
		return w.b.exceed("the mail's MIME parts nest more than %d levels deep; the parser reads no deeper", MaxDepth)
	}
	mt, params := contentType(h)
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		boundary := params["boundary"]
		if boundary == "" || len(boundary) > maxBoundary {
			w.out.problem("a %s part has no usable boundary: its parts cannot be read", mt)
			return nil
		}
		sc := partScanner{body: body, delim: []byte("--" + boundary)}
		for i := 1; ; i++ {
			part, ok := sc.next()
			if !ok {
				break
			}
			childNum := strconv.Itoa(i)
			if num != "" {
				childNum = num + "." + childNum
			}
			ph, pbody, err := splitHeader(part)
			if err != nil {
				w.out.problem("the header of MIME part %s cannot be read: %v", childNum, err)
				continue
			}
			if err := w.walk(ph, pbody, depth+1, childNum, false); err != nil {
				return err
			}
		}
	case mt == "message/rfc822" || mt == "message/global":
		if top {
			// A message that is nothing but another message: no mail
			// program forwards so, and IMAP (and internal/mailstore)
			// would number the inner message N.1: not read.
			return nil
		}
		w.b.attached++
		if w.b.attached > MaxAttached {
			return w.b.exceed("the mail has more than %d attached messages; the parser reads no more than %d", MaxAttached, MaxAttached)
		}
		raw, _, problem, err := decodeTransfer(w.b, h, body, -1)
		if err != nil {
			return err
		}
		if problem != "" {
			w.out.problem("the message attached as part %s %s", num, problem)
		}
		if raw == nil {
			return nil
		}
		w.out.attached = append(w.out.attached, attachedMessage{raw: raw, part: num, depth: depth})
	case mt == "text/plain" || mt == "text/html":
		if disp, _, _ := mimeParams(h.Get("Content-Disposition")); disp == "attachment" {
			return nil
		}
		data, cut, problem, err := decodeTransfer(w.b, h, body, MaxPartBytes)
		if err != nil {
			return err
		}
		if problem != "" {
			w.out.problem("a %s part %s", mt, problem)
			if data == nil {
				return nil
			}
		}
		if cut {
			w.out.problem("a %s part is longer than %d MiB: only its first %d MiB were read", mt, MaxPartBytes>>20, MaxPartBytes>>20)
		}
		s, problem := decodeCharset(data, params["charset"])
		if problem != "" {
			w.out.problem("a %s part %s", mt, problem)
		}
		if mt == "text/html" {
			w.out.html = append(w.out.html, s)
		} else {
			if strings.EqualFold(params["format"], "flowed") {
				s = unflow(s, strings.EqualFold(params["delsp"], "yes"))
			}
			w.out.plain = append(w.out.plain, s)
		}
	}
	return w.b.ctx.Err()
}

// contentType returns the entity's media type, lower case (text/plain
// when it has none or it cannot be read), and its parameters.
func contentType(h textproto.Header) (string, map[string]string) {
	mt, params, _ := mimeParams(h.Get("Content-Type"))
	if mt == "" {
		mt = "text/plain"
	}
	return mt, params
}

// mimeParams parses a Content-Type or Content-Disposition value leniently:
// a value whose parameters cannot be read still gives its type.
func mimeParams(v string) (string, map[string]string, error) {
	if v == "" {
		return "", nil, nil
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil && mt == "" {
		t, _, _ := strings.Cut(v, ";")
		mt = strings.ToLower(strings.TrimSpace(t))
	}
	return mt, params, err
}

// partScanner finds the body parts of a multipart body between its
// delimiter lines (RFC 2046 section 5.1.1), one at a time, in one pass
// over the body.
type partScanner struct {
	body    []byte
	delim   []byte // "--" + boundary
	pos     int    // where the search goes on
	start   int    // where the current part's content starts
	started bool   // the first delimiter was looked for
	done    bool
}

// next returns the next body part (its header and content), ok false
// after the last. A body without a closing delimiter ends at the end of
// the body; the preamble and the epilogue are skipped.
func (s *partScanner) next() ([]byte, bool) {
	if s.done {
		return nil, false
	}
	if !s.started {
		s.started = true
		_, after, closing, ok := s.find() // the preamble ends at the first delimiter
		if !ok || closing {
			s.done = true
			return nil, false
		}
		s.start = after
	}
	at, after, closing, ok := s.find()
	if !ok {
		s.done = true
		if s.start >= len(s.body) {
			return nil, false
		}
		return s.body[s.start:], true
	}
	part := s.body[s.start:at]
	// The line break before a delimiter belongs to the delimiter.
	part = bytes.TrimSuffix(part, []byte("\n"))
	part = bytes.TrimSuffix(part, []byte("\r"))
	s.start = after
	s.done = closing
	return part, true
}

// find looks for the next delimiter line from s.pos: at is where the line
// starts, after where the line after it starts; closing tells the closing
// delimiter ("--boundary--").
func (s *partScanner) find() (at, after int, closing, ok bool) {
	for s.pos <= len(s.body) {
		i := bytes.Index(s.body[s.pos:], s.delim)
		if i < 0 {
			s.pos = len(s.body) + 1
			return 0, 0, false, false
		}
		at = s.pos + i
		s.pos = at + len(s.delim)
		if at > 0 && s.body[at-1] != '\n' {
			continue
		}
		rest := s.body[s.pos:]
		eol := bytes.IndexByte(rest, '\n')
		line := rest
		if eol >= 0 {
			line = rest[:eol]
		}
		closing = bytes.HasPrefix(line, []byte("--"))
		if !closing && len(bytes.Trim(line, " \t\r")) != 0 {
			continue // "--boundary" followed by more: not a delimiter
		}
		if eol < 0 {
			after = len(s.body)
		} else {
			after = s.pos + eol + 1
		}
		s.pos = after
		return at, after, closing, true
	}
	return 0, 0, false, false
}

// errHeaderTooBig is returned by splitHeader for a header over
// MaxHeaderBytes.
var errHeaderTooBig = fmt.Errorf("a header is longer than %d KiB", MaxHeaderBytes>>10)

// readers are the buffered readers headers are read with.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// splitHeader reads the header of an entity and returns it with the body
// after the blank line that ends it. An entity without a blank line is all
// header.
func splitHeader(b []byte) (textproto.Header, []byte, error) {
	end, body := headerEnd(b)
	if end < 0 {
		return textproto.Header{}, nil, errHeaderTooBig
	}
	br := readers.Get().(*bufio.Reader)
	br.Reset(bytes.NewReader(b[:end]))
	h, err := textproto.ReadHeader(br)
	br.Reset(nil)
	readers.Put(br)
	if err != nil && err != io.EOF {
		return textproto.Header{}, nil, err
	}
	return h, b[body:], nil
}

// headerEnd returns the length of the header (up to and with the line
// break of its last line) and where the body begins; end is -1 when the
// header is longer than MaxHeaderBytes.
func headerEnd(b []byte) (end, body int) {
	switch {
	case bytes.HasPrefix(b, []byte("\r\n")):
		return 0, 2
	case bytes.HasPrefix(b, []byte("\n")):
		return 0, 1
	}
	i := 0
	for {
		j := bytes.IndexByte(b[i:min(len(b), MaxHeaderBytes+1)], '\n')
		if j < 0 {
			if len(b) > MaxHeaderBytes {
				return -1, 0
			}
			return len(b), len(b)
		}
		i += j + 1
		switch {
		case bytes.HasPrefix(b[i:], []byte("\n")):
			return i, i + 1
		case bytes.HasPrefix(b[i:], []byte("\r\n")):
			return i, i + 2
		}
	}
}

// decodeTransfer undoes the entity's Content-Transfer-Encoding. limit
// bounds the decoded bytes (-1: no bound); cut says the body was longer. A
// body that does not decode whole gives what decoded and a problem (a
// phrase: "has ..."); an unknown encoding gives nil data. err is the
// context's, when it ends.
func decodeTransfer(b *budget, h textproto.Header, body []byte, limit int) (data []byte, cut bool, problem string, err error) {
	cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	var r io.Reader
	switch cte {
	case "", "7bit", "8bit", "binary":
		if limit >= 0 && len(body) > limit {
			return body[:limit], true, "", nil
		}
		return body, false, "", nil
	case "quoted-printable":
		r = quotedprintable.NewReader(bytes.NewReader(body))
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, &noSpace{b: body})
	default:
		return nil, false, fmt.Sprintf("has the unknown transfer encoding %q: its text cannot be decoded", truncate(cte, 40)), nil
	}
	// Neither encoding decodes to more bytes than it has.
	size := len(body)
	if limit >= 0 {
		size = min(size, limit)
	}
	buf := make([]byte, size+1)
	n := 0
	var rerr error
	for n < len(buf) {
		var m int
		m, rerr = r.Read(buf[n:])
		n += m
		if rerr != nil {
			break
		}
		if err := b.tick(); err != nil {
			return nil, false, "", err
		}
	}
	if rerr == io.EOF {
		rerr = nil
	}
	if n > size {
		return buf[:size], limit >= 0, "", nil
	}
	if rerr != nil {
		return buf[:n], false, fmt.Sprintf("has broken %s encoding (%v): it cannot be read whole", cte, rerr), nil
	}
	return buf[:n], false, "", nil
}

// noSpace reads a base64 body without its line breaks and white space.
type noSpace struct{ b []byte }

func (s *noSpace) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && len(s.b) > 0 {
		c := s.b[0]
		s.b = s.b[1:]
		switch c {
		case '\r', '\n', ' ', '\t':
			continue
		}
		p[n] = c
		n++
	}
	if n == 0 && len(s.b) == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// decodeCharset turns text in the charset cs into UTF-8. Text that cannot
// be decoded (bytes that are not in the charset, an unknown charset, the
// replacement character U+FFFD left by an earlier failed conversion) comes
// back with invalid bytes replaced and a problem: names read from it
// cannot be compared.
func decodeCharset(data []byte, cs string) (string, string) {
	name := strings.ToLower(strings.TrimSpace(cs))
	switch name {
	case "iso-8859-1", "iso8859-1", "latin1", "l1", "iso_8859-1", "windows-1252", "cp1252", "x-cp1252":
		return decodeCP1252(data), ""
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		label := name
		if label == "" {
			label = "no charset (US-ASCII)"
		}
		if !utf8.Valid(data) {
			return strings.ToValidUTF8(string(data), "\uFFFD"), fmt.Sprintf("declares %s but holds bytes that are not valid in it: its text cannot be read reliably", label)
		}
		if bytes.Contains(data, []byte("\uFFFD")) {
			return string(data), "holds the replacement character U+FFFD (text lost in an earlier conversion): its text cannot be read reliably"
		}
		return string(data), ""
	}
	if message.CharsetReader == nil {
		return strings.ToValidUTF8(string(data), "\uFFFD"), fmt.Sprintf("has the unknown charset %q: its text cannot be decoded", truncate(cs, 40))
	}
	r, err := message.CharsetReader(name, bytes.NewReader(data))
	if err != nil {
		return strings.ToValidUTF8(string(data), "\uFFFD"), fmt.Sprintf("has the unknown charset %q: its text cannot be decoded", truncate(cs, 40))
	}
	out, err := io.ReadAll(r)
	if err != nil || !utf8.Valid(out) || bytes.Contains(out, []byte("\uFFFD")) {
		return strings.ToValidUTF8(string(out), "\uFFFD"), fmt.Sprintf("holds bytes that are not valid %s: its text cannot be read reliably", truncate(cs, 40))
	}
	return string(out), ""
}

// decodeCP1252 decodes windows-1252, and ISO-8859-1 as windows-1252, as
// browsers and mail programs do: mail labelled ISO-8859-1 often holds
// windows-1252 punctuation (’ € –), and the two agree on every other byte.
func decodeCP1252(data []byte) string {
	ascii := true
	for _, c := range data {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return string(data)
	}
	out := make([]byte, 0, len(data)+len(data)/4)
	for _, c := range data {
		if c < 0x80 {
			out = append(out, c)
		} else {
			out = utf8.AppendRune(out, cp1252Table[c-0x80])
		}
	}
	return string(out)
}

// truncate bounds a value from a mail quoted in a problem.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// normaliseCR turns the line endings of a mail written with bare CRs
// (the first line ends in a CR not followed by LF) into LF, so that it is
// read like any other. Any other mail is returned as it is.
func normaliseCR(raw []byte) []byte {
	i := bytes.IndexAny(raw, "\r\n")
	if i < 0 || raw[i] != '\r' || (i+1 < len(raw) && raw[i+1] == '\n') {
		return raw
	}
	out := make([]byte, len(raw))
	for j, c := range raw {
		if c == '\r' && (j+1 >= len(raw) || raw[j+1] != '\n') {
			c = '\n'
		}
		out[j] = c
	}
	return out
}
