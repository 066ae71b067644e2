// Package trust decides whether a mail may be acted on as an eIAM notice:
// sender authentication, docs/NOTICE.md section 5 (and the sender rule of
// section 2). It is pure but for the DNS lookups of the optional DKIM
// verification: raw mail and a Policy in, an event.Trust verdict out. What
// happens to an untrusted mail (quarantine, an alert) is the caller's
// business.
//
// A forged notice causes deactivations and escalations, so everything here
// errs towards "untrusted": a header that cannot be read whole, an address
// that is not plain ASCII, a From field that is not exactly one address, an
// Authentication-Results header from anyone but the organisation's boundary
// server, or further down than the topmost one of it, counts for nothing.
// Values from the mail appear in reasons only quoted and escaped.
package trust

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/eiamtriage/eiamtriage/internal/event"
)

// DefaultSender is the eIAM sender address used when a Policy or
// SenderRule lists none.
const DefaultSender = "noreply@eiam.admin.ch"

// The values of event.Trust's Kind that Check and SenderRule return.
const (
	KindUntrustedSender    = "untrusted-sender"
	KindUntrustedForwarder = "untrusted-forwarder"
	KindUnauthenticated    = "unauthenticated"
	KindAmbiguousSender    = "ambiguous-sender"
)

// The values of event.Trust's Method that Check and SenderRule return.
const (
	MethodDKIM         = "dkim"
	MethodDMARC        = "dmarc"
	MethodDKIMVerified = "dkim-verified"
	MethodOff          = "off"
	MethodContentOnly  = "content-only"
)

// Resolver looks up DNS TXT records, for the DKIM verification. A
// *net.Resolver is one.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// ResolverFunc adapts a function to a Resolver.
type ResolverFunc func(ctx context.Context, name string) ([]string, error)

// LookupTXT calls f.
func (f ResolverFunc) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return f(ctx, name)
}

// Policy says whose mail one mailbox trusts. It is read, never modified, by
// Check; one Policy may serve concurrent calls.
type Policy struct {
	// Mailbox is the mailbox's name, for reasons.
	Mailbox string
	// Off switches authentication off for this mailbox: no
	// Authentication-Results header or DKIM signature is required. The
	// sender rule (the notice's From is an eIAM sender), the single-From
	// rule and the superuser rule for forwards still apply; a trusted
	// verdict then has Method "off". Anybody can forge such a mail.
	Off bool
	// AuthservIDs are the authserv-ids of the organisation's boundary mail
	// server(s), compared without regard to ASCII case: only their
	// Authentication-Results headers count, and of those the topmost.
	AuthservIDs []string
	// Microsoft365 says the boundary server is Microsoft 365 (Exchange
	// Online), which writes its Authentication-Results header without an
	// authserv-id: then a header without authserv-id counts too, as well
	// as those of AuthservIDs, and the topmost of all counted ones decides.
	Microsoft365 bool
	// Senders are the eIAM sender addresses; empty means DefaultSender.
	Senders []string
	// Superusers are this mailbox's superusers: only a notice they
	// forwarded (Chain.Forwarders[0]) is trusted. Empty: no forward is.
	Superusers []string
	// VerifyDKIM makes Check verify the mail's DKIM signatures itself
	// (with DNS) when no counted Authentication-Results header exists.
	// Mail that Exchange Online stored is often rewritten, so that its
	// signatures fail: the headers come first.
	VerifyDKIM bool
	// Resolver looks up DKIM keys for VerifyDKIM; nil means
	// net.DefaultResolver.
	Resolver Resolver
}

// Chain is what the notice parser read of a notice's senders.
type Chain struct {
	// NoticeFrom is the From address of the notice itself: of the mail
	// for a notice delivered directly, of the innermost (attached or
	// quoted) message for a forward. "" when that From was not exactly
	// one address. It should be the address as written, not folded with
	// strings.ToLower (which maps a non-ASCII look-alike onto the eIAM
	// sender).
	NoticeFrom string
	// Forwarders are the senders who forwarded the notice, outermost
	// first: Forwarders[0] is the From of the mail itself. Empty for a
	// notice delivered directly.
	Forwarders []string
}

// Check decides whether the mail raw (the whole RFC 5322 message as
// received) may be acted on as the notice that c describes, under the
// policy p. The verdict always has reasons, decisive one first; Check never
// fails otherwise and never panics on hostile input.
//
// Check reads the outer header of raw itself (at most 1 MiB) and requires
// exactly one From field holding exactly one plain ASCII address, equal to
// c.NoticeFrom for a direct notice and to c.Forwarders[0] for a forward
// (else Kind "ambiguous-sender"). A direct notice's From must be one of
// p.Senders ("untrusted-sender"). A forward's outer From must be one of
// p.Superusers ("untrusted-forwarder") and c.NoticeFrom one of p.Senders.
// Then, unless p.Off, the outer From is authenticated: the topmost counted
// Authentication-Results header (see Policy) must show dkim=pass for a
// domain in relaxed alignment with the From's domain (the same
// organisational domain), or dmarc=pass with header.from equal to it; a
// counted header that cannot be read whole counts as failing. Only when no
// header is counted and p.VerifyDKIM is set are the DKIM signatures (at
// most four) verified, with DNS under ctx. Otherwise: "unauthenticated".
//
// A nil p trusts nothing.
func Check(ctx context.Context, p *Policy, raw []byte, c Chain) event.Trust {
	if p == nil {
		return untrusted(KindUnauthenticated, "", "no trust policy was given for this mailbox, so nothing is trusted (a bug in the caller)")
	}
	h, err := readOuter(raw)
	if err != nil {
		return untrusted(KindAmbiguousSender, "", fmt.Sprintf("the mail's header cannot be read (%s): its senders are unknown", quote(err.Error())))
	}
	from, problem := singleFrom(h)
	if problem != "" {
		return untrusted(KindAmbiguousSender, "", problem)
	}
	senders := foldSenders(p.Senders)
	var reasons []string
	if len(c.Forwarders) == 0 {
		nf, problem := noticeFrom(c.NoticeFrom, "the notice's")
		if problem != "" {
			return untrusted(KindAmbiguousSender, from, problem)
		}
		if nf != from {
			return untrusted(KindAmbiguousSender, from, fmt.Sprintf("the notice's From %s is not the mail's From %s", quote(nf), quote(from)))
		}
		if !contains(senders, from) {
			return untrusted(KindUntrustedSender, from, fmt.Sprintf("the From %s is not an eIAM sender (%s): not a notice, possibly forged", quote(from), quoteList(senders)))
		}
		reasons = append(reasons, fmt.Sprintf("the notice came directly from the eIAM sender %s", quote(from)))
	} else {
		fw, ok := Address(c.Forwarders[0])
		if !ok {
			return untrusted(KindAmbiguousSender, from, fmt.Sprintf("the forwarder %s is not a plain ASCII address", quote(c.Forwarders[0])))
		}
		if fw != from {
			return untrusted(KindAmbiguousSender, from, fmt.Sprintf("the forwarder %s is not the mail's From %s", quote(fw), quote(from)))
		}
		if !contains(fold(p.Superusers), from) {
			return untrusted(KindUntrustedForwarder, from, fmt.Sprintf("forwarded by %s, who is not a superuser of %s: only a superuser's forward is acted on", quote(from), mailboxName(p.Mailbox)))
		}
		nf, problem := noticeFrom(c.NoticeFrom, "the forwarded notice's")
		if problem != "" {
			return untrusted(KindAmbiguousSender, from, problem)
		}
		if !contains(senders, nf) {
			return untrusted(KindUntrustedSender, from, fmt.Sprintf("the forwarded notice's From %s is not an eIAM sender (%s): not a notice, possibly forged", quote(nf), quoteList(senders)))
		}
		reasons = append(reasons, fmt.Sprintf("forwarded by %s, a superuser of %s, from the eIAM sender %s", quote(from), mailboxName(p.Mailbox), quote(nf)))
		if len(c.Forwarders) > 1 {
			reasons = append(reasons, fmt.Sprintf("forwarded to the superuser before by %s (earlier forwarders need not be superusers)", quoteList(c.Forwarders[1:])))
		}
	}
	if p.Off {
		return event.Trust{
			Trusted: true,
			Method:  MethodOff,
			Sender:  from,
			Reasons: append([]string{fmt.Sprintf("AUTHENTICATION IS OFF for %s: the sender %s was not authenticated", mailboxName(p.Mailbox), quote(from))}, reasons...),
		}
	}
	a := authenticate(ctx, p, h, raw, from)
	t := event.Trust{
		Trusted:    a.trusted,
		Sender:     from,
		AuthservID: a.authservID,
		Domain:     a.domain,
		Temporary:  a.temporary && !a.trusted,
		Reasons:    append(a.reasons, reasons...),
	}
	if a.trusted {
		t.Method = a.method
	} else {
		t.Kind = KindUnauthenticated
		t.AuthservID, t.Domain = "", ""
	}
	return t
}

// SenderRule applies the sender rule of docs/NOTICE.md section 2 alone, for
// the offline classify command: the notice's From (c.NoticeFrom, the inner
// one for a forward) must be one of senders (empty: DefaultSender). No
// header is read, nothing is authenticated and forwarders are not checked;
// a trusted verdict has Method "content-only" and Sender the notice's From.
func SenderRule(senders []string, c Chain) event.Trust {
	nf, problem := noticeFrom(c.NoticeFrom, "the notice's")
	if problem != "" {
		return untrusted(KindAmbiguousSender, "", problem)
	}
	list := foldSenders(senders)
	if !contains(list, nf) {
		return untrusted(KindUntrustedSender, nf, fmt.Sprintf("the notice's From %s is not an eIAM sender (%s): not a notice", quote(nf), quoteList(list)))
	}
	t := event.Trust{
		Trusted: true,
		Method:  MethodContentOnly,
		Sender:  nf,
		Reasons: []string{fmt.Sprintf("the notice's From %s is an eIAM sender; content only: the sender was not authenticated", quote(nf))},
	}
	if len(c.Forwarders) > 0 {
		t.Reasons = append(t.Reasons, fmt.Sprintf("forwarded by %s, not checked against the superusers", quoteList(c.Forwarders)))
	}
	return t
}

// Validate checks the policy as configuration: authserv_ids given unless
// off or microsoft365, every authserv-id one word, every sender and
// superuser a plain ASCII address. The error names the mailbox, the key and
// what to do; several problems are joined.
func (p *Policy) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("trust: %s: %s: %s", mailboxName(p.Mailbox), key, fmt.Sprintf(format, args...)))
	}
	if !p.Off && !p.Microsoft365 && len(p.AuthservIDs) == 0 {
		bad("authserv_ids", "empty, so no mail could ever be authenticated: list the authserv-id that the organisation's boundary mail server writes as the first word of its Authentication-Results headers (such as \"mx.be.ch\"); for Exchange Online set microsoft365; to act on unauthenticated mail (not recommended) set off")
	}
	for _, id := range p.AuthservIDs {
		if !validAuthservID(id) {
			bad("authserv_ids", "%s is not an authserv-id: one word of ASCII letters, digits, '.', '-' and '_', as the first word of the server's Authentication-Results header", quote(id))
		}
	}
	for _, a := range p.Senders {
		if _, ok := Address(strings.TrimSpace(a)); !ok {
			bad("senders", "%s is not a plain ASCII e-mail address (local@domain, a domain with a dot, no space): correct or remove it", quote(a))
		}
	}
	for _, a := range p.Superusers {
		if _, ok := Address(strings.TrimSpace(a)); !ok {
			bad("superusers", "%s is not a plain ASCII e-mail address (local@domain, a domain with a dot, no space): correct or remove it", quote(a))
		}
	}
	return errors.Join(errs...)
}

// Describe says in plain words what the policy trusts, for `config check`
// and the start-up log.
func (p *Policy) Describe() string {
	senders := quoteList(foldSenders(p.Senders))
	supers := fold(p.Superusers)
	var b strings.Builder
	if p.Off {
		fmt.Fprintf(&b, "AUTHENTICATION IS OFF for %s: any mail whose From says %s is acted on; forged notices will cause deactivations and escalations", mailboxName(p.Mailbox), senders)
	} else {
		fmt.Fprintf(&b, "%s: a notice from %s is acted on when the topmost Authentication-Results header %s shows dkim=pass for the sender's organisational domain or dmarc=pass for its domain", mailboxName(p.Mailbox), senders, countedWords(p))
		if p.VerifyDKIM {
			b.WriteString("; without such a header the service verifies the DKIM signatures itself (DNS)")
		} else {
			b.WriteString("; without such a header it is quarantined")
		}
		if p.Microsoft365 {
			b.WriteString("; a header without authserv-id is trusted as Microsoft 365's, so Microsoft 365 must be the mailbox's only way in")
		}
	}
	if len(supers) == 0 {
		b.WriteString("; no superusers: a forwarded notice is never acted on")
	} else {
		fmt.Fprintf(&b, "; a forwarded notice is acted on when one of the superusers %s forwarded it", quoteList(supers))
		if !p.Off {
			b.WriteString(", authenticated the same way for the superuser's domain")
		}
	}
	return b.String()
}

// String returns Describe().
func (p *Policy) String() string { return p.Describe() }

func countedWords(p *Policy) string {
	ids := quoteList(p.AuthservIDs)
	switch {
	case p.Microsoft365 && len(p.AuthservIDs) > 0:
		return "of " + ids + " or without authserv-id (Microsoft 365)"
	case p.Microsoft365:
		return "without authserv-id (Microsoft 365)"
	}
	return "of " + ids
}

func mailboxName(name string) string {
	if name == "" {
		return "the unnamed mailbox"
	}
	return "mailbox " + quote(name)
}

func validAuthservID(id string) bool {
	if id == "" {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// foldSenders folds the sender list, DefaultSender when it is empty.
func foldSenders(senders []string) []string {
	if len(senders) == 0 {
		return []string{DefaultSender}
	}
	return fold(senders)
}

// noticeFrom folds the notice's From as the parser passed it; whose says
// whose From it is, for the problem.
func noticeFrom(s, whose string) (string, string) {
	if s == "" {
		return "", whose + " From is not exactly one address"
	}
	f, ok := Address(s)
	if !ok {
		return "", fmt.Sprintf("%s From %s is not a plain ASCII address, so it is no eIAM sender", whose, quote(s))
	}
	return f, ""
}

func untrusted(kind, sender, reason string) event.Trust {
	return event.Trust{Kind: kind, Sender: sender, Reasons: []string{reason}}
}
