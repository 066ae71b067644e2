package trust

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/authres"
)

// render writes a parsed field compactly: "id|noID: method=value k=v ...; ...".
func render(f arField) string {
	var b strings.Builder
	if f.noID {
		b.WriteString("(no id)")
	} else {
		b.WriteString(f.id)
	}
	b.WriteString(":")
	for i, r := range f.results {
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %s=%s", r.method, r.value)
		for _, p := range r.props {
			fmt.Fprintf(&b, " %s=%s", p.key, p.value)
		}
	}
	return b.String()
}

func TestParseAR(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		want   string // render of the field; "" when only an error is expected
		err    string // "" for no error
		noIDOK bool   // the error is errNoID
	}{
		{"microsoft 365", arM365, "(no id): spf=pass smtp.mailfrom=admin.ch; dkim=pass header.d=admin.ch; dmarc=pass action=none header.from=eiam.admin.ch; compauth=pass reason=100", "", false},
		{"gmail", strings.ReplaceAll(arGmail, "\r\n", ""), "mx.google.com: dkim=pass header.i=@admin.ch header.s=sel1 header.b=AbCdEf12; spf=pass smtp.mailfrom=noreply@eiam.admin.ch; dmarc=pass header.from=eiam.admin.ch", "", false},
		{"opendkim: ';' inside a comment", strings.ReplaceAll(arOpenDKIM, "\r\n", ""), "mx.be.ch: dkim=pass header.d=admin.ch header.i=@admin.ch header.a=rsa-sha256 header.s=sel1 header.b=AbCdEf12; dkim-atps=neutral", "", false},
		{"opendmarc", arOpenDMARC, "mx.be.ch: dmarc=pass header.from=eiam.admin.ch", "", false},
		{"version 1", "mx.be.ch 1; dkim=pass header.d=admin.ch", "mx.be.ch: dkim=pass header.d=admin.ch", "", false},
		{"comment after the authserv-id", "mx.be.ch (Postfix; milter) 1; dkim=pass header.d=admin.ch", "mx.be.ch: dkim=pass header.d=admin.ch", "", false},
		{"quoted authserv-id", `"mx.be.ch"; none`, "mx.be.ch:", "", false},
		{"none", "mx.be.ch; none", "mx.be.ch:", "", false},
		{"no result at all", "mx.be.ch", "mx.be.ch:", "", false},
		{"nested comments, quoted pairs", `mx.be.ch; dkim=pass (a (nested \) ; comment) b) header.d=admin.ch`, "mx.be.ch: dkim=pass header.d=admin.ch", "", false},
		{"a comment glued to a value", "mx.be.ch; dmarc=pass(p=reject)header.from=eiam.admin.ch", "mx.be.ch: dmarc=pass header.from=eiam.admin.ch", "", false},
		{"quoted values", `mx.be.ch; dkim=pass reason="good signature; really" header.d="admin.ch" header.b="Ab\"Cd"`, `mx.be.ch: dkim=pass reason=good signature; really header.d=admin.ch header.b=Ab"Cd`, "", false},
		{"upper case", "mx.be.ch; DKIM=PASS Header.D=Admin.CH", "mx.be.ch: dkim=pass header.d=Admin.CH", "", false},
		{"a method version", "mx.be.ch; dkim/1=pass header.d=admin.ch", "mx.be.ch: dkim=pass header.d=admin.ch", "", false},
		{"base64 padding in a value", "mx.be.ch; dkim=pass header.d=admin.ch header.b=AbCd==", "mx.be.ch: dkim=pass header.d=admin.ch header.b=AbCd==", "", false},
		{"trailing and doubled ';'", "mx.be.ch;; dkim=pass header.d=admin.ch;", "mx.be.ch: dkim=pass header.d=admin.ch", "", false},
		{"microsoft 365's bare domain parts", "spf=pass smtp.mailfrom=admin.ch; ti.ch; dkim=pass header.d=admin.ch;ti.ch", "(no id): spf=pass smtp.mailfrom=admin.ch; dkim=pass header.d=admin.ch", "", false},

		{"a bare word with an authserv-id", "mx.be.ch; ti.ch; dkim=pass header.d=admin.ch", "", `the result "ti.ch" is not method=result`, false},
		{"a property without value", "mx.be.ch; dkim=pass header.d", "", `has "header.d", which is not property=value`, false},
		{"spaces around '='", "mx.be.ch; dkim = pass header.d=admin.ch", "", "is not method=result", false},
		{"a method that is no keyword", "mx.be.ch; header.d=admin.ch", "", `the result "header.d=admin.ch" is not method=result`, false},
		{"a badly quoted value", `mx.be.ch; dkim=pass header.d=adm"in.ch"`, "", "a badly quoted value", false},
		{"an unclosed comment", "mx.be.ch; dkim=pass (header.d=admin.ch", "", "a comment is not closed", false},
		{"an unclosed quoted string", `mx.be.ch; dkim=pass reason="x; header.d=admin.ch`, "", "a quoted string is not closed", false},
		{"a ')' outside a comment", "mx.be.ch; dkim=pass ) header.d=admin.ch", "", "a ')' closes no comment", false},
		{"version 2", "mx.be.ch 2; dkim=pass header.d=admin.ch", "", `version "2" is not supported`, false},
		{"junk after the authserv-id", "mx.be.ch dkim=pass; dmarc=pass header.from=eiam.admin.ch", "", `the authserv-id "mx.be.ch" is followed by "dkim=pass"`, false},
		{"empty", "", "", "its authserv-id cannot be read", true},
		{"starts with ';'", "; dkim=pass header.d=admin.ch", "", "its authserv-id cannot be read", true},
		{"unclosed comment before the first ';'", "(mx.be.ch; dkim=pass", "", "its authserv-id cannot be read", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := parseAR(tt.in)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("parseAR(%q): %v", tt.in, err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("parseAR(%q) error = %v; want one saying %q", tt.in, err, tt.err)
			case errors.Is(err, errNoID) != tt.noIDOK:
				t.Fatalf("parseAR(%q) error %v: errNoID %v, want %v", tt.in, err, errors.Is(err, errNoID), tt.noIDOK)
			}
			if tt.want != "" {
				if got := render(f); got != tt.want {
					t.Errorf("parseAR(%q) =\n  %s\nwant\n  %s", tt.in, got, tt.want)
				}
			}
			agreeWithAuthres(t, tt.in)
		})
	}
}

// agreeWithAuthres compares parseAR with go-msgauth's authres.Parse where
// the latter can be right: a value without comments, quotes or escapes,
// of printable ASCII, with no method version and no "none", that
// authres.Parse reads without error and that has an authserv-id. Where both read it, they must agree
// on the authserv-id and on every dkim and dmarc result.
func agreeWithAuthres(t testing.TB, v string) {
	t.Helper()
	if strings.ContainsAny(v, "()\"\\/") || strings.Contains(strings.ToLower(v), "none") {
		return
	}
	for i := 0; i < len(v); i++ {
		if v[i] < ' ' && v[i] != '\t' || v[i] > '~' {
			return
		}
	}
	id, results, err := authres.Parse(v)
	if err != nil {
		return
	}
	f, ferr := parseAR(v)
	if ferr != nil {
		return // stricter than authres.Parse: never a ground for trust
	}
	if f.noID {
		return // authres.Parse knows no field without authserv-id (#64)
	}
	if f.id != id {
		t.Errorf("authserv-id of %q: parseAR %q (no id: %v), authres.Parse %q", v, f.id, f.noID, id)
		return
	}
	if len(f.results) != len(results) {
		t.Errorf("results of %q: parseAR %d, authres.Parse %d", v, len(f.results), len(results))
		return
	}
	for i, r := range results {
		mine := &f.results[i]
		switch r := r.(type) {
		case *authres.DKIMResult:
			d, nd := mine.prop("header.d")
			id, ni := mine.prop("header.i")
			if mine.method != "dkim" || mine.value != string(r.Value) || nd <= 1 && d != r.Domain || ni <= 1 && id != r.Identifier {
				t.Errorf("result %d of %q: parseAR %+v, authres.Parse %+v", i, v, *mine, *r)
			}
		case *authres.DMARCResult:
			hf, n := mine.prop("header.from")
			if mine.method != "dmarc" || mine.value != string(r.Value) || n <= 1 && hf != r.From {
				t.Errorf("result %d of %q: parseAR %+v, authres.Parse %+v", i, v, *mine, *r)
			}
		default:
			if mine.method == "dkim" || mine.method == "dmarc" {
				t.Errorf("result %d of %q: parseAR %+v, authres.Parse %T", i, v, *mine, r)
			}
		}
	}
}

// TestAuthresParse pins what go-msgauth v0.7.0's authres.Parse does with
// the headers the boundary servers write, and so why trust does not use it
// (LIBRARIES.md, go-msgauth #64 and #74). Should this test fail after an
// upgrade, go-msgauth changed: see whether parseAR can give way to it.
func TestAuthresParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		id      string
		results string // the results as authres.Parse returns them, %+v
		err     bool
	}{
		{"microsoft 365, no authserv-id (#64): nothing but an error", arM365, "", "[]", true},
		{"opendkim, ';' in a comment (#74): a dkim=pass without domain, and an error", arOpenDKIM, "mx.be.ch", "[&{Value:pass Reason: Domain: Identifier:}]", true},
		{"gmail: header.i only", arGmail, "mx.google.com", "[&{Value:pass Reason: Domain: Identifier:@admin.ch} &{Value:pass Reason: From:noreply@eiam.admin.ch Helo:} &{Value:pass Reason: From:eiam.admin.ch}]", false},
		{"a property inside a comment is read as one, without error", "mx.be.ch; dkim=fail ( header.d=admin.ch ) reason=x", "mx.be.ch", "[&{Value:fail Reason:x Domain:admin.ch Identifier:}]", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, results, err := authres.Parse(tt.in)
			rs := make([]string, len(results))
			for i, r := range results {
				rs[i] = fmt.Sprintf("%+v", r)
			}
			got := "[" + strings.Join(rs, " ") + "]"
			if id != tt.id || got != tt.results || (err != nil) != tt.err {
				t.Errorf("authres.Parse = %q, %s, %v; want %q, %s, error %v", id, got, err, tt.id, tt.results, tt.err)
			}
		})
	}
}
