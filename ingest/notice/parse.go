package notice

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
)

// Options tune a Parser beyond the wording. A nil *Options means defaults.
type Options struct {
	// OwnAddresses are the service's own sender addresses: mail from them
	// coming back is never a notice.
	OwnAddresses []string
	// OwnHeader names the header the service sets on every mail it sends
	// (default "X-Eiamtriage"); mail carrying it is never a notice.
	OwnHeader string
	// Location is the time zone of the "signed in at" row (default
	// Europe/Zurich).
	Location *time.Location
}

// Parser reads notices. It is immutable once built and safe for concurrent
// use.
type Parser struct {
	langs      []*lang
	trusted    map[string]bool
	own        map[string]bool
	ownHeader  string
	prefixes   []string
	markers    []string
	fwdFrom    map[string]bool
	fwdSubject map[string]bool
	fwdOther   map[string]bool
	loc        *time.Location
}

// NewParser builds a parser for the wording w. It fails when w is not valid
// (see Wording.Validate).
func NewParser(w config.Wording, opts *Options) (*Parser, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &Options{}
	}
	p := &Parser{
		trusted:    map[string]bool{},
		own:        map[string]bool{},
		ownHeader:  opts.OwnHeader,
		fwdFrom:    keySet(w.Forward.FromLabels),
		fwdSubject: keySet(w.Forward.SubjectLabels),
		fwdOther:   keySet(w.Forward.OtherLabels),
		loc:        opts.Location,
	}
	if p.ownHeader == "" {
		p.ownHeader = "X-Eiamtriage"
	}
	if p.loc == nil {
		loc, err := time.LoadLocation("Europe/Zurich")
		if err != nil {
			return nil, fmt.Errorf("notice: time zone Europe/Zurich is not available (%v): link time/tzdata into the binary or install tzdata", err)
		}
		p.loc = loc
	}
	for _, a := range w.TrustedSenders {
		p.trusted[foldASCII(strings.TrimSpace(a))] = true
	}
	for _, a := range opts.OwnAddresses {
		p.own[foldASCII(strings.TrimSpace(a))] = true
	}
	for _, pr := range w.ForwardPrefixes {
		p.prefixes = append(p.prefixes, strings.ToLower(strings.TrimSpace(pr)))
	}
	for _, m := range w.Forward.Markers {
		p.markers = append(p.markers, labelKey(m))
	}
	for _, l := range w.Languages {
		p.langs = append(p.langs, compileLang(l))
	}
	return p, nil
}

// MustParser is NewParser for a wording known to be valid, such as
// DefaultWording(); it panics otherwise.
func MustParser(w config.Wording, opts *Options) *Parser {
	p, err := NewParser(w, opts)
	if err != nil {
		panic(err)
	}
	return p
}

// Parse reads one raw RFC 5322 message.
//
// It returns a *Notice when the message is a mismatch notice sent by a
// trusted eIAM sender, directly or forwarded (inline or attached; the
// forwarder is not checked here: see Notice.Forwarder). A notice that is
// recognisably one but cannot be fully read comes back with Problems set.
//
// It returns an error matching ErrNotANotice (a *NotANoticeError with the
// reason) for every other message; a message beyond the parser's limits
// (MaxDepth, MaxParts, MaxAttached, MaxHeaderBytes) that is not
// recognisably a notice is one of kind "unreadable-mail". It returns
// another error only when the message cannot be read as a message at all
// (no header), or when ctx ends before the message is read: then the
// error matches ctx.Err(). The cost is linear in len(raw) whatever the
// message's shape, and ctx is checked at every MIME part and in every long
// loop.
func (p *Parser) Parse(ctx context.Context, raw []byte) (*event.Notice, error) {
	b := &budget{ctx: ctx}
	n, err := p.parse(b, normaliseCR(raw), 0, "", 0)
	if cerr := ctx.Err(); cerr != nil {
		return nil, fmt.Errorf("notice: reading the mail stopped before its end: %w", cerr)
	}
	return n, err
}

type header struct {
	from      string
	to        []string
	subject   string
	messageID string
	h         mail.Header
}

// date is read only for a notice: parsing dates of every mail costs more
// than the rest of the header.
func (hd header) date() time.Time {
	v := strings.TrimSpace(hd.h.Get("Date"))
	if t, err := time.Parse(time.RFC1123Z, v); err == nil {
		return t
	}
	t, _ := hd.h.Date()
	return t
}

func readHeader(h mail.Header) header {
	hd := header{h: h}
	// Exactly one well-formed sender address, or none: a From that does
	// not parse, names several addresses, or stands twice in the header,
	// is never a trusted sender
	// (an address in a display name must not pass for the sender).
	if addrs, err := h.AddressList("From"); err == nil && len(addrs) == 1 && len(h.Values("From")) == 1 {
		hd.from = foldASCII(addrs[0].Address)
	}
	if addrs, err := h.AddressList("To"); err == nil {
		for _, a := range addrs {
			hd.to = append(hd.to, foldASCII(a.Address))
		}
	}
	if s, err := h.Subject(); err == nil {
		hd.subject = s
	} else {
		hd.subject = h.Get("Subject")
	}
	if id, err := h.MessageID(); err == nil && id != "" {
		hd.messageID = "<" + id + ">"
	} else {
		hd.messageID = strings.TrimSpace(h.Get("Message-Id"))
	}
	return hd
}

// parse reads the message raw: the mail itself (level 0, part "") or a
// message attached to it as part part, whose entities start at MIME depth
// depth.
func (p *Parser) parse(b *budget, raw []byte, level int, part string, depth int) (*event.Notice, error) {
	th, body, err := splitHeader(raw)
	if err != nil {
		if errors.Is(err, errHeaderTooBig) {
			return nil, notNotice("unreadable-mail", "the mail cannot be read: its header is longer than %d KiB, which no real mail's is", MaxHeaderBytes>>10)
		}
		return nil, fmt.Errorf("notice: the message header cannot be read: %w (is this an RFC 5322 mail, an .eml file?)", err)
	}
	h := mail.Header{Header: message.Header{Header: th}}
	hd := readHeader(h)

	if h.Has(p.ownHeader) || (hd.from != "" && p.own[hd.from]) {
		return nil, notNotice("own-mail", "the service's own mail came back (%s)", hd.from)
	}
	mt, _, _ := h.ContentType()
	if mt == "multipart/report" || isMailerDaemon(hd.from) {
		return nil, notNotice("dsn", "a delivery status notification from %s, not an eIAM notice", orUnknown(hd.from))
	}
	if kind := autoReply(h); kind != "" {
		return nil, notNotice("auto-reply", "an automatic reply (%s), not an eIAM notice", kind)
	}

	bs := &bodies{}
	w := walker{b: b, out: bs}
	if err := w.walk(th, body, depth, part); err != nil && !errors.Is(err, errLimit) {
		return nil, err
	}
	if b.exceeded != "" {
		bs.problem("the mail cannot be read whole: %s", b.exceeded)
	}
	cands := candidates(b, bs)
	problems := bs.problems

	if p.trusted[hd.from] {
		n := p.readNotice(hd.subject, cands, problems)
		if n == nil {
			if b.exceeded != "" {
				return nil, notNotice("unreadable-mail", "the mail cannot be read whole: %s", b.exceeded)
			}
			if isListMail(h) {
				return nil, notNotice("list-mail", "a mailing-list or newsletter mail from the eIAM sender %s, not a mismatch notice", hd.from)
			}
			return nil, notNotice("no-notice-subject", "mail from the eIAM sender %s that is not a mismatch notice (subject %q)", hd.from, hd.subject)
		}
		n.From = hd.from
		n.To = hd.to
		n.MessageID = hd.messageID
		n.Date = hd.date()
		n.Delivery = event.DeliveryDirect
		return n, nil
	}

	if level == 0 {
		var innerErr error
		for _, att := range bs.attached {
			n, err := p.parse(b, att.raw, level+1, att.part, att.depth+1)
			if err == nil {
				n.Delivery = event.DeliveryAttachedForward
				n.Forwarders = []string{hd.from}
				n.OuterMessageID = hd.messageID
				n.Part = att.part
				return n, nil
			}
			if b.ctx.Err() != nil {
				return nil, err
			}
			if innerErr == nil {
				innerErr = err
			}
		}
		if n, ok, err := p.inlineForward(hd, cands, problems); ok {
			return n, err
		}
		var ne *NotANoticeError
		if errors.As(innerErr, &ne) && ne.Kind == "untrusted-sender" {
			return nil, notNotice("untrusted-sender", "forwarded by %s, but the attached message is not from a trusted eIAM sender: %s", orUnknown(hd.from), ne.Reason)
		}
	}

	if isListMail(h) {
		return nil, notNotice("list-mail", "a mailing-list or newsletter mail from %s", orUnknown(hd.from))
	}
	if _, _, ok := p.matchSubject(hd.subject); ok || p.readNotice("", cands, nil) != nil {
		return nil, notNotice("untrusted-sender", "looks like a mismatch notice but the sender %s is not a trusted eIAM sender: possibly forged, not acted on", orUnknown(hd.from))
	}
	if b.exceeded != "" {
		return nil, notNotice("unreadable-mail", "the mail cannot be read whole: %s", b.exceeded)
	}
	return nil, notNotice("no-notice-subject", "neither an eIAM mismatch notice nor a forwarded one (from %s, subject %q)", orUnknown(hd.from), hd.subject)
}

// inlineForward looks for a forwarded notice quoted in the body. ok is
// false when the body holds no forward header block.
func (p *Parser) inlineForward(hd header, cands []*candidate, problems []string) (*event.Notice, bool, error) {
	for _, c := range cands {
		fw, found := p.findForward(c.get())
		if !found {
			continue
		}
		if !p.trusted[fw.from] {
			if _, _, subj := p.matchSubject(fw.subject); subj {
				return nil, true, notNotice("untrusted-sender", "forwarded by %s, but the quoted sender %s is not a trusted eIAM sender", orUnknown(hd.from), orUnknown(fw.from))
			}
			continue
		}
		n := p.readNotice(fw.subject, []*candidate{{b: c.b, items: fw.rest, html: c.html, parsed: true}}, problems)
		if n == nil {
			return nil, true, notNotice("no-notice-subject", "forwarded mail from the eIAM sender %s that is not a mismatch notice (subject %q)", fw.from, fw.subject)
		}
		n.From = fw.from
		// A quoted notice has no Message-ID of its own; the outer one
		// is the forward's.
		n.OuterMessageID = hd.messageID
		n.Date = hd.date()
		n.Delivery = event.DeliveryInlineForward
		n.Forwarders = []string{hd.from}
		return n, true, nil
	}
	return nil, false, nil
}

func notNotice(kind, format string, args ...any) *NotANoticeError {
	return &NotANoticeError{Kind: kind, Reason: fmt.Sprintf(format, args...)}
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown sender"
	}
	return s
}

// autoReply returns why a message is an automatic reply, or "".
func autoReply(h mail.Header) string {
	as := strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted")))
	if strings.HasPrefix(as, "auto-replied") {
		return "Auto-Submitted: " + as
	}
	for _, k := range []string{"X-Autoreply", "X-Autorespond"} {
		if h.Has(k) {
			return k
		}
	}
	if strings.EqualFold(strings.TrimSpace(h.Get("Precedence")), "auto_reply") {
		return "Precedence: auto_reply"
	}
	if strings.EqualFold(strings.TrimSpace(h.Get("X-Auto-Response-Suppress")), "all") && h.Has("In-Reply-To") {
		return "X-Auto-Response-Suppress on a reply"
	}
	return ""
}

// isListMail reports whether the header marks a mailing list or bulk mail.
func isListMail(h mail.Header) bool {
	prec := strings.ToLower(strings.TrimSpace(h.Get("Precedence")))
	return h.Has("List-Id") || h.Has("List-Unsubscribe") || prec == "bulk" || prec == "list"
}

func isMailerDaemon(addr string) bool {
	local, _, _ := strings.Cut(addr, "@")
	switch local {
	case "mailer-daemon", "postmaster":
		return true
	}
	return false
}

// extractAddress finds the e-mail address in a free-text header value of a
// quoted forward header block, such as `eIAM <noreply@eiam.admin.ch>` or
// Outlook's `eIAM [mailto:noreply@eiam.admin.ch]`. When the value does not
// parse and names more than one address, it returns "": ambiguous, never
// trusted.
func extractAddress(s string) string {
	if a, err := mail.ParseAddress(s); err == nil {
		return foldASCII(a.Address)
	}
	found := ""
	for _, f := range strings.FieldsFunc(s, func(r rune) bool {
		return isSpace(r) || strings.ContainsRune("<>[]()\"',;", r)
	}) {
		f = strings.TrimPrefix(strings.TrimPrefix(f, "mailto:"), "MAILTO:")
		if strings.Count(f, "@") != 1 || strings.HasPrefix(f, "@") || strings.HasSuffix(f, "@") {
			continue
		}
		f = foldASCII(strings.Trim(f, "."))
		if found != "" && found != f {
			return ""
		}
		found = f
	}
	return found
}

// foldASCII maps the ASCII capitals of an address to lower case and leaves
// every other byte as it is: addresses compare with ASCII case folding
// only, so that a look-alike such as noreply@eİam.admİn.ch (a capital
// dotted İ, which strings.ToLower maps to i) stays what it is.
func foldASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
