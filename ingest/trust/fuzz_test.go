package trust

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCheck feeds Check hostile mail under a policy that reaches every
// path (listed authserv-id and Microsoft 365, DKIM verification with a
// fake DNS that knows the test key for admin.ch and be.ch and fails
// temporarily for anything else). Check must never panic, and every
// verdict must hold: reasons without control characters, Kind and Method
// as Trusted says, a passing domain aligned with the sender's. Where
// go-msgauth's authres.Parse can be right, parseAR must agree with it.
func FuzzCheck(f *testing.F) {
	for _, name := range []string{"m365.eml", "gmail.eml", "postfix.eml"} {
		raw, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, false)
	}
	fromEIAM := from("eIAM <noreply@eiam.admin.ch>")
	for _, raw := range [][]byte{
		msg(ar(arOpenDMARC), ar(arOpenDKIM), fromEIAM),
		msg(ar(arM365), fromEIAM),
		msg(ar(arGmail), fromEIAM),
		msg(ar("mx.be.ch; dkim=fail header.d=admin.ch"), ar("mx.be.ch; dkim=pass header.d=admin.ch"), fromEIAM),
		msg(ar("mx.be.ch; dkim=pass (a (nested \\) ; comment) b) header.d=admin.ch reason=\"x;y\""), fromEIAM),
		msg(ar("spf=pass smtp.mailfrom=admin.ch; ti.ch; dkim=pass header.d=admin.ch;ti.ch"), fromEIAM),
		msg(ar("mx.be.ch; dkim=pass header.d=admİn.ch\x1b; dmarc=pass header.from=\x00"), from("=?utf-8?q?eIAM=1B?= <noreply@eİam.admİn.ch>")),
		msg(fromEIAM, from("eIAM: a@b.ch, c@d.ch;")),
		sign(f, "admin.ch", msg(fromEIAM)),
		sign(f, "evil.example", sign(f, "admin.ch", msg(fromEIAM))),
	} {
		f.Add(raw, false)
	}
	f.Add(msg(ar("mx.be.ch; dkim=pass header.d=be.ch; dmarc=pass header.from=be.ch"), from("anna.muster@be.ch")), true)
	f.Add(sign(f, "be.ch", msg(from("Anna Muster <anna.muster@be.ch>"))), true)

	p := &Policy{
		Mailbox:      "be",
		AuthservIDs:  []string{"mx.be.ch"},
		Microsoft365: true,
		Superusers:   []string{"anna.muster@be.ch"},
		VerifyDKIM:   true,
		Resolver: ResolverFunc(func(ctx context.Context, name string) ([]string, error) {
			switch name {
			case "sel1._domainkey.admin.ch", "sel1._domainkey.be.ch":
				return []string{keyRecord()}, nil
			}
			return nil, &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
		}),
	}
	f.Fuzz(func(t *testing.T, raw []byte, forwarded bool) {
		// Whatever the mail's From is, the chain says the same, so that
		// the fuzzer gets past the sender rules.
		c := Chain{NoticeFrom: eiam}
		h, err := readOuter(raw)
		outer := ""
		if err == nil {
			outer, _ = singleFrom(h)
			switch {
			case forwarded && outer != "":
				c.Forwarders = []string{outer}
			case outer != "":
				c.NoticeFrom = outer
			}
			for _, v := range h.Values("Authentication-Results") {
				agreeWithAuthres(t, v)
			}
		}
		got := Check(context.Background(), p, raw, c)
		assertReasons(t, got)
		if !got.Trusted {
			return
		}
		if got.Sender == "" || got.Sender != outer {
			t.Fatalf("trusted with Sender %q, but the mail's From is %q", got.Sender, outer)
		}
		if !aligned(got.Domain, domainOf(outer)) {
			t.Fatalf("trusted for Domain %q, not aligned with the From %q", got.Domain, outer)
		}
		if got.Method == MethodDMARC && got.Domain != domainOf(outer) {
			t.Fatalf("trusted by DMARC for Domain %q, not the From domain of %q", got.Domain, outer)
		}
		if forwarded && got.Sender != "anna.muster@be.ch" {
			t.Fatalf("a forward trusted from %q, not the superuser", got.Sender)
		}
		if !forwarded && got.Sender != eiam {
			t.Fatalf("a direct notice trusted from %q", got.Sender)
		}
	})
}

// TestCheckTruncated runs Check on every prefix of a fixture: a truncated
// mail is the commonest malformed input. No prefix that ends before the
// From field is complete may be trusted.
func TestCheckTruncated(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "postfix.eml"))
	if err != nil {
		t.Fatal(err)
	}
	end := strings.Index(string(raw), "From: eIAM <noreply@eiam.admin.ch>") + len("From: eIAM <noreply@eiam.admin.ch>")
	for n := range len(raw) {
		got := Check(context.Background(), policyBE(), raw[:n], direct())
		assertReasons(t, got)
		if got.Trusted && n < end {
			t.Fatalf("trusted on a prefix of %d bytes, which ends before the From field does", n)
		}
	}
}
