package trust

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

// testKey is a fixed ed25519 key: signatures are reproducible, and the
// fuzz target can use it without randomness.
var testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

// keyRecord is the DKIM TXT record of testKey.
func keyRecord() string {
	return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(testKey.Public().(ed25519.PublicKey))
}

// sign prepends a DKIM signature of domain (selector sel1) to raw.
func sign(t testing.TB, domain string, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	err := dkim.Sign(&b, bytes.NewReader(raw), &dkim.SignOptions{
		Domain:                 domain,
		Selector:               "sel1",
		Signer:                 testKey,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             []string{"From", "Subject", "Date"},
	})
	if err != nil {
		t.Fatalf("dkim.Sign: %v", err)
	}
	return b.Bytes()
}

// fakeDNS serves TXT records from a map; a name not in it is NXDOMAIN.
// err, when set, answers every lookup. It records the names looked up.
type fakeDNS struct {
	records map[string]string
	err     error

	mu      sync.Mutex
	lookups []string
}

func (f *fakeDNS) resolver() Resolver {
	return ResolverFunc(func(ctx context.Context, name string) ([]string, error) {
		f.mu.Lock()
		f.lookups = append(f.lookups, name)
		f.mu.Unlock()
		if f.err != nil {
			return nil, f.err
		}
		if err := ctx.Err(); err != nil {
			return nil, &net.DNSError{Err: err.Error(), Name: name, IsTimeout: true}
		}
		if r, ok := f.records[name]; ok {
			return []string{r}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	})
}

func TestCheckVerifyDKIM(t *testing.T) {
	notice := msg(from("eIAM <noreply@eiam.admin.ch>"))
	keys := map[string]string{
		"sel1._domainkey.admin.ch":     keyRecord(),
		"sel1._domainkey.evil.example": keyRecord(),
		"sel1._domainkey.be.ch":        keyRecord(),
	}
	verify := func(p *Policy) *Policy { p.VerifyDKIM = true; return p }
	tampered := bytes.Replace(sign(t, "admin.ch", notice), []byte("Profil-ID: 1234"), []byte("Profil-ID: 6666"), 1)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	manySigs := sign(t, "admin.ch", notice)
	for range 4 {
		manySigs = append([]byte("DKIM-Signature: v=1; a=ed25519-sha256; d=evil.example; s=nokey; h=from; bh=AAAA; b=AAAA\r\n"), manySigs...)
	}

	tests := []struct {
		name    string
		p       *Policy
		raw     []byte
		chain   Chain
		dns     *fakeDNS
		ctx     context.Context
		want    want
		lookups int // -1: any number
	}{
		{"an aligned signature verifies", verify(policyBE()), sign(t, "admin.ch", notice), direct(), &fakeDNS{records: keys}, nil,
			want{trusted: true, method: "dkim-verified", domain: "admin.ch", sender: eiam,
				reasons: []string{`the service verified the DKIM signature of "admin.ch" itself, aligned with the From domain "eiam.admin.ch"`, `no Authentication-Results header of "mx.be.ch"`}}, 1},
		{"the body was changed after signing", verify(policyBE()), tampered, direct(), &fakeDNS{records: keys}, nil,
			want{kind: "unauthenticated", sender: eiam, reasons: []string{`no DKIM signature verified by the service passes for the From domain "eiam.admin.ch"`, `the DKIM signature of "admin.ch" does not verify: "dkim: body hash did not verify"`}}, 1},
		{"a signature that verifies, not aligned", verify(policyBE()), sign(t, "evil.example", notice), direct(), &fakeDNS{records: keys}, nil,
			want{kind: "unauthenticated", sender: eiam, reasons: []string{"no DKIM signature verified by the service passes", `the DKIM signature of "evil.example" verifies but is not aligned with the From domain "eiam.admin.ch"`}}, 1},
		{"no key in DNS", verify(policyBE()), sign(t, "admin.ch", notice), direct(), &fakeDNS{}, nil,
			want{kind: "unauthenticated", sender: eiam, reasons: []string{"no DKIM signature verified by the service passes", `the DKIM signature of "admin.ch" fails permanently: "dkim: no key for signature`}}, 1},
		{"a revoked key", verify(policyBE()), sign(t, "admin.ch", notice), direct(), &fakeDNS{records: map[string]string{"sel1._domainkey.admin.ch": "v=DKIM1; k=ed25519; p="}}, nil,
			want{kind: "unauthenticated", sender: eiam, reasons: []string{"no DKIM signature verified by the service passes", `fails permanently: "dkim: key revoked"`}}, 1},
		{"DNS fails temporarily", verify(policyBE()), sign(t, "admin.ch", notice), direct(), &fakeDNS{err: &net.DNSError{Err: "server misbehaving", Name: "x", IsTemporary: true}}, nil,
			want{kind: "unauthenticated", sender: eiam, temporary: true, reasons: []string{`DNS temporarily failed while verifying the DKIM signature of "admin.ch": not trusted for now, a retry may pass`, "server misbehaving"}}, 1},
		{"a resolver error of unknown kind is temporary", verify(policyBE()), sign(t, "admin.ch", notice), direct(), &fakeDNS{err: errors.New("resolver pool exhausted")}, nil,
			want{kind: "unauthenticated", sender: eiam, temporary: true, reasons: []string{"DNS temporarily failed", "resolver pool exhausted"}}, 1},
		{"DNS fails temporarily for an unaligned signature only", verify(policyBE()), sign(t, "evil.example", notice), direct(), &fakeDNS{err: &net.DNSError{Err: "timeout", Name: "x", IsTimeout: true}}, nil,
			want{kind: "unauthenticated", sender: eiam, reasons: []string{"no DKIM signature verified by the service passes", `DNS temporarily failed for the DKIM key of "evil.example"`}}, 1},
		{"the context is cancelled: no lookup", verify(policyBE()), sign(t, "admin.ch", notice), direct(), &fakeDNS{records: keys}, cancelled,
			want{kind: "unauthenticated", sender: eiam, temporary: true, reasons: []string{"DNS temporarily failed: the check was cancelled", "context canceled"}}, 0},
		{"no signature", verify(policyBE()), notice, direct(), &fakeDNS{records: keys}, nil,
			want{kind: "unauthenticated", sender: eiam, reasons: []string{"the mail carries no DKIM signature"}}, 0},
		{"a counted header decides: no verification", verify(policyBE()), sign(t, "admin.ch", msg(ar("mx.be.ch; dkim=fail header.d=admin.ch"), from("eIAM <noreply@eiam.admin.ch>"))), direct(), &fakeDNS{records: keys}, nil,
			want{kind: "unauthenticated", sender: eiam, reasons: []string{`of "mx.be.ch" says dkim=fail`}}, 0},
		{"verification off: no verification", policyBE(), sign(t, "admin.ch", notice), direct(), &fakeDNS{records: keys}, nil,
			want{kind: "unauthenticated", sender: eiam, reasons: []string{`no Authentication-Results header of "mx.be.ch"`}}, 0},
		{"two signatures, the aligned one passes", verify(policyBE()), sign(t, "evil.example", sign(t, "admin.ch", notice)), direct(), &fakeDNS{records: keys}, nil,
			want{trusted: true, method: "dkim-verified", domain: "admin.ch", sender: eiam}, 2},
		{"at most four signatures are verified", verify(policyBE()), manySigs, direct(), &fakeDNS{records: keys}, nil,
			want{kind: "unauthenticated", sender: eiam, reasons: []string{"no DKIM signature verified by the service passes", "the mail carries 5 DKIM signatures; only the first 4 were verified"}}, -1},
		{"a forward signed by the superuser's domain", verify(policyBE()), sign(t, "be.ch", msg(from("anna.muster@be.ch"))), forward("anna.muster@be.ch"), &fakeDNS{records: keys}, nil,
			want{trusted: true, method: "dkim-verified", domain: "be.ch", sender: "anna.muster@be.ch"}, 1},
		{"a forward signed by the eIAM domain, not the superuser's", verify(policyBE()), sign(t, "admin.ch", msg(from("anna.muster@be.ch"))), forward("anna.muster@be.ch"), &fakeDNS{records: keys}, nil,
			want{kind: "unauthenticated", sender: "anna.muster@be.ch", reasons: []string{`no DKIM signature verified by the service passes for the From domain "be.ch"`}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			tt.p.Resolver = tt.dns.resolver()
			assertTrust(t, Check(ctx, tt.p, tt.raw, tt.chain), tt.want)
			if n := len(tt.dns.lookups); tt.lookups >= 0 && n != tt.lookups || n > maxSignatures {
				t.Errorf("%d DNS lookups (%s); want %d", n, strings.Join(tt.dns.lookups, ", "), tt.lookups)
			}
		})
	}
}

// TestLookupTXTErrors pins how go-msgauth tells a temporary DNS failure
// (a net.Error whose Temporary() is true, by type assertion, not
// errors.As): a Resolver's wrapped error must still come out temporary.
func TestLookupTXTErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		temp bool
	}{
		{"not found", &net.DNSError{Err: "no such host", IsNotFound: true}, false},
		{"not found, wrapped", errors.Join(errors.New("lookup"), &net.DNSError{Err: "no such host", IsNotFound: true}), false},
		{"temporary", &net.DNSError{Err: "server misbehaving", IsTemporary: true}, true},
		{"timeout", &net.DNSError{Err: "i/o timeout", IsTimeout: true}, true},
		{"temporary, wrapped", errors.Join(errors.New("lookup"), &net.DNSError{Err: "x", IsTemporary: true}), true},
		{"context", context.DeadlineExceeded, true},
		{"anything else", errors.New("boom"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ResolverFunc(func(context.Context, string) ([]string, error) { return nil, tt.err })
			_, err := lookupTXT(context.Background(), r, "sel1._domainkey.admin.ch")
			var ne net.Error
			ok := errors.As(err, &ne)
			if !ok {
				t.Fatalf("lookupTXT error %v is no net.Error", err)
			}
			if _, direct := err.(net.Error); !direct {
				t.Fatalf("lookupTXT error %T is not a net.Error itself (go-msgauth does not unwrap)", err)
			}
			if got := err.(*net.DNSError).Temporary(); got != tt.temp {
				t.Errorf("Temporary() = %v; want %v", got, tt.temp)
			}
		})
	}
}
