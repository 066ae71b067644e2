package notice

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	own        map[string]bool
	ownHeader  string
	prefixes   []string
	markers    []string
	fwdFrom    map[string]bool
	fwdSubject map[string]bool
	fwdTo      map[string]bool
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
		own:        map[string]bool{},
		ownHeader:  opts.OwnHeader,
		fwdFrom:    keySet(w.Forward.FromLabels),
		fwdSubject: keySet(w.Forward.SubjectLabels),
		fwdTo:      keySet(w.Forward.ToLabels),
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
// It returns a *Notice for every message shaped like a mismatch notice
// (its subject, or the comparison of the entered and the signed-in data),
// whoever sent it: delivered directly, or forwarded inline or attached, in
// any combination, through up to MaxForwards messages. The Notice names
// the notice's own sender (From), everyone who forwarded it (Forwarders,
// outermost first) and how the innermost hop carried it (Delivery).
// Whether those senders are trusted is not decided here: that is sender
// authentication's business (package ingest/trust), on the outermost
// sender. A notice that is recognisably one but cannot be fully read comes
// back with Problems set.
//
// It returns an error matching ErrNotANotice (a *NotANoticeError with the
// reason) for every other message: an automatic reply, a delivery status
// notification, the service's own mail, list mail, any other mail; a
// message beyond the parser's limits (MaxDepth, MaxParts, MaxAttached,
// MaxForwards, MaxHeaderBytes) that is not recognisably a notice is one of
// kind "unreadable-mail". It returns another error only when the message
// cannot be read as a message at all (no header), or when ctx ends before
// the message is read: then the error matches ctx.Err(). The cost is
// linear in len(raw) whatever the message's shape, and ctx is checked at
// every MIME part and in every long loop.
func (p *Parser) Parse(ctx context.Context, raw []byte) (*event.Notice, error) {
	b := &budget{ctx: ctx}
	n, err := p.parse(b, normaliseCR(raw))
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

// parse reads the mail raw.
func (p *Parser) parse(b *budget, raw []byte) (*event.Notice, error) {
	m, err := p.readMessage(b, raw, "", 0)
	if err != nil {
		if errors.Is(err, errHeaderTooBig) {
			return nil, notNotice("unreadable-mail", "the mail cannot be read: its header is longer than %d KiB, which no real mail's is", MaxHeaderBytes>>10)
		}
		return nil, fmt.Errorf("notice: the message header cannot be read: %w (is this an RFC 5322 mail, an .eml file?)", err)
	}
	hd, h := m.hd, m.hd.h
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
	if err := m.walk(b); err != nil {
		return nil, err
	}
	n, err := p.find(b, m, 0)
	if err != nil {
		return nil, err
	}
	if n != nil {
		if n.Delivery != event.DeliveryDirect {
			n.OuterMessageID = hd.messageID
		}
		if b.exceeded != "" && !slices.ContainsFunc(n.Problems, func(s string) bool { return strings.Contains(s, b.exceeded) }) {
			n.Problems = append(n.Problems, "the mail cannot be read whole: "+b.exceeded)
		}
		return n, nil
	}
	if b.exceeded != "" {
		return nil, notNotice("unreadable-mail", "the mail cannot be read whole: %s", b.exceeded)
	}
	if isListMail(h) {
		return nil, notNotice("list-mail", "a mailing-list or newsletter mail from %s, not a mismatch notice", orUnknown(hd.from))
	}
	return nil, notNotice("no-notice-subject", "neither an eIAM mismatch notice nor a forwarded one (from %s, subject %q)", orUnknown(hd.from), truncate(hd.subject, 200))
}

// msg is one message of a mail: the mail itself, or a message
// attached to it.
type msg struct {
	hd    header
	body  []byte
	part  string // its IMAP part number; "" for the mail itself
	depth int    // the MIME depth of its top entity
	bs    *bodies
	cands []*candidate
}

// readMessage reads the header of the message raw.
func (p *Parser) readMessage(b *budget, raw []byte, part string, depth int) (*msg, error) {
	th, body, err := splitHeader(raw)
	if err != nil {
		return nil, err
	}
	return &msg{hd: readHeader(mail.Header{Header: message.Header{Header: th}}), body: body, part: part, depth: depth}, nil
}

// walk reads the message's MIME structure into its bodies.
func (m *msg) walk(b *budget) error {
	m.bs = &bodies{}
	w := walker{b: b, out: m.bs}
	if err := w.walk(m.hd.h.Header.Header, m.body, m.depth, m.part, true); err != nil && !errors.Is(err, errLimit) {
		return err
	}
	if b.exceeded != "" {
		m.bs.problem("the mail cannot be read whole: %s", b.exceeded)
	}
	m.cands = candidates(b, m.bs)
	return nil
}

// find looks for the notice in the message m, forwarded through level
// messages so far: in a message attached to it (the attached forward), in
// a forward header block in its text (the inline forward), in m itself.
// It returns nil when m holds no notice.
func (p *Parser) find(b *budget, m *msg, level int) (*event.Notice, error) {
	for _, att := range m.bs.attached {
		if level+1 > MaxForwards {
			b.exceed("the notice is forwarded through more than %d messages; the parser follows no more", MaxForwards)
			break
		}
		inner, err := p.readMessage(b, att.raw, att.part, att.depth+1)
		if err != nil {
			if errors.Is(err, errHeaderTooBig) {
				b.exceed("the message attached as part %s has a header longer than %d KiB", att.part, MaxHeaderBytes>>10)
			}
			continue // an attached message without a readable header holds no notice
		}
		if err := inner.walk(b); err != nil {
			return nil, err
		}
		n, err := p.find(b, inner, level+1)
		if err != nil {
			return nil, err
		}
		if n == nil {
			continue
		}
		// Forward header blocks in m's own text quote the forwards the
		// attachment came through before it reached m's sender.
		var quoted []string
		for _, fw := range p.forwardChain(b, m.cands, MaxForwards-level-1) {
			quoted = append(quoted, fw.from)
		}
		n.Forwarders = append(append([]string{m.hd.from}, quoted...), n.Forwarders...)
		if n.Delivery == event.DeliveryDirect {
			n.Delivery = event.DeliveryAttachedForward
			n.Part = att.part
		}
		return n, nil
	}
	if b.ctx.Err() != nil {
		return nil, b.ctx.Err()
	}
	if n := p.inlineForward(b, m, level); n != nil {
		return n, nil
	}
	n := p.readNotice(m.hd.subject, m.cands, m.bs.problems)
	if n == nil {
		return nil, nil
	}
	n.From = m.hd.from
	n.To = m.hd.to
	n.MessageID = m.hd.messageID
	n.Date = m.hd.date()
	n.Delivery = event.DeliveryDirect
	return n, nil
}

// inlineForward looks for a notice quoted in m's text under one or more
// forward header blocks (a forward of a forward quotes both): the notice
// is under the innermost block that holds one; its sender and recipients
// are that block's, and the blocks above it name the forwarders in
// between.
func (p *Parser) inlineForward(b *budget, m *msg, level int) *event.Notice {
	limit := MaxForwards - level
	chains := make([][]forwardBlock, len(m.cands))
	deepest := -1
	for i, c := range m.cands {
		chains[i] = p.forwardChain(b, []*candidate{c}, limit)
		if len(chains[i]) > 0 && (deepest < 0 || len(chains[i]) > len(chains[deepest])) {
			deepest = i
		}
	}
	if deepest < 0 {
		return nil
	}
	ref := chains[deepest]
	for j := len(ref) - 1; j >= 0; j-- {
		// The text of every body (text and HTML) under its block j.
		var rests []*candidate
		for i, ch := range chains {
			if len(ch) > j {
				rests = append(rests, &candidate{b: b, items: ch[j].rest, html: m.cands[i].html, parsed: true})
			}
		}
		n := p.readNotice(ref[j].subject, rests, m.bs.problems)
		if n == nil {
			continue
		}
		n.From = ref[j].from
		n.To = ref[j].to
		// A quoted notice has no Message-ID of its own, and its date
		// is written in words: the forwarding message's date stands.
		n.Date = m.hd.date()
		n.Delivery = event.DeliveryInlineForward
		n.Forwarders = []string{m.hd.from}
		for _, fw := range ref[:j] {
			n.Forwarders = append(n.Forwarders, fw.from)
		}
		return n
	}
	return nil
}

// forwardChain returns the forward header blocks of the first of cands
// that has any, outermost first, each found in what follows the one
// before: at most limit (more are noted as a limit reached).
func (p *Parser) forwardChain(b *budget, cands []*candidate, limit int) []forwardBlock {
	for _, c := range cands {
		var chain []forwardBlock
		items := c.get()
		for {
			fw, ok := p.findForward(items)
			if !ok {
				break
			}
			if len(chain) == limit {
				b.exceed("the notice is forwarded through more than %d messages; the parser follows no more", MaxForwards)
				break
			}
			chain = append(chain, fw)
			items = fw.rest
		}
		if len(chain) > 0 {
			return chain
		}
	}
	return nil
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

// extractAddresses finds the e-mail addresses in the free-text value of a
// quoted To line ("Martina Graf <martina.graf@be.ch>; Peter Aebi
// <peter.aebi@be.ch>"), ASCII-folded, in order; nil when it names none (a
// mail program may quote names only).
func extractAddresses(s string) []string {
	if as, err := mail.ParseAddressList(s); err == nil && len(as) > 0 {
		out := make([]string, len(as))
		for i, a := range as {
			out[i] = foldASCII(a.Address)
		}
		return out
	}
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool {
		return isSpace(r) || strings.ContainsRune("<>[]()\"',;", r)
	}) {
		f = strings.TrimPrefix(strings.TrimPrefix(f, "mailto:"), "MAILTO:")
		if strings.Count(f, "@") != 1 || strings.HasPrefix(f, "@") || strings.HasSuffix(f, "@") {
			continue
		}
		if f = foldASCII(strings.Trim(f, ".")); !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
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
