package mailbox

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseToken(t *testing.T) {
	exp := time.Unix(1893456000, 0) // 2030-01-01
	jwt := "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(`{"aud":"https://outlook.office365.com","exp":1893456000}`)) + ".c2ln"
	for _, tc := range []struct {
		name, in   string
		value      string
		expiry     time.Time
		recent     bool // expiry about an hour from now
		wantErr    string
		notInError string
	}{
		{name: "bare", in: "tok-123\n", value: "tok-123"},
		{name: "JWT exp", in: jwt, value: jwt, expiry: exp},
		{name: "token response", in: `{"access_token":"tok-9","token_type":"Bearer","expires_in":3600}`, value: "tok-9", recent: true},
		{name: "x/oauth2 Token", in: `{"access_token":"tok-8","expiry":"2030-01-01T00:00:00Z"}`, value: "tok-8", expiry: exp},
		{name: "az style", in: `{"accessToken":"tok-7","expires_on":1893456000}`, value: "tok-7", expiry: exp},
		{name: "response with a JWT", in: `{"access_token":"` + jwt + `"}`, value: jwt, expiry: exp},
		{name: "empty", in: " \n", wantErr: "no token"},
		{name: "two lines", in: "secret-a\nsecret-b\n", wantErr: "more than one line", notInError: "secret"},
		{name: "bad JSON", in: `{"access_token":"secret-c"`, wantErr: "not a JSON token response", notInError: "secret"},
		{name: "no access_token", in: `{"id_token":"secret-d"}`, wantErr: "has no access_token", notInError: "secret"},
		{name: "space inside", in: "secret e", wantErr: "spaces or control characters", notInError: "secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := ParseToken([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				if tc.notInError != "" && strings.Contains(err.Error(), tc.notInError) {
					t.Errorf("error %q holds the token", err)
				}
				return
			}
			if err != nil || tok.Value != tc.value {
				t.Fatalf("ParseToken = %q, %v; want %q", tok.Value, err, tc.value)
			}
			switch {
			case tc.recent:
				if d := time.Until(tok.Expiry); d < 59*time.Minute || d > time.Hour {
					t.Errorf("expiry in %s, want in an hour", d)
				}
			case !tok.Expiry.Equal(tc.expiry):
				t.Errorf("expiry %v, want %v", tok.Expiry, tc.expiry)
			}
		})
	}
}

func TestTokenSources(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	if err := os.WriteFile(path, []byte("tok-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := TokenFile(path)
	if tok, err := src.Token(context.Background()); err != nil || tok.Value != "tok-1" {
		t.Fatalf("token file: %q, %v", tok.Value, err)
	}
	// Read anew at each call: another program renewed it.
	if err := os.WriteFile(path, []byte("tok-2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, _ := src.Token(context.Background()); tok.Value != "tok-2" {
		t.Errorf("token file not read again: %q", tok.Value)
	}
	if tok, err := TokenCommand([]string{"printf", `{"access_token":"tok-3","expires_in":60}`}).Token(context.Background()); err != nil || tok.Value != "tok-3" || tok.Expiry.IsZero() {
		t.Errorf("token command: %+v, %v", tok, err)
	}
	_, err := TokenCommand([]string{"sh", "-c", "echo secret-out; echo no tenant >&2; exit 3"}).Token(context.Background())
	if err == nil || !strings.Contains(err.Error(), `"no tenant"`) || !strings.Contains(err.Error(), "exit status 3") || strings.Contains(err.Error(), "secret-out") {
		t.Errorf("failing token command: %v; want its exit and standard error, never its output", err)
	}
}

func TestSASLClients(t *testing.T) {
	x := &xoauth2{user: "triage@be.ch", token: "T"}
	mech, ir, _ := x.Start()
	if mech != "XOAUTH2" || string(ir) != "user=triage@be.ch\x01auth=Bearer T\x01\x01" {
		t.Errorf("XOAUTH2 start %s %q", mech, ir)
	}
	if resp, err := x.Next([]byte(`{"status":"401","schemes":"bearer"}`)); err != nil || resp == nil || len(resp) != 0 || x.failure != `status "401"` {
		t.Errorf("XOAUTH2 answers an error challenge with %q, %v (failure %q); want an empty response", resp, err, x.failure)
	}
	o := &oauthBearer{user: "a,b=c", token: "T", host: "imap.be.ch", port: 993}
	mech, ir, _ = o.Start()
	if mech != "OAUTHBEARER" || string(ir) != "n,a=a=2Cb=3Dc,\x01host=imap.be.ch\x01port=993\x01auth=Bearer T\x01\x01" {
		t.Errorf("OAUTHBEARER start %s %q", mech, ir)
	}
	if resp, err := o.Next([]byte(`{"status":"invalid_token"}`)); err != nil || string(resp) != "\x01" {
		t.Errorf("OAUTHBEARER answers an error challenge with %q, %v; want 0x01", resp, err)
	}
}

func TestCheckpointKey(t *testing.T) {
	valid := regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)
	for _, folder := range []string{"INBOX", "Posteingang/Überfällig", "a.b..c", "&AMQ-rger", " lead", "*"} {
		k := CheckpointKey("be-2", folder)
		if !valid.MatchString(k) || strings.Contains(k, "..") || strings.HasSuffix(k, ".") {
			t.Errorf("CheckpointKey(%q) = %q: not a valid KV key", folder, k)
		}
	}
	if CheckpointKey("be", "A") == CheckpointKey("be", "B") || CheckpointKey("be", "A") == CheckpointKey("bf", "A") {
		t.Error("keys of different folders or mailboxes are equal")
	}
}
