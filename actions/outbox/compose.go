package outbox

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
)

// The kinds of mail the service sends (Message.Kind, X-Eiamtriage-Kind).
const (
	KindEscalation = "escalation"
	KindUserMail   = "user-mail"
	KindAlert      = "alert"
	KindSummary    = "summary"
	KindDraft      = "draft"
	KindDecision   = "decision"
)

// Header names Compose sets on every mail. HeaderOwn carries the mail's
// ledger id; the notice parser's default own-mail header is this name, so
// that a copy of the service's own mail that comes back is never taken for
// a notice.
const (
	HeaderOwn  = "X-Eiamtriage"
	HeaderKind = "X-Eiamtriage-Kind"
	HeaderCase = "X-Eiamtriage-Case"
)

// Message is one mail to send, before composition.
type Message struct {
	// ID is the stable id of this mail for its fact, such as
	// "escalation.p.123.<mail id>": letters, digits, '-', '_' and single
	// dots between them, at most MaxIDLength. The same fact always gives
	// the same ID (a retry, a redelivery, a duplicate notice), and the
	// Message-ID is derived from it: <ID@the domain of From>.
	ID string
	// Kind is one of the Kind constants (any lower-case token is
	// accepted): it becomes X-Eiamtriage-Kind.
	Kind string
	// Case is the case id ("" for a summary): X-Eiamtriage-Case.
	Case string
	// Mailbox is the configured mailbox the mail concerns (ledger only).
	Mailbox string
	// To, Cc and ReplyTo are addresses, plain (a@b.ch) or with a display
	// name ("Anna Muster <a@b.ch>"). To needs at least one; the envelope
	// recipients are To and Cc.
	To, Cc, ReplyTo []string
	Subject         string
	// Text is the text/plain body (required); HTML the text/html one (""
	// gives a text-only mail).
	Text, HTML string
	// Urgent sets Importance: high and X-Priority: 1.
	Urgent bool
	// Attachment, when not nil, is attached after the text.
	Attachment *Attachment
}

// Attachment is a message attached as message/rfc822, byte for byte.
//
// RFC 2046 forbids base64 on message/rfc822, so the original travels
// unencoded (Content-Transfer-Encoding 7bit or 8bit, as it is). That keeps
// it byte for byte only when it is valid SMTP text: every line ends in
// CRLF and is at most 998 octets long, and there is no NUL, bare CR or
// bare LF (go-message would re-wrap long lines, and SMTP turns a bare LF
// into CRLF). An original that is not (a saved .eml file with LF line
// ends, a line of 2000 characters) is attached as
// application/octet-stream in base64 instead, with its Filename: its
// bytes arrive unchanged, and the recipient opens it as a file. See
// Transportable.
type Attachment struct {
	// Filename names the attachment ("notice.eml" when empty).
	Filename string
	// Raw is the message, byte for byte.
	Raw []byte
}

// MaxIDLength bounds Message.ID.
const MaxIDLength = 200

var (
	idRE   = regexp.MustCompile(`^[-_a-zA-Z0-9]+(\.[-_a-zA-Z0-9]+)*$`)
	kindRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
)

// ErrInvalid marks a Message that can never be composed (a bad id, an
// address that is not one, a header with a line break); errors.Is finds
// it in Compose's and Enqueue's errors.
var ErrInvalid = errors.New("invalid message")

// ValidID reports whether id can name a mail: see Message.ID.
func ValidID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("outbox: %w: empty id; derive it from the case and the action, such as escalation.p.123", ErrInvalid)
	case len(id) > MaxIDLength:
		return fmt.Errorf("outbox: %w: id of %d bytes, at most %d allowed", ErrInvalid, len(id), MaxIDLength)
	case !idRE.MatchString(id):
		return fmt.Errorf("outbox: %w: id %+q: use letters, digits, '-', '_' and single dots between them", ErrInvalid, id)
	}
	return nil
}

// Compose renders m as RFC 5322 bytes, with CRLF line ends: From (from,
// such as "eiamtriage <triage@be.ch>"), To, Cc, Reply-To, Subject (RFC
// 2047 where it is not ASCII), Date (now), the Message-ID <m.ID@domain of
// from>, Auto-Submitted: auto-generated, X-Loop (from's address),
// X-Auto-Response-Suppress: All, X-Eiamtriage (m.ID), X-Eiamtriage-Kind,
// X-Eiamtriage-Case, MIME-Version; a text/plain part, or
// multipart/alternative text and HTML, inside multipart/mixed with the
// attachment when there is one. Text parts are quoted-printable UTF-8.
//
// Compose is pure and deterministic: the same m, from and now give the
// same bytes (the MIME boundaries are derived from the content). Its
// errors wrap ErrInvalid.
func Compose(m Message, from string, now time.Time) ([]byte, error) {
	var b bytes.Buffer
	if err := compose(&b, m, from, now); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func compose(w *bytes.Buffer, m Message, from string, now time.Time) error {
	if err := checkMessage(m); err != nil {
		return err
	}
	fromAddr, err := parseAddress(from)
	if err != nil {
		return fmt.Errorf("outbox: %w: sender (smtp.from) %+q: %v", ErrInvalid, from, err)
	}
	domain := fromAddr.Address[strings.LastIndexByte(fromAddr.Address, '@')+1:]
	to, err := parseAddresses("To", m.ID, m.To)
	if err != nil {
		return err
	}
	cc, err := parseAddresses("Cc", m.ID, m.Cc)
	if err != nil {
		return err
	}
	replyTo, err := parseAddresses("Reply-To", m.ID, m.ReplyTo)
	if err != nil {
		return err
	}

	// go-message writes header fields in the reverse order of adding:
	// fields holds them in the order they appear, added at the end.
	var fields [][2]string
	add := func(k, v string) { fields = append(fields, [2]string{k, v}) }
	var h mail.Header
	add("Date", now.Format(time.RFC1123Z))
	add("From", fromAddr.String())
	add("To", formatList(to))
	if len(cc) > 0 {
		add("Cc", formatList(cc))
	}
	if len(replyTo) > 0 {
		add("Reply-To", formatList(replyTo))
	}
	h.SetText("Subject", m.Subject)
	add("Subject", h.Get("Subject"))
	add("Message-Id", "<"+m.ID+"@"+domain+">")
	add("Auto-Submitted", "auto-generated")
	add("X-Loop", fromAddr.Address)
	add("X-Auto-Response-Suppress", "All")
	if m.Urgent {
		add("Importance", "high")
		add("X-Priority", "1")
	}
	add(HeaderOwn, m.ID)
	add(HeaderKind, m.Kind)
	if m.Case != "" {
		add(HeaderCase, m.Case)
	}
	add("MIME-Version", "1.0")

	seed := boundarySeed(m)
	var top message.Header
	for i := len(fields) - 1; i >= 0; i-- {
		top.Add(fields[i][0], fields[i][1])
	}
	switch {
	case m.Attachment != nil:
		top.SetContentType("multipart/mixed", map[string]string{"boundary": boundary(seed, "mixed", m)})
	case m.HTML != "":
		top.SetContentType("multipart/alternative", map[string]string{"boundary": boundary(seed, "alt", m)})
	default:
		setTextPart(&top, "text/plain")
	}
	mw, err := message.CreateWriter(w, top)
	if err != nil {
		return fmt.Errorf("outbox: compose %s: %w", m.ID, err)
	}
	if m.Attachment == nil && m.HTML == "" {
		if _, err := mw.Write([]byte(m.Text)); err != nil {
			return err
		}
		return mw.Close()
	}
	body := mw
	if m.Attachment != nil && m.HTML != "" {
		var ah message.Header
		ah.SetContentType("multipart/alternative", map[string]string{"boundary": boundary(seed, "alt", m)})
		if body, err = mw.CreatePart(ah); err != nil {
			return fmt.Errorf("outbox: compose %s: %w", m.ID, err)
		}
	}
	if err := writeText(body, "text/plain", m.Text); err != nil {
		return err
	}
	if m.HTML != "" {
		if err := writeText(body, "text/html", m.HTML); err != nil {
			return err
		}
		if body != mw {
			if err := body.Close(); err != nil {
				return err
			}
		}
	}
	if m.Attachment != nil {
		if err := writeAttachment(mw, m.Attachment); err != nil {
			return fmt.Errorf("outbox: compose %s: attachment: %w", m.ID, err)
		}
	}
	return mw.Close()
}

func setTextPart(h *message.Header, mediaType string) {
	h.SetContentType(mediaType, map[string]string{"charset": "utf-8"})
	h.Set("Content-Transfer-Encoding", "quoted-printable")
}

func writeText(mw *message.Writer, mediaType, text string) error {
	var h message.Header
	setTextPart(&h, mediaType)
	pw, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := pw.Write([]byte(text)); err != nil {
		return err
	}
	return pw.Close()
}

func writeAttachment(mw *message.Writer, a *Attachment) error {
	name := a.Filename
	if name == "" {
		name = "notice.eml"
	}
	var h message.Header
	enc := Transportable(a.Raw)
	if enc != "" {
		h.SetContentType("message/rfc822", nil)
		h.Set("Content-Transfer-Encoding", enc)
		h.Set("Content-Description", "the original message, unchanged")
	} else {
		h.SetContentType("application/octet-stream", map[string]string{"name": name})
		h.Set("Content-Transfer-Encoding", "base64")
		h.Set("Content-Description", "the original message, unchanged (as a file: its lines are not valid for message/rfc822)")
	}
	h.SetContentDisposition("attachment", map[string]string{"filename": name})
	pw, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := pw.Write(a.Raw); err != nil {
		return err
	}
	return pw.Close()
}

// Transportable returns the Content-Transfer-Encoding under which raw
// travels through SMTP unchanged as a message/rfc822 part: "7bit" (ASCII
// only) or "8bit"; "" when it cannot, because it holds a NUL, a CR not
// followed by LF, an LF not preceded by CR, or a line longer than 998
// octets (without its CRLF). A last line without a line end is allowed.
func Transportable(raw []byte) string {
	enc := "7bit"
	line := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '\r':
			if i+1 >= len(raw) || raw[i+1] != '\n' {
				return ""
			}
			i++
			line = 0
			continue
		case c == '\n' || c == 0:
			return ""
		case c >= 0x80:
			enc = "8bit"
		}
		line++
		if line > 998 {
			return ""
		}
	}
	return enc
}

func checkMessage(m Message) error {
	if err := ValidID(m.ID); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("outbox: %w: mail %s: %s", ErrInvalid, m.ID, fmt.Sprintf(format, args...))
	}
	if !kindRE.MatchString(m.Kind) {
		return bad("kind %+q: use a lower-case word such as %s or %s", m.Kind, KindEscalation, KindAlert)
	}
	if len(m.To) == 0 {
		return bad("no recipient in To")
	}
	if m.Text == "" {
		return bad("empty text body: every mail has a text/plain part")
	}
	for name, v := range map[string]string{"subject": m.Subject, "case": m.Case} {
		if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
			return bad("the %s holds the control character %+q at byte %d (a line break would start a header of its own)", name, v[i], i)
		}
	}
	if !strings.ContainsFunc(m.Subject, func(r rune) bool { return !unicode.IsSpace(r) }) {
		return bad("empty subject")
	}
	if !isValidUTF8(m.Subject + m.Text + m.HTML + m.Case) {
		return bad("the subject, a body or the case is not valid UTF-8")
	}
	return nil
}

func isValidUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// parseAddress reads one address, plain or with a display name, and
// insists on a domain with a dot.
func parseAddress(s string) (*mail.Address, error) {
	if strings.ContainsFunc(s, unicode.IsControl) {
		return nil, errors.New("holds a control character")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("not an address: %v", err)
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at <= 0 || !strings.Contains(a.Address[at+1:], ".") || strings.ContainsFunc(a.Address, func(r rune) bool { return r > 0x7e || r <= ' ' }) {
		return nil, fmt.Errorf("%+q is not name@domain in ASCII", a.Address)
	}
	return a, nil
}

func parseAddresses(field, id string, list []string) ([]*mail.Address, error) {
	out := make([]*mail.Address, 0, len(list))
	for i, s := range list {
		a, err := parseAddress(s)
		if err != nil {
			return nil, fmt.Errorf("outbox: %w: mail %s: %s[%d] %+q: %v", ErrInvalid, id, field, i, s, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func formatList(l []*mail.Address) string {
	s := make([]string, len(l))
	for i, a := range l {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// boundarySeed hashes everything the mail's parts contain, so that a
// boundary derived from it is both deterministic and, in practice, absent
// from the content.
func boundarySeed(m Message) []byte {
	h := sha256.New()
	for _, s := range []string{m.ID, m.Text, m.HTML} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	if m.Attachment != nil {
		h.Write(m.Attachment.Raw)
	}
	return h.Sum(nil)
}

// boundary returns the boundary of one multipart level. "=_" cannot occur
// in quoted-printable or base64 text; the attachment, sent as it is, is
// checked and the boundary changed in the unlikely case it holds it.
func boundary(seed []byte, level string, m Message) string {
	for n := 0; ; n++ {
		sum := sha256.Sum256(fmt.Appendf(append([]byte(nil), seed...), "%s.%d", level, n))
		b := "=_eiam_" + level + "_" + hex.EncodeToString(sum[:12])
		if m.Attachment == nil || !bytes.Contains(m.Attachment.Raw, []byte(b)) {
			return b
		}
	}
}
