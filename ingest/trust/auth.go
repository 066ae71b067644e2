package trust

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// authResult is the outcome of authenticating the outer From.
type authResult struct {
	trusted    bool
	method     string
	authservID string
	domain     string
	reasons    []string // decisive first
	temporary  bool     // a retry may pass (DNS failed temporarily)
}

// maxSummarised bounds the results of one header named in a reason.
const maxSummarised = 8

// authenticate authenticates the folded address from (the outer From)
// with the counted Authentication-Results header, or, when there is none
// and p.VerifyDKIM is set, with the DKIM signatures of raw.
func authenticate(ctx context.Context, p *Policy, h textproto.Header, raw []byte, from string) authResult {
	fromDomain := domainOf(from)
	ids := make([]string, len(p.AuthservIDs))
	for i, id := range p.AuthservIDs {
		ids[i] = asciiLower(strings.TrimSpace(id))
	}
	values := h.Values("Authentication-Results")
	var (
		others   []string // authserv-ids of headers that do not count
		sawNoID  bool     // a header without authserv-id that does not count
		unreadID int      // headers whose authserv-id cannot be read
	)
	for i, v := range values {
		// parseAR's errors quote the values they name: they go into
		// reasons as they are.
		f, err := parseAR(v)
		if errors.Is(err, errNoID) {
			if p.Microsoft365 || contains(ids, asciiLower(leadingWord(v))) {
				// It may be the boundary server's own header (Microsoft
				// 365's has no authserv-id to tell): what it says is
				// unknown, and a header below it may be planted.
				return authResult{reasons: []string{fmt.Sprintf("the topmost Authentication-Results header that may be the organisation's server's cannot be read (%v): %s", err, quote(v))}}
			}
			unreadID++
			continue
		}
		counted := f.noID && p.Microsoft365 || !f.noID && contains(ids, asciiLower(f.id))
		if !counted {
			if f.noID {
				sawNoID = true
			} else if len(others) < maxSummarised && !contains(others, f.id) {
				others = append(others, f.id)
			}
			continue
		}
		label := headerLabel(f)
		below := countedBelow(p, ids, values[i+1:])
		if err != nil {
			r := authResult{reasons: []string{fmt.Sprintf("the topmost Authentication-Results header %s cannot be read whole (%v), and a partial reading is no ground for trust: %s", label, err, quote(v))}}
			return withBelow(r, below)
		}
		return withBelow(judge(f, label, fromDomain), below)
	}

	var notes []string
	if len(others) > 0 {
		notes = append(notes, fmt.Sprintf("the mail has Authentication-Results headers of %s, which do not count", quoteList(others)))
	}
	if sawNoID {
		notes = append(notes, "the mail has an Authentication-Results header without authserv-id, as Microsoft 365 writes them: if the mailbox is in Exchange Online, set microsoft365 for it")
	}
	if unreadID > 0 {
		notes = append(notes, fmt.Sprintf("%d Authentication-Results header(s) cannot be read at all", unreadID))
	}
	none := fmt.Sprintf("no Authentication-Results header %s: the mail did not pass the organisation's server, or authserv_ids is misconfigured", countedWords(p))
	if !p.VerifyDKIM {
		return authResult{reasons: append([]string{none}, notes...)}
	}
	r := verifyDKIM(ctx, p.Resolver, raw, len(h.Values("Dkim-Signature")), fromDomain)
	r.reasons = append(r.reasons, none)
	r.reasons = append(r.reasons, notes...)
	return r
}

// leadingWord returns the first word of v, up to white space, a comment,
// a quote or ';': the authserv-id of a field whose authserv-id parseAR
// cannot read for certain.
func leadingWord(v string) string {
	v = strings.TrimLeft(v, " \t\r\n")
	if i := strings.IndexAny(v, " \t\r\n(\";"); i >= 0 {
		return v[:i]
	}
	return v
}

// judge reads the counted header f for the folded domain fromDomain.
func judge(f arField, label, fromDomain string) authResult {
	says := fmt.Sprintf("the topmost Authentication-Results header %s says %s", label, summarise(f))
	// The header has a result per DKIM signature, and the sender
	// chooses how many signatures a mail carries: notes are bounded.
	var notes []string
	dropped := 0
	note := func(format string, args ...any) {
		if len(notes) == maxListed {
			dropped++
			return
		}
		notes = append(notes, fmt.Sprintf(format, args...))
	}
	var dkimDomain, dmarcDomain string
	for i := range f.results {
		r := &f.results[i]
		if r.value != "pass" {
			continue
		}
		switch r.method {
		case "dkim":
			d, nd := r.prop("header.d")
			id, ni := r.prop("header.i")
			switch {
			case nd > 1 || ni > 1:
				note("a dkim=pass result names header.d or header.i more than once: it does not count")
				continue
			case nd == 0 && ni == 0:
				note("a dkim=pass result names no signing domain (header.d or header.i): it does not count")
				continue
			case nd == 0:
				// Gmail writes header.i=@domain and no header.d.
				at := strings.LastIndexByte(id, '@')
				if at < 0 {
					note("a dkim=pass result has header.i=%s, which is no identifier (no '@'): it does not count", quote(id))
					continue
				}
				d = id[at+1:]
			}
			if !aligned(d, fromDomain) {
				note("dkim=pass for %s is not aligned with the From domain %s (another organisational domain, or not a plain ASCII domain)", quote(d), quote(fromDomain))
				continue
			}
			if dkimDomain == "" {
				dkimDomain, _ = foldDomain(d)
			}
		case "dmarc":
			hf, n := r.prop("header.from")
			switch {
			case n == 0:
				note("dmarc=pass names no header.from, so it may be for another domain: it does not count")
				continue
			case n > 1:
				note("a dmarc=pass result names header.from more than once: it does not count")
				continue
			}
			if d, ok := foldDomain(hf); !ok || d != fromDomain {
				note("dmarc=pass is for header.from=%s, not for the From domain %s", quote(hf), quote(fromDomain))
				continue
			}
			dmarcDomain = fromDomain
		}
	}
	if dropped > 0 {
		notes = append(notes, fmt.Sprintf("and %d more such notes", dropped))
	}
	switch {
	case dkimDomain != "":
		return authResult{trusted: true, method: MethodDKIM, authservID: f.id, domain: dkimDomain,
			reasons: append([]string{fmt.Sprintf("%s: DKIM passed for %s, aligned with the From domain %s", says, quote(dkimDomain), quote(fromDomain))}, notes...)}
	case dmarcDomain != "":
		return authResult{trusted: true, method: MethodDMARC, authservID: f.id, domain: dmarcDomain,
			reasons: append([]string{fmt.Sprintf("%s: DMARC passed for the From domain %s", says, quote(fromDomain))}, notes...)}
	}
	return authResult{reasons: append([]string{fmt.Sprintf("%s: neither an aligned dkim=pass nor dmarc=pass for the From domain %s", says, quote(fromDomain))}, notes...)}
}

// countedBelow counts the headers in values that would count but are below
// the topmost counted one.
func countedBelow(p *Policy, ids, values []string) int {
	n := 0
	for _, v := range values {
		f, err := parseAR(v)
		if errors.Is(err, errNoID) {
			continue
		}
		if f.noID && p.Microsoft365 || !f.noID && contains(ids, asciiLower(f.id)) {
			n++
		}
	}
	return n
}

func withBelow(r authResult, below int) authResult {
	if below > 0 {
		r.reasons = append(r.reasons, fmt.Sprintf("%d more counted Authentication-Results header(s) further down were not considered: only the topmost decides (lower ones may be planted by the sender)", below))
	}
	return r
}

// headerLabel names a counted header in a reason.
func headerLabel(f arField) string {
	if f.noID {
		return "without authserv-id (Microsoft 365)"
	}
	return "of " + quote(f.id)
}

// summarise renders the results of f, with the properties that matter for
// dkim and dmarc, values quoted.
func summarise(f arField) string {
	if len(f.results) == 0 {
		return "none"
	}
	var b strings.Builder
	for i := range f.results {
		if i == maxSummarised {
			fmt.Fprintf(&b, " and %d more", len(f.results)-i)
			break
		}
		r := &f.results[i]
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(word(r.method))
		b.WriteByte('=')
		b.WriteString(word(r.value))
		var keys []string
		switch r.method {
		case "dkim":
			keys = []string{"header.d", "header.i"}
		case "dmarc":
			keys = []string{"header.from"}
		}
		for _, k := range keys {
			for _, p := range r.props {
				if p.key == k {
					b.WriteString(" " + k + "=" + quote(p.value))
				}
			}
		}
	}
	return b.String()
}

// word renders a method or result keyword: as it is when it is a short
// keyword, else quoted.
func word(s string) string {
	if keyword(s) && len(s) <= 32 {
		return s
	}
	return quote(s)
}
