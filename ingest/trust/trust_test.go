package trust

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/eiamtriage/eiamtriage/internal/event"
)

// Header values as the three kinds of boundary server write them.
const (
	// Microsoft 365 (Exchange Online Protection): no authserv-id.
	arM365 = "spf=pass (sender IP is 162.23.1.1) smtp.mailfrom=admin.ch; dkim=pass (signature was verified) header.d=admin.ch;dmarc=pass action=none header.from=eiam.admin.ch;compauth=pass reason=100"
	// Gmail: header.i, no header.d.
	arGmail = "mx.google.com;\r\n       dkim=pass header.i=@admin.ch header.s=sel1 header.b=AbCdEf12;\r\n       spf=pass (google.com: domain of noreply@eiam.admin.ch designates 162.23.1.1 as permitted sender) smtp.mailfrom=noreply@eiam.admin.ch;\r\n       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=eiam.admin.ch"
	// Postfix with OpenDKIM (a ';' inside a comment) and OpenDMARC,
	// one header each.
	arOpenDKIM  = "mx.be.ch;\r\n\tdkim=pass (2048-bit key; unprotected) header.d=admin.ch header.i=@admin.ch header.a=rsa-sha256 header.s=sel1 header.b=AbCdEf12;\r\n\tdkim-atps=neutral"
	arOpenDMARC = "mx.be.ch; dmarc=pass (p=reject dis=none) header.from=eiam.admin.ch"

	eiam = "noreply@eiam.admin.ch"
)

// msg builds a raw message from header lines (each "Key: value", folded
// lines allowed) and a short body, CRLF-terminated.
func msg(lines ...string) []byte {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	b.WriteString("Subject: eIAM: Abweichende Benutzerdaten - Anna Muster\r\n")
	b.WriteString("Date: Tue, 01 Dec 2026 09:14:03 +0100\r\n")
	b.WriteString("\r\nProfil-ID: 1234\r\n")
	return []byte(b.String())
}

func ar(v string) string   { return "Authentication-Results: " + v }
func from(v string) string { return "From: " + v }

func direct() Chain { return Chain{NoticeFrom: eiam} }

func forward(fw ...string) Chain { return Chain{NoticeFrom: eiam, Forwarders: fw} }

func policyBE() *Policy {
	return &Policy{
		Mailbox:     "be",
		AuthservIDs: []string{"mx.be.ch"},
		Superusers:  []string{"Anna.Muster@be.ch", "peter.meier@be.ch"},
	}
}

func policyM365() *Policy {
	return &Policy{
		Mailbox:      "ti",
		Microsoft365: true,
		Superusers:   []string{"sara.bianchi@ti.ch"},
	}
}

func with(p *Policy, f func(*Policy)) *Policy {
	f(p)
	return p
}

type want struct {
	trusted    bool
	kind       string
	method     string
	authservID string
	domain     string
	sender     string
	temporary  bool
	// reasons must each occur in one of the verdict's reasons; the first
	// of them in its first (decisive) reason.
	reasons []string
}

func TestCheck(t *testing.T) {
	fromEIAM := from("eIAM <noreply@eiam.admin.ch>")
	tests := []struct {
		name  string
		p     *Policy
		raw   []byte
		chain Chain
		want  want
	}{
		// Direct notices, the boundary servers' own headers.
		{"postfix: OpenDMARC on top passes", policyBE(), msg(ar(arOpenDMARC), ar(arOpenDKIM), fromEIAM), direct(),
			want{trusted: true, method: "dmarc", authservID: "mx.be.ch", domain: "eiam.admin.ch", sender: eiam,
				reasons: []string{`the topmost Authentication-Results header of "mx.be.ch" says dmarc=pass header.from="eiam.admin.ch"`, "1 more counted"}}},
		{"postfix: OpenDKIM alone, ';' in its comment (go-msgauth #74)", policyBE(), msg(ar(arOpenDKIM), fromEIAM), direct(),
			want{trusted: true, method: "dkim", authservID: "mx.be.ch", domain: "admin.ch", sender: eiam,
				reasons: []string{`DKIM passed for "admin.ch", aligned with the From domain "eiam.admin.ch"`}}},
		{"postfix: OpenDMARC on top says none, a passing dkim below does not count", policyBE(),
			msg(ar("mx.be.ch; dmarc=none (p=none dis=none) header.from=eiam.admin.ch"), ar(arOpenDKIM), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{`says dmarc=none header.from="eiam.admin.ch"`, "only the topmost decides"}}},
		{"microsoft 365: no authserv-id, microsoft365 set", policyM365(), msg(ar(arM365), fromEIAM), direct(),
			want{trusted: true, method: "dkim", domain: "admin.ch", sender: eiam,
				reasons: []string{`header without authserv-id (Microsoft 365) says spf=pass, dkim=pass header.d="admin.ch", dmarc=pass header.from="eiam.admin.ch", compauth=pass`}}},
		{"microsoft 365 header, microsoft365 not set", policyBE(), msg(ar(arM365), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam,
				reasons: []string{`no Authentication-Results header of "mx.be.ch": the mail did not pass the organisation's server, or authserv_ids is misconfigured`, "set microsoft365"}}},
		{"microsoft 365: older form with bare '; receiving.domain;' parts", policyM365(),
			msg(ar("spf=pass (sender IP is 162.23.1.1) smtp.mailfrom=admin.ch; ti.ch; dkim=pass (signature was verified) header.d=admin.ch;ti.ch; dmarc=pass action=none header.from=eiam.admin.ch;compauth=pass reason=100"), fromEIAM), direct(),
			want{trusted: true, method: "dkim", domain: "admin.ch", sender: eiam}},
		{"microsoft 365: properties in parts of their own (go-msgauth #64 example) are not guessed at", policyM365(),
			msg(ar("spf=pass (sender IP is 162.23.1.1); smtp.mailfrom=admin.ch; dkim=pass (signature was verified); header.d=admin.ch;dmarc=pass action=none; header.from=eiam.admin.ch;compauth=pass reason=100"), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{"cannot be read whole", "not method=result"}}},
		{"microsoft 365: the topmost of M365's and a listed authserv-id decides (M365 fails on top)",
			with(policyM365(), func(p *Policy) { p.AuthservIDs = []string{"mx.ti.ch"} }),
			msg(ar("spf=fail (sender IP is 203.0.113.9) smtp.mailfrom=admin.ch; dkim=none (message not signed) header.d=none;dmarc=fail action=oreject header.from=eiam.admin.ch;compauth=fail reason=000"), ar("mx.ti.ch; dkim=pass header.d=admin.ch"), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{"without authserv-id (Microsoft 365) says spf=fail, dkim=none", "only the topmost decides"}}},
		{"microsoft 365: the topmost of M365's and a listed authserv-id decides (listed passes on top)",
			with(policyM365(), func(p *Policy) { p.AuthservIDs = []string{"mx.ti.ch"} }),
			msg(ar("mx.ti.ch; dkim=pass header.d=admin.ch"), ar("spf=fail (sender IP is 203.0.113.9) smtp.mailfrom=admin.ch; dkim=none (message not signed) header.d=none;dmarc=fail action=oreject header.from=eiam.admin.ch"), fromEIAM), direct(),
			want{trusted: true, method: "dkim", authservID: "mx.ti.ch", domain: "admin.ch", sender: eiam}},
		{"microsoft 365: a header whose authserv-id cannot be read on top may be Microsoft's", policyM365(),
			msg(ar("(unclosed comment; dkim=pass header.d=admin.ch"), ar(arM365), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{"may be the organisation's server's cannot be read", "its authserv-id cannot be read: a comment is not closed"}}},
		{"a header of the listed authserv-id whose authserv-id part cannot be read stops the search", policyBE(),
			msg(ar("mx.be.ch (unclosed; dkim=fail header.d=admin.ch"), ar("mx.be.ch; dkim=pass header.d=admin.ch"), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{"may be the organisation's server's cannot be read"}}},
		{"a header of another server whose authserv-id cannot be read is skipped", policyBE(),
			msg(ar("mx.other.example (unclosed; dkim=fail header.d=admin.ch"), ar("mx.be.ch; dkim=pass header.d=admin.ch"), fromEIAM), direct(),
			want{trusted: true, method: "dkim", authservID: "mx.be.ch", domain: "admin.ch", sender: eiam, reasons: []string{"DKIM passed"}}},
		{"gmail: header.i=@admin.ch and no header.d", with(policyBE(), func(p *Policy) { p.AuthservIDs = []string{"mx.google.com"} }),
			msg(ar(arGmail), fromEIAM), direct(),
			want{trusted: true, method: "dkim", authservID: "mx.google.com", domain: "admin.ch", sender: eiam,
				reasons: []string{`dkim=pass header.i="@admin.ch"`}}},
		{"gmail: header.i alone decides without dmarc", with(policyBE(), func(p *Policy) { p.AuthservIDs = []string{"mx.google.com"} }),
			msg(ar("mx.google.com; dkim=pass header.i=@admin.ch header.s=sel1 header.b=AbCdEf12; spf=pass smtp.mailfrom=noreply@eiam.admin.ch"), fromEIAM), direct(),
			want{trusted: true, method: "dkim", authservID: "mx.google.com", domain: "admin.ch", sender: eiam}},

		// Planted headers.
		{"a planted passing header below a failing real one", policyBE(),
			msg(ar("mx.be.ch; dkim=fail (body hash did not verify) header.d=admin.ch; dmarc=fail header.from=eiam.admin.ch"), ar("mx.be.ch; dkim=pass header.d=admin.ch; dmarc=pass header.from=eiam.admin.ch"), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{`of "mx.be.ch" says dkim=fail header.d="admin.ch", dmarc=fail header.from="eiam.admin.ch"`, "1 more counted"}}},
		{"a passing header of another authserv-id only", policyBE(),
			msg(ar("mx.evil.example; dkim=pass header.d=admin.ch; dmarc=pass header.from=eiam.admin.ch"), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{`no Authentication-Results header of "mx.be.ch"`, `headers of "mx.evil.example", which do not count`}}},
		{"the real passing header above a planted failing one", policyBE(),
			msg(ar("mx.be.ch; dkim=pass header.d=admin.ch"), ar("mx.be.ch; dkim=fail header.d=admin.ch"), fromEIAM), direct(),
			want{trusted: true, method: "dkim", authservID: "mx.be.ch", domain: "admin.ch", sender: eiam}},
		{"headers of internal servers above the boundary's are skipped", policyBE(),
			msg(ar("imap.be.ch; none"), ar("mx.be.ch; dkim=pass header.d=admin.ch"), fromEIAM), direct(),
			want{trusted: true, method: "dkim", authservID: "mx.be.ch", domain: "admin.ch", sender: eiam}},
		{"the counted header cannot be read whole: no fall-back to a lower one", policyBE(),
			msg(ar("mx.be.ch; dkim=pass (unclosed header.d=admin.ch"), ar("mx.be.ch; dkim=pass header.d=admin.ch"), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{`header of "mx.be.ch" cannot be read whole`, "a comment is not closed"}}},
		{"authserv-id in another letter case, with version 1", policyBE(),
			msg(ar("MX.Be.CH 1; dkim=pass header.d=admin.ch"), fromEIAM), direct(),
			want{trusted: true, method: "dkim", authservID: "MX.Be.CH", domain: "admin.ch", sender: eiam}},
		{"an unknown version is not read", policyBE(),
			msg(ar("mx.be.ch 2; dkim=pass header.d=admin.ch"), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{`version "2" is not supported`}}},

		// How the results read.
		{"folded over several lines, upper-case results", policyBE(),
			msg("Authentication-Results: mx.be.ch;\r\n\tDKIM=PASS\r\n   (2048-bit key; secure)\r\n Header.D=Admin.CH;\r\n\tDMARC=FAIL", fromEIAM), direct(),
			want{trusted: true, method: "dkim", authservID: "mx.be.ch", domain: "admin.ch", sender: eiam}},
		{"dkim=pass with no domain property", policyBE(), msg(ar("mx.be.ch; dkim=pass (good signature)"), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{"neither an aligned dkim=pass nor dmarc=pass", "names no signing domain"}}},
		{"several dkim results, one aligned pass", policyBE(),
			msg(ar("mx.be.ch; dkim=pass header.d=evil.example; dkim=fail header.d=admin.ch; dkim=pass header.d=admin.ch header.s=sel2"), fromEIAM), direct(),
			want{trusted: true, method: "dkim", authservID: "mx.be.ch", domain: "admin.ch", sender: eiam, reasons: []string{"DKIM passed", `dkim=pass for "evil.example" is not aligned`}}},
		{"dkim=policy", policyBE(), msg(ar("mx.be.ch; dkim=policy (weak key) header.d=admin.ch"), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{`says dkim=policy header.d="admin.ch"`}}},
		{"dkim=neutral", policyBE(), msg(ar("mx.be.ch; dkim=neutral header.d=admin.ch"), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{`says dkim=neutral header.d="admin.ch"`}}},
		{"dkim=temperror", policyBE(), msg(ar("mx.be.ch; dkim=temperror (DNS timeout) header.d=admin.ch"), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{`says dkim=temperror header.d="admin.ch"`}}},
		{"none", policyBE(), msg(ar("mx.be.ch; none"), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{`of "mx.be.ch" says none`}}},
		{"a dkim=pass naming header.d twice", policyBE(), msg(ar("mx.be.ch; dkim=pass header.d=evil.example header.d=admin.ch"), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{"neither", "more than once"}}},
		{"a property inside a comment is a comment", policyBE(), msg(ar("mx.be.ch; dkim=pass ( header.d=admin.ch ) header.d=evil.example"), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{`says dkim=pass header.d="evil.example"`}}},

		// Relaxed alignment.
		{"aligned: a subdomain of the organisational domain", policyBE(), msg(ar("mx.be.ch; dkim=pass header.d=mail.admin.ch"), fromEIAM), direct(),
			want{trusted: true, method: "dkim", authservID: "mx.be.ch", domain: "mail.admin.ch", sender: eiam}},
		{"not aligned: eiam.admin.ch.evil.example", policyBE(), msg(ar("mx.be.ch; dkim=pass header.d=eiam.admin.ch.evil.example"), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{"neither", `dkim=pass for "eiam.admin.ch.evil.example" is not aligned`}}},
		{"not aligned: admin-ch.com", policyBE(), msg(ar("mx.be.ch; dkim=pass header.d=admin-ch.com"), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{"neither", `"admin-ch.com" is not aligned`}}},
		{"not aligned: a punycode look-alike", policyBE(), msg(ar("mx.be.ch; dkim=pass header.d=xn--dmin-moa.ch"), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{"neither", `"xn--dmin-moa.ch" is not aligned`}}},
		{"not aligned: a non-ASCII domain", policyBE(), msg(ar("mx.be.ch; dkim=pass header.d=admİn.ch"), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{"neither", `"adm\u0130n.ch" is not aligned`}}},
		{"not aligned: a public suffix", policyBE(), msg(ar("mx.be.ch; dkim=pass header.d=ch"), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{"neither", `"ch" is not aligned`}}},
		{"dmarc=pass without header.from does not count", policyBE(), msg(ar("mx.be.ch; dmarc=pass (p=reject)"), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{"neither", "dmarc=pass names no header.from"}}},
		{"dmarc=pass for another header.from", policyBE(), msg(ar("mx.be.ch; dmarc=pass header.from=evil.example"), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{"neither", `dmarc=pass is for header.from="evil.example"`}}},
		{"dmarc=pass for the organisational domain only (header.from must equal)", policyBE(), msg(ar("mx.be.ch; dmarc=pass header.from=admin.ch"), fromEIAM), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{"neither", `header.from="admin.ch", not for the From domain "eiam.admin.ch"`}}},
		{"dmarc=pass, header.from in upper case", policyBE(), msg(ar("mx.be.ch; dmarc=pass header.from=EIAM.Admin.CH"), fromEIAM), direct(),
			want{trusted: true, method: "dmarc", authservID: "mx.be.ch", domain: "eiam.admin.ch", sender: eiam}},

		// The single From, the sender rule.
		{"not an eIAM sender", policyBE(), msg(ar("mx.be.ch; dkim=pass header.d=evil.example"), from("eIAM <noreply@eiam-admin.ch>")), Chain{NoticeFrom: "noreply@eiam-admin.ch"},
			want{kind: "untrusted-sender", sender: "noreply@eiam-admin.ch", reasons: []string{`the From "noreply@eiam-admin.ch" is not an eIAM sender ("noreply@eiam.admin.ch")`}}},
		{"the From in another letter case", policyBE(), msg(ar(arOpenDKIM), from("NoReply@EIAM.Admin.CH")), Chain{NoticeFrom: "NoReply@EIAM.Admin.CH"},
			want{trusted: true, method: "dkim", authservID: "mx.be.ch", domain: "admin.ch", sender: eiam}},
		{"two From fields", policyBE(), msg(ar(arOpenDKIM), fromEIAM, from("evil@evil.example")), direct(),
			want{kind: "ambiguous-sender", reasons: []string{`2 From fields ("eIAM <noreply@eiam.admin.ch>", "evil@evil.example")`}}},
		{"a From with two addresses", policyBE(), msg(ar(arOpenDKIM), from("noreply@eiam.admin.ch, evil@evil.example")), direct(),
			want{kind: "ambiguous-sender", reasons: []string{"is a list or a group"}}},
		{"a From group", policyBE(), msg(ar(arOpenDKIM), from("eIAM: noreply@eiam.admin.ch;")), direct(),
			want{kind: "ambiguous-sender", reasons: []string{"is a list or a group"}}},
		{"a From that does not parse", policyBE(), msg(ar(arOpenDKIM), from("noreply@eiam.admin.ch <")), direct(),
			want{kind: "ambiguous-sender", reasons: []string{"cannot be read as one address"}}},
		{"no From", policyBE(), msg(ar(arOpenDKIM)), direct(),
			want{kind: "ambiguous-sender", reasons: []string{"no From field"}}},
		{"a non-ASCII look-alike of the eIAM sender", policyBE(), msg(ar(arOpenDKIM), from("eIAM <noreply@eİam.admİn.ch>")), Chain{NoticeFrom: "noreply@eiam.admin.ch"},
			want{kind: "ambiguous-sender", reasons: []string{`"noreply@e\u0130am.adm\u0130n.ch" is not a plain ASCII address`}}},
		{"the parser found no single From", policyBE(), msg(ar(arOpenDKIM), fromEIAM), Chain{},
			want{kind: "ambiguous-sender", sender: eiam, reasons: []string{"the notice's From is not exactly one address"}}},
		{"the parser's From is not the header's", policyBE(), msg(ar(arOpenDKIM), fromEIAM), Chain{NoticeFrom: "other@eiam.admin.ch"},
			want{kind: "ambiguous-sender", sender: eiam, reasons: []string{`the notice's From "other@eiam.admin.ch" is not the mail's From "noreply@eiam.admin.ch"`}}},
		{"a header longer than 1 MiB", policyBE(), msg(ar(arOpenDKIM), "X-Junk: "+strings.Repeat("a", maxHeader), fromEIAM), direct(),
			want{kind: "ambiguous-sender", reasons: []string{"the header is longer than 1048576 bytes"}}},
		{"a header that cannot be read", policyBE(), []byte("From: noreply@eiam.admin.ch\r\nthis line has no colon\r\n\r\nbody"), direct(),
			want{kind: "ambiguous-sender", reasons: []string{"the mail's header cannot be read", "malformed MIME header line"}}},
		{"a mail that is only a header, without final newline", policyBE(), []byte("Authentication-Results: " + arOpenDMARC + "\r\nFrom: noreply@eiam.admin.ch"), direct(),
			want{trusted: true, method: "dmarc", authservID: "mx.be.ch", domain: "eiam.admin.ch", sender: eiam}},

		// Control characters from hostile mail never reach a reason.
		{"control characters in display name and header values", policyBE(),
			msg(ar("mx.be.ch; dkim=pass header.d=adm\x1bin.ch\x00; dmarc=pass header.from=\x00\r"), from("=?utf-8?q?eIAM=1B=5B2J=0D=0A=00?= <noreply@eiam.admin.ch>")), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{`header.d="adm\x1bin.ch\x00"`, `dmarc=pass is for header.from="\x00"`}}},
		{"control characters in a counted header that cannot be read", policyBE(),
			msg(ar("mx.be.ch; dkim=fail header.d=admin.ch; dmarc=fail\x1b[31m header.from=\x00"), from("eIAM <noreply@eiam.admin.ch>")), direct(),
			want{kind: "unauthenticated", sender: eiam, reasons: []string{`the result "dmarc=fail\x1b[31m" is not method=result`}}},
		{"control characters in an unreadable From", policyBE(),
			msg(ar(arOpenDKIM), from("\"e\x1bIAM\x00\" <noreply@eiam.admin.ch>\r")), direct(),
			want{kind: "ambiguous-sender", reasons: []string{`"\"e\x1bIAM\x00\" <noreply@eiam.admin.ch>`}}},
		{"control characters in a forwarder", policyBE(),
			msg(ar("mx.be.ch; dkim=pass header.d=be.ch"), from("anna.muster@be.ch")), forward("anna.muster@be.ch\r\nBcc: x@y.z"),
			want{kind: "ambiguous-sender", sender: "anna.muster@be.ch", reasons: []string{`the forwarder "anna.muster@be.ch\r\nBcc: x@y.z" is not a plain ASCII address`}}},

		// Forwards.
		{"forwarded by a superuser, authenticated for the superuser's domain", policyBE(),
			msg(ar("mx.be.ch; dkim=pass header.d=be.ch header.i=@be.ch; dmarc=pass header.from=be.ch"), from("Anna Muster <anna.muster@be.ch>")), forward("anna.muster@be.ch"),
			want{trusted: true, method: "dkim", authservID: "mx.be.ch", domain: "be.ch", sender: "anna.muster@be.ch",
				reasons: []string{`DKIM passed for "be.ch", aligned with the From domain "be.ch"`, `forwarded by "anna.muster@be.ch", a superuser of mailbox "be", from the eIAM sender "noreply@eiam.admin.ch"`}}},
		{"forwarded by someone who is not a superuser", policyBE(),
			msg(ar("mx.be.ch; dkim=pass header.d=be.ch"), from("hans.muster@be.ch")), forward("hans.muster@be.ch"),
			want{kind: "untrusted-forwarder", sender: "hans.muster@be.ch", reasons: []string{`forwarded by "hans.muster@be.ch", who is not a superuser of mailbox "be"`}}},
		{"forwarded by a superuser of another mailbox", policyBE(),
			msg(ar("mx.be.ch; dkim=pass header.d=ti.ch"), from("sara.bianchi@ti.ch")), forward("sara.bianchi@ti.ch"),
			want{kind: "untrusted-forwarder", sender: "sara.bianchi@ti.ch", reasons: []string{`"sara.bianchi@ti.ch", who is not a superuser of mailbox "be"`}}},
		{"forwarded by a non-ASCII look-alike of a superuser", policyM365(),
			msg(ar(arM365), from("sara.bİanchi@tİ.ch")), forward("sara.bİanchi@tİ.ch"),
			want{kind: "ambiguous-sender", reasons: []string{`"sara.b\u0130anchi@t\u0130.ch" is not a plain ASCII address`}}},
		{"forwarded notice not from an eIAM sender", policyBE(),
			msg(ar("mx.be.ch; dkim=pass header.d=be.ch"), from("anna.muster@be.ch")), Chain{NoticeFrom: "noreply@eiam.admin.ch.evil.example", Forwarders: []string{"anna.muster@be.ch"}},
			want{kind: "untrusted-sender", sender: "anna.muster@be.ch", reasons: []string{`the forwarded notice's From "noreply@eiam.admin.ch.evil.example" is not an eIAM sender`}}},
		{"forwarded notice from a non-ASCII look-alike", policyBE(),
			msg(ar("mx.be.ch; dkim=pass header.d=be.ch"), from("anna.muster@be.ch")), Chain{NoticeFrom: "noreply@eİam.admİn.ch", Forwarders: []string{"anna.muster@be.ch"}},
			want{kind: "ambiguous-sender", sender: "anna.muster@be.ch", reasons: []string{`the forwarded notice's From "noreply@e\u0130am.adm\u0130n.ch" is not a plain ASCII address`}}},
		{"forwarded notice whose From the parser could not read", policyBE(),
			msg(ar("mx.be.ch; dkim=pass header.d=be.ch"), from("anna.muster@be.ch")), Chain{Forwarders: []string{"anna.muster@be.ch"}},
			want{kind: "ambiguous-sender", sender: "anna.muster@be.ch", reasons: []string{"the forwarded notice's From is not exactly one address"}}},
		{"the mail's From is not the forwarder the parser saw", policyBE(),
			msg(ar("mx.be.ch; dkim=pass header.d=be.ch"), from("peter.meier@be.ch")), forward("anna.muster@be.ch"),
			want{kind: "ambiguous-sender", sender: "peter.meier@be.ch", reasons: []string{`the forwarder "anna.muster@be.ch" is not the mail's From "peter.meier@be.ch"`}}},
		{"forward authenticated for the eIAM domain, not the superuser's", policyBE(),
			msg(ar("mx.be.ch; dkim=pass header.d=admin.ch; dmarc=pass header.from=eiam.admin.ch"), from("anna.muster@be.ch")), forward("anna.muster@be.ch"),
			want{kind: "unauthenticated", sender: "anna.muster@be.ch", reasons: []string{`neither an aligned dkim=pass nor dmarc=pass for the From domain "be.ch"`}}},
		{"forwarded by a colleague to the superuser first", policyBE(),
			msg(ar("mx.be.ch; dmarc=pass header.from=be.ch"), from("peter.meier@be.ch")), forward("Peter.Meier@be.ch", "hans.muster@be.ch"),
			want{trusted: true, method: "dmarc", authservID: "mx.be.ch", domain: "be.ch", sender: "peter.meier@be.ch",
				reasons: []string{"DMARC passed", `forwarded to the superuser before by "hans.muster@be.ch"`}}},
		{"a forward, Microsoft 365", policyM365(),
			msg(ar("spf=pass (sender IP is 162.23.2.2) smtp.mailfrom=ti.ch; dkim=pass (signature was verified) header.d=ti.ch;dmarc=pass action=none header.from=ti.ch;compauth=pass reason=100"), from("Sara Bianchi <sara.bianchi@ti.ch>")), forward("sara.bianchi@ti.ch"),
			want{trusted: true, method: "dkim", domain: "ti.ch", sender: "sara.bianchi@ti.ch"}},

		// Authentication off.
		{"off: no header needed", with(policyBE(), func(p *Policy) { p.Off = true }), msg(fromEIAM), direct(),
			want{trusted: true, method: "off", sender: eiam, reasons: []string{`AUTHENTICATION IS OFF for mailbox "be": the sender "noreply@eiam.admin.ch" was not authenticated`}}},
		{"off: the sender rule still applies", with(policyBE(), func(p *Policy) { p.Off = true }), msg(from("evil@evil.example")), Chain{NoticeFrom: "evil@evil.example"},
			want{kind: "untrusted-sender", sender: "evil@evil.example", reasons: []string{"is not an eIAM sender"}}},
		{"off: the single-From rule still applies", with(policyBE(), func(p *Policy) { p.Off = true }), msg(fromEIAM, from("evil@evil.example")), direct(),
			want{kind: "ambiguous-sender", reasons: []string{"2 From fields"}}},
		{"off: the superuser rule still applies", with(policyBE(), func(p *Policy) { p.Off = true }), msg(from("hans.muster@be.ch")), forward("hans.muster@be.ch"),
			want{kind: "untrusted-forwarder", sender: "hans.muster@be.ch", reasons: []string{"who is not a superuser"}}},

		{"no policy", nil, msg(ar(arOpenDKIM), fromEIAM), direct(),
			want{kind: "unauthenticated", reasons: []string{"no trust policy"}}},
		{"senders configured", with(policyBE(), func(p *Policy) { p.Senders = []string{"notify@eiam.admin.ch"} }), msg(ar(arOpenDKIM), fromEIAM), direct(),
			want{kind: "untrusted-sender", sender: eiam, reasons: []string{`is not an eIAM sender ("notify@eiam.admin.ch")`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Check(context.Background(), tt.p, tt.raw, tt.chain)
			assertTrust(t, got, tt.want)
		})
	}
}

func assertTrust(t *testing.T, got event.Trust, w want) {
	t.Helper()
	if got.Trusted != w.trusted || got.Kind != w.kind || got.Method != w.method {
		t.Errorf("Trusted, Kind, Method = %v, %q, %q; want %v, %q, %q", got.Trusted, got.Kind, got.Method, w.trusted, w.kind, w.method)
	}
	if got.AuthservID != w.authservID || got.Domain != w.domain || got.Sender != w.sender {
		t.Errorf("AuthservID, Domain, Sender = %q, %q, %q; want %q, %q, %q", got.AuthservID, got.Domain, got.Sender, w.authservID, w.domain, w.sender)
	}
	if got.Temporary != w.temporary {
		t.Errorf("Temporary = %v, want %v", got.Temporary, w.temporary)
	}
	assertReasons(t, got)
	for i, r := range w.reasons {
		if i == 0 && len(got.Reasons) > 0 && !strings.Contains(got.Reasons[0], r) {
			t.Errorf("the first reason does not say %q", r)
		}
		if !strings.Contains(strings.Join(got.Reasons, "\n"), r) {
			t.Errorf("no reason says %q", r)
		}
	}
	if t.Failed() || testing.Verbose() {
		for _, r := range got.Reasons {
			t.Logf("reason: %s", r)
		}
	}
}

// assertReasons checks what every verdict must hold: reasons, none with a
// control character, and Kind and Method as Trusted says.
func assertReasons(t testing.TB, got event.Trust) {
	t.Helper()
	if len(got.Reasons) == 0 {
		t.Errorf("no reasons")
	}
	for _, r := range got.Reasons {
		if r == "" {
			t.Errorf("an empty reason")
		}
		if i := strings.IndexFunc(r, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar || r > unicode.MaxASCII }); i >= 0 {
			t.Errorf("reason %q holds a control or non-ASCII character at %d", r, i)
		}
	}
	if got.Trusted == (got.Kind != "") || got.Trusted == (got.Method == "") {
		t.Errorf("Trusted %v with Kind %q and Method %q", got.Trusted, got.Kind, got.Method)
	}
	if !got.Trusted && (got.AuthservID != "" || got.Domain != "") {
		t.Errorf("untrusted with AuthservID %q and Domain %q", got.AuthservID, got.Domain)
	}
}

// TestFixtures runs the three realistic notices in testdata, each under the
// policy of its boundary server and under the wrong one.
func TestFixtures(t *testing.T) {
	gmail := with(policyBE(), func(p *Policy) { p.AuthservIDs = []string{"mx.google.com"} })
	tests := []struct {
		file string
		p    *Policy
		want want
	}{
		{"m365.eml", policyM365(), want{trusted: true, method: "dkim", domain: "admin.ch", sender: eiam}},
		{"m365.eml", policyBE(), want{kind: "unauthenticated", sender: eiam, reasons: []string{`no Authentication-Results header of "mx.be.ch"`}}},
		{"gmail.eml", gmail, want{trusted: true, method: "dkim", authservID: "mx.google.com", domain: "admin.ch", sender: eiam}},
		{"gmail.eml", policyM365(), want{kind: "unauthenticated", sender: eiam, reasons: []string{"no Authentication-Results header without authserv-id (Microsoft 365)", `headers of "mx.google.com", which do not count`}}},
		{"postfix.eml", policyBE(), want{trusted: true, method: "dmarc", authservID: "mx.be.ch", domain: "eiam.admin.ch", sender: eiam}},
		{"postfix.eml", gmail, want{kind: "unauthenticated", sender: eiam, reasons: []string{`no Authentication-Results header of "mx.google.com"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.p.Mailbox+"/"+strings.Join(tt.p.AuthservIDs, ","), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			assertTrust(t, Check(context.Background(), tt.p, raw, direct()), tt.want)
		})
	}
}

func TestSenderRule(t *testing.T) {
	tests := []struct {
		name    string
		senders []string
		chain   Chain
		want    want
	}{
		{"the eIAM sender, default list", nil, Chain{NoticeFrom: "NoReply@eiam.admin.ch"},
			want{trusted: true, method: "content-only", sender: eiam, reasons: []string{`"noreply@eiam.admin.ch" is an eIAM sender; content only`}}},
		{"a configured sender", []string{"notify@eiam.admin.ch"}, Chain{NoticeFrom: "notify@eiam.admin.ch"},
			want{trusted: true, method: "content-only", sender: "notify@eiam.admin.ch"}},
		{"another sender", nil, Chain{NoticeFrom: "noreply@eiam-admin.ch"},
			want{kind: "untrusted-sender", sender: "noreply@eiam-admin.ch", reasons: []string{`"noreply@eiam-admin.ch" is not an eIAM sender`}}},
		{"no single From", nil, Chain{},
			want{kind: "ambiguous-sender", reasons: []string{"not exactly one address"}}},
		{"a non-ASCII look-alike", nil, Chain{NoticeFrom: "noreply@eİam.admİn.ch"},
			want{kind: "ambiguous-sender", reasons: []string{`"noreply@e\u0130am.adm\u0130n.ch" is not a plain ASCII address`}}},
		{"forwarded: the forwarder is named, not checked", nil, forward("hans.muster@be.ch"),
			want{trusted: true, method: "content-only", sender: eiam, reasons: []string{"is an eIAM sender", `forwarded by "hans.muster@be.ch", not checked`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertTrust(t, SenderRule(tt.senders, tt.chain), tt.want)
		})
	}
}

func TestAddress(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"noreply@eiam.admin.ch", "noreply@eiam.admin.ch", true},
		{"NoReply@EIAM.Admin.CH", "noreply@eiam.admin.ch", true},
		{"anna.muster+triage@be.ch", "anna.muster+triage@be.ch", true},
		{"noreply@eİam.admİn.ch", "", false}, // strings.ToLower would make it the eIAM sender
		{"sara.bİanchi@tİ.ch", "", false},    // U+0130 in the local part too
		{"noreply@eiam.admin.ch\u200b", "", false},
		{"nore\u212aply@eiam.admin.ch", "", false}, // Kelvin sign: EqualFold would match "k"
		{"noreply@eiam\x00.admin.ch", "", false},
		{"noreply@eiam.admin.ch\r\n", "", false},
		{"no reply@eiam.admin.ch", "", false},
		{"\tnoreply@eiam.admin.ch", "", false},
		{"noreply@localhost", "", false},
		{"@eiam.admin.ch", "", false},
		{"noreply@", "", false},
		{"noreply", "", false},
		{"a@b@eiam.admin.ch", "", false},
		{"noreply@eiam..admin.ch", "", false},
		{"noreply@.eiam.admin.ch", "", false},
		{"noreply@eiam.admin.ch.", "", false},
		{"noreply@[162.23.1.1]", "", false},
		{"noreply@xn--iam-bma.admin.ch", "noreply@xn--iam-bma.admin.ch", true}, // punycode is ASCII; it is just another domain
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := Address(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Address(%+q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		want []string // "" means valid
	}{
		{"authserv-ids", Policy{Mailbox: "be", AuthservIDs: []string{"mx.be.ch"}}, nil},
		{"microsoft 365 without authserv-ids", Policy{Mailbox: "ti", Microsoft365: true}, nil},
		{"off without authserv-ids", Policy{Mailbox: "be", Off: true}, nil},
		{"nothing to trust", Policy{Mailbox: "be"}, []string{`trust: mailbox "be": authserv_ids: empty`, "set microsoft365", "set off"}},
		{"a bad authserv-id", Policy{Mailbox: "be", AuthservIDs: []string{"mx.be.ch; dkim=pass"}}, []string{`authserv_ids: "mx.be.ch; dkim=pass" is not an authserv-id`}},
		{"a non-ASCII sender", Policy{Mailbox: "be", Off: true, Senders: []string{"noreply@eİam.admİn.ch"}}, []string{`senders: "noreply@e\u0130am.adm\u0130n.ch" is not a plain ASCII e-mail address`}},
		{"a bad superuser", Policy{Mailbox: "be", Off: true, Superusers: []string{"anna.muster@be.ch", "peter meier@be.ch"}}, []string{`superusers: "peter meier@be.ch"`}},
		{"several problems", Policy{Mailbox: "be", Senders: []string{"x"}}, []string{"authserv_ids: empty", `senders: "x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil; want an error saying %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v; does not say %q", err, w)
				}
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		name string
		p    *Policy
		want []string
	}{
		{"off", with(policyBE(), func(p *Policy) { p.Off = true }), []string{
			`AUTHENTICATION IS OFF for mailbox "be": any mail whose From says "noreply@eiam.admin.ch" is acted on; forged notices will cause deactivations and escalations`,
			`"anna.muster@be.ch", "peter.meier@be.ch" forwarded it`}},
		{"authserv-id", policyBE(), []string{`mailbox "be": a notice from "noreply@eiam.admin.ch" is acted on when the topmost Authentication-Results header of "mx.be.ch" shows dkim=pass`, "quarantined", "authenticated the same way for the superuser's domain"}},
		{"microsoft 365 and DKIM verification", with(policyM365(), func(p *Policy) { p.VerifyDKIM = true }), []string{"without authserv-id (Microsoft 365)", "verifies the DKIM signatures itself", "Microsoft 365 must be the mailbox's only way in"}},
		{"no superusers", &Policy{Mailbox: "be", AuthservIDs: []string{"mx.be.ch"}}, []string{"a forwarded notice is never acted on"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.p.Describe()
			if tt.p.String() != d {
				t.Errorf("String() is not Describe()")
			}
			for _, w := range tt.want {
				if !strings.Contains(d, w) {
					t.Errorf("Describe() = %s\ndoes not say %q", d, w)
				}
			}
		})
	}
}

// BenchmarkCheck checks a typical Microsoft 365 notice.
func BenchmarkCheck(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "m365.eml"))
	if err != nil {
		b.Fatal(err)
	}
	p := policyM365()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if t := Check(ctx, p, raw, direct()); !t.Trusted {
			b.Fatal(t.Reasons)
		}
	}
}

// TestReasonsBounded: the sender chooses how many From fields, results and
// signatures a mail has; the reasons must not grow with them.
func TestReasonsBounded(t *testing.T) {
	many := func(line string, n int) []string {
		l := make([]string, n)
		for i := range l {
			l[i] = line
		}
		return l
	}
	long := strings.Repeat("İ", 5000)
	tests := []struct {
		name string
		p    *Policy
		raw  []byte
	}{
		{"many From fields", policyBE(), msg(many(from("x"+long+"@evil.example"), 60)...)},
		{"many dkim results", policyBE(), msg(ar("mx.be.ch"+strings.Repeat("; dkim=pass header.d=evil"+long+".example", 60)), from(eiam))},
		{"many headers of other servers", policyBE(), msg(append(many(ar("mx"+long+"; dkim=pass header.d=admin.ch"), 60), from(eiam))...)},
		{"many unreadable counted headers", policyM365(), msg(append(many(ar("dkim=pass ("+long), 60), from(eiam))...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Check(context.Background(), tt.p, tt.raw, direct())
			assertReasons(t, got)
			n := 0
			for _, r := range got.Reasons {
				n += len(r)
			}
			if n > 32<<10 || len(got.Reasons) > 2*maxListed+4 {
				t.Errorf("%d reasons of %d bytes in all for a mail of %d bytes", len(got.Reasons), n, len(tt.raw))
			}
		})
	}
}
