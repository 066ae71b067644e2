// Package mailstore reads back the mails the pipeline took in, byte for
// byte: a mail travels in its mail-received event in the notices stream
// (or, when large, in the mail object store, which the event names). A
// stage that needs an original (the escalation forwards the notice as it
// came) reads it here, by the event's stream sequence that every case and
// quarantine record keeps.
package mailstore

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

	"github.com/emersion/go-message/textproto"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// ErrNotFound is returned when the stream or the object store no longer
// holds a mail (or never did).
var ErrNotFound = errors.New("mailstore: mail not found")

// Store reads mails. It is safe for concurrent use.
type Store struct {
	notices jetstream.Stream
	objects jetstream.ObjectStore
}

// Open returns a store on the pipeline's notices stream and mail object
// store, which must exist (pipeline.EnsureStreams).
func Open(ctx context.Context, js jetstream.JetStream) (*Store, error) {
	st, err := js.Stream(ctx, pipeline.StreamNotices)
	if err != nil {
		return nil, fmt.Errorf("mailstore: open stream %s: %w (has `eiamtriage serve` created the streams?)", pipeline.StreamNotices, err)
	}
	obj, err := js.ObjectStore(ctx, pipeline.BucketMail)
	if err != nil {
		return nil, fmt.Errorf("mailstore: open object store %s: %w", pipeline.BucketMail, err)
	}
	return &Store{notices: st, objects: obj}, nil
}

// Mail returns the raw mail mailID whose mail-received event is message
// seq of the notices stream. It checks that the bytes are that mail.
func (s *Store) Mail(ctx context.Context, seq uint64, mailID string) ([]byte, error) {
	msg, err := s.notices.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: mail %s (message %d of %s is gone)", ErrNotFound, mailID, seq, pipeline.StreamNotices)
	}
	if err != nil {
		return nil, fmt.Errorf("mailstore: read message %d of %s: %w", seq, pipeline.StreamNotices, err)
	}
	var mr event.MailReceived
	if _, err := event.ParseInto(msg.Data, &mr); err != nil {
		return nil, fmt.Errorf("mailstore: message %d of %s: %w", seq, pipeline.StreamNotices, err)
	}
	if mr.MailID != mailID {
		return nil, fmt.Errorf("%w: message %d of %s is mail %s, not %s", ErrNotFound, seq, pipeline.StreamNotices, mr.MailID, mailID)
	}
	return s.Raw(ctx, mr)
}

// Raw returns the raw mail of a mail-received event: carried in it, or
// read from the object store. It checks that the bytes are the mail.
func (s *Store) Raw(ctx context.Context, mr event.MailReceived) ([]byte, error) {
	raw := mr.Raw
	if mr.Object != "" {
		b, err := s.objects.GetBytes(ctx, mr.Object)
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return nil, fmt.Errorf("%w: mail %s (%s) is not in the object store %s", ErrNotFound, mr.MailID, mr.Source, pipeline.BucketMail)
		}
		if err != nil {
			return nil, fmt.Errorf("mailstore: read mail %s from %s: %w", mr.MailID, pipeline.BucketMail, err)
		}
		raw = b
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: the event of mail %s (%s) carries neither the mail nor an object name", ErrNotFound, mr.MailID, mr.Source)
	}
	if got := event.MailID(raw); got != mr.MailID {
		return nil, fmt.Errorf("mailstore: mail %s (%s) has the hash %s: the stored copy is corrupt", mr.MailID, mr.Source, got)
	}
	return raw, nil
}

// Notice returns the bytes of the notice itself that ref recorded: the
// whole mail for a notice delivered directly or quoted inline, the
// attached message for an attached forward (ref.Part).
func (s *Store) Notice(ctx context.Context, ref event.NoticeRef) ([]byte, error) {
	raw, err := s.Mail(ctx, ref.ReceivedSeq, ref.MailID)
	if err != nil || ref.Part == "" {
		return raw, err
	}
	return Part(raw, ref.Part)
}

// maxPartDepth bounds Part's descent.
const maxPartDepth = 32

// Part returns the body of the MIME part numbered part in raw, decoded
// from its transfer encoding: for a message/rfc822 part, the attached
// message byte for byte. Parts are numbered as IMAP numbers them (RFC 3501,
// section 6.4.5): "2" is the second part of the top multipart, "2.1" the
// first part of the multipart inside the message attached as part 2 (or
// of the multipart part 2 itself).
func Part(raw []byte, part string) ([]byte, error) {
	nums := strings.Split(part, ".")
	if len(nums) > maxPartDepth {
		return nil, fmt.Errorf("mailstore: part %q is deeper than %d levels", part, maxPartDepth)
	}
	cur := raw
	for i, s := range nums {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("mailstore: part %q: %q is not a part number", part, s)
		}
		hdr, body, err := split(cur)
		if err != nil {
			return nil, fmt.Errorf("mailstore: part %q: %w", strings.Join(nums[:i], "."), err)
		}
		mt, params, _ := mime.ParseMediaType(hdr.Get("Content-Type"))
		if mt == "message/rfc822" {
			// Inside an attached message: its own top part.
			if hdr, body, err = split(decode(hdr, body)); err != nil {
				return nil, fmt.Errorf("mailstore: part %q: the attached message: %w", strings.Join(nums[:i], "."), err)
			}
			mt, params, _ = mime.ParseMediaType(hdr.Get("Content-Type"))
		}
		if !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" {
			return nil, fmt.Errorf("mailstore: part %q: %s is not a multipart", part, mt)
		}
		sub, err := nth(body, params["boundary"], n)
		if err != nil {
			return nil, fmt.Errorf("mailstore: part %q: %w", strings.Join(nums[:i+1], "."), err)
		}
		cur = sub
	}
	hdr, body, err := split(cur)
	if err != nil {
		return nil, fmt.Errorf("mailstore: part %q: %w", part, err)
	}
	return decode(hdr, body), nil
}

// split reads an entity's header and returns it with the body after the
// blank line that ends it.
func split(b []byte) (textproto.Header, []byte, error) {
	end, skip := headerEnd(b)
	if end < 0 {
		return textproto.Header{}, nil, errors.New("the header has no end (no blank line)")
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(b[:end+skip])))
	if err != nil {
		return textproto.Header{}, nil, fmt.Errorf("header: %w", err)
	}
	return h, b[end+skip:], nil
}

// headerEnd returns where the blank line that ends the header begins and
// how long the line break before it and itself are; -1 when there is none.
func headerEnd(b []byte) (int, int) {
	if bytes.HasPrefix(b, []byte("\r\n")) {
		return 0, 2
	}
	if bytes.HasPrefix(b, []byte("\n")) {
		return 0, 1
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		switch {
		case bytes.HasPrefix(b[i+1:], []byte("\r\n")):
			return i + 1, 2
		case bytes.HasPrefix(b[i+1:], []byte("\n")):
			return i + 1, 1
		}
	}
	return -1, 0
}

// nth returns the n-th body part (header and content) between boundary
// delimiter lines.
func nth(body []byte, boundary string, n int) ([]byte, error) {
	delim := []byte("--" + boundary)
	var starts []int
	pos := 0
	for pos <= len(body) {
		i := bytes.Index(body[pos:], delim)
		if i < 0 {
			break
		}
		at := pos + i
		after := at + len(delim)
		line := body[after:]
		if eol := bytes.IndexByte(line, '\n'); eol >= 0 {
			line = line[:eol]
		}
		// A delimiter line is the boundary alone (or closing with "--"):
		// "--b10" is no delimiter of the boundary "b1".
		delimiter := bytes.HasPrefix(line, []byte("--")) || len(bytes.Trim(line, " \t\r")) == 0
		if delimiter && (at == 0 || body[at-1] == '\n') {
			if bytes.HasPrefix(body[after:], []byte("--")) {
				starts = append(starts, -at) // the closing delimiter
				break
			}
			starts = append(starts, at)
		}
		pos = at + len(delim)
	}
	count := 0
	for k, st := range starts {
		if st < 0 {
			break
		}
		count++
		if count != n {
			continue
		}
		begin := st + len(delim)
		if e := bytes.IndexByte(body[begin:], '\n'); e >= 0 {
			begin += e + 1
		} else {
			return nil, fmt.Errorf("part %d has no content", n)
		}
		end := len(body)
		if k+1 < len(starts) {
			end = starts[k+1]
			if end < 0 {
				end = -end
			}
		}
		// The line break before a delimiter belongs to the delimiter.
		part := body[begin:end]
		part = bytes.TrimSuffix(part, []byte("\n"))
		part = bytes.TrimSuffix(part, []byte("\r"))
		return part, nil
	}
	return nil, fmt.Errorf("there are %d parts, not %d", count, n)
}

// decode undoes the content transfer encoding of body; a body that does
// not decode is returned as it is.
func decode(h textproto.Header, body []byte) []byte {
	var r io.Reader
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, &skipSpace{r: bytes.NewReader(body)})
	case "quoted-printable":
		r = quotedprintable.NewReader(bytes.NewReader(body))
	default:
		return body
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return body
	}
	return out
}

// skipSpace drops the line breaks and white space of a base64 body.
type skipSpace struct{ r io.ByteReader }

func (s *skipSpace) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c, err := s.r.ReadByte()
		if err != nil {
			return n, err
		}
		if c == '\r' || c == '\n' || c == ' ' || c == '\t' {
			continue
		}
		p[n] = c
		n++
	}
	return n, nil
}
