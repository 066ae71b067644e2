package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// watched is a mailbox that is watched, for the IMAP tests; the test
// appends its own keys (indented by four spaces).
const watched = "mailboxes:\n  - name: be-2\n    authserv_id: mx.be.ch\n    address: imap.be.ch:993\n    username: triage@be.ch\n"

func TestIMAPKeys(t *testing.T) {
	noSecretEnv(t)
	const secret = "imap-s3cret"
	dir := t.TempDir()
	pw := writeFile(t, dir, "imap-be", secret+"\n", 0o600)

	t.Run("defaults of a watched mailbox", func(t *testing.T) {
		m := mustLoad(t, watched+"    password_file: "+pw+"\n").Mailboxes[0]
		want := DefaultIMAP()
		want.Address, want.Username, want.PasswordFile, want.Password = "imap.be.ch:993", "triage@be.ch", pw, secret
		if !reflect.DeepEqual(m.IMAP, want) || !m.Watched() {
			t.Errorf("IMAP = %+v\nwant %+v", m.IMAP, want)
		}
	})
	t.Run("ca_file", func(t *testing.T) {
		caFile := writeFile(t, dir, "imap-ca.pem", testCertPEM(t), 0o644)
		m := mustLoad(t, watched+"    password_file: "+pw+"\n    ca_file: "+caFile+"\n").Mailboxes[0]
		if m.CAFile != caFile || m.RootCAs == nil {
			t.Errorf("ca_file %q, RootCAs %v: want the file's certificates loaded", m.CAFile, m.RootCAs)
		}
		if m := mustLoad(t, watched+"    password_file: "+pw+"\n").Mailboxes[0]; m.RootCAs != nil {
			t.Errorf("without ca_file RootCAs is %v, want nil (the system's roots)", m.RootCAs)
		}
	})
	t.Run("not watched without an address", func(t *testing.T) {
		if m := mustLoad(t, "").Mailboxes[0]; m.Watched() || !reflect.DeepEqual(m.IMAP, DefaultIMAP()) {
			t.Errorf("a mailbox without address: watched %v, IMAP %+v", m.Watched(), m.IMAP)
		}
	})
	t.Run("password from the environment", func(t *testing.T) {
		t.Setenv("EIAMTRIAGE_IMAP_PASSWORD_BE_2", secret)
		c := mustLoad(t, watched)
		if c.Mailboxes[0].Password != secret {
			t.Errorf("password not taken from EIAMTRIAGE_IMAP_PASSWORD_BE_2")
		}
		for _, verb := range []string{"%v", "%+v", "%#v"} {
			if s := fmt.Sprintf(verb, *c); strings.Contains(s, secret) {
				t.Errorf("Sprintf(%q, config) shows the IMAP password", verb)
			}
		}
		out, err := c.Redacted()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), secret) || !strings.Contains(string(out), "# mailbox be-2 imap password: <redacted> (from EIAMTRIAGE_IMAP_PASSWORD_BE_2)") {
			t.Errorf("Redacted():\n%s", out)
		}
		back := mustLoad(t, string(out))
		if !reflect.DeepEqual(back.Mailboxes[0].IMAP, c.Mailboxes[0].IMAP) {
			t.Errorf("Load(Redacted()) IMAP = %+v, want %+v", back.Mailboxes[0].IMAP, c.Mailboxes[0].IMAP)
		}
	})
	t.Run("environment ignored beside a file", func(t *testing.T) {
		t.Setenv("EIAMTRIAGE_IMAP_PASSWORD_BE_2", "other")
		c := mustLoad(t, watched+"    password_file: "+pw+"\n")
		if c.Mailboxes[0].Password != secret || !strings.Contains(strings.Join(c.Warnings, "\n"), "EIAMTRIAGE_IMAP_PASSWORD_BE_2 is set and ignored") {
			t.Errorf("password from file %v, warnings %q", c.Mailboxes[0].Password == secret, c.Warnings)
		}
	})
	t.Run("oauth2 with a token command", func(t *testing.T) {
		m := mustLoad(t, watched+"    oauth2:\n      token_command: [/usr/local/bin/token, --tenant, be.ch]\n    after: move\n    move_to: Processed\n    poll_interval: 30s\n").Mailboxes[0]
		if m.OAuth2.Mechanism != MechanismXOAuth2 || len(m.OAuth2.TokenCommand) != 3 || m.After != AfterMove || m.MoveTo != "Processed" || time.Duration(m.PollInterval) != 30*time.Second {
			t.Errorf("IMAP = %+v", m.IMAP)
		}
	})
	t.Run("relative paths against the config's directory", func(t *testing.T) {
		d := t.TempDir()
		writeFile(t, d, "pw", secret, 0o600)
		writeFile(t, d, "token", "t", 0o600)
		src := string(withRequired("mailboxes:\n  - name: be\n    authserv_id: mx.be.ch\n    address: 127.0.0.1:143\n    tls: none\n    username: u\n    password_file: pw\n  - name: ti\n    authserv_id: mx.ti.ch\n    address: imap.ti.ch:993\n    username: u\n    oauth2: {token_file: token}\n"))
		c, err := LoadFile(writeFile(t, d, "eiamtriage.yaml", src, 0o600))
		if err != nil {
			t.Fatal(err)
		}
		if c.Mailboxes[0].PasswordFile != filepath.Join(d, "pw") || c.Mailboxes[0].Password != secret || c.Mailboxes[1].OAuth2.TokenFile != filepath.Join(d, "token") {
			t.Errorf("paths %q %q", c.Mailboxes[0].PasswordFile, c.Mailboxes[1].OAuth2.TokenFile)
		}
	})
	t.Run("the commented Microsoft 365 example is valid", func(t *testing.T) {
		data, err := os.ReadFile(exampleFile)
		if err != nil {
			t.Fatal(err)
		}
		var block []string
		on := false
		for _, line := range strings.Split(string(data), "\n") {
			switch {
			case strings.HasPrefix(line, "    #   address:"):
				on = true
			case on && !strings.HasPrefix(line, "    #   "):
				on = false
			}
			if on {
				block = append(block, "    "+strings.TrimPrefix(line, "    #   "))
			}
		}
		if len(block) < 5 {
			t.Fatalf("no commented Microsoft 365 example in %s (found %q)", exampleFile, block)
		}
		src := "mailboxes:\n  - name: be\n    authserv_id: mx.be.ch\n" + strings.Join(block, "\n") + "\n"
		m := mustLoad(t, src).Mailboxes[0]
		if !m.Watched() || m.OAuth2.Mechanism != MechanismXOAuth2 || m.Address != "outlook.office365.com:993" {
			t.Errorf("Microsoft 365 example: %+v", m.IMAP)
		}
	})
}

func TestIMAPValidationErrors(t *testing.T) {
	const secret = "imap-s3cret"
	t.Setenv(EnvNATSPassword, "")
	t.Setenv(EnvNATSToken, "")
	t.Setenv("EIAMTRIAGE_IMAP_PASSWORD_BE_2", secret)
	dir := t.TempDir()
	for _, tc := range []struct {
		name, src, key, want string
	}{
		{"username without address", "mailboxes:\n  - name: be\n    authserv_id: mx.be.ch\n    username: u", "mailboxes[0].username", "is set but address is empty"},
		{"address not host:port", strings.Replace(watched, "imap.be.ch:993", "imap.be.ch", 1), "mailboxes[0].address", `"imap.be.ch" is not host:port`},
		{"address bad port", strings.Replace(watched, "imap.be.ch:993", "imap.be.ch:imaps", 1), "mailboxes[0].address", `has port "imaps"`},
		{"tls unknown", watched + "    tls: ssl", "mailboxes[0].tls", `"ssl" is not allowed: use implicit`},
		{"tls none remote", watched + "    tls: none", "mailboxes[0].tls", "allowed only for a server on this host"},
		{"no username", "mailboxes:\n  - name: be-2\n    authserv_id: mx.be.ch\n    address: imap.be.ch:993", "mailboxes[0].username", "is empty: give the login name of mailbox be-2"},
		{"password and oauth2", watched + "    password_file: /p\n    oauth2: {token_file: /t}", "mailboxes[0].password_file", "and oauth2 are both set"},
		{"oauth2 mechanism", watched + "    oauth2: {mechanism: plain, token_file: /t}", "mailboxes[0].oauth2.mechanism", `"plain" is not allowed: use xoauth2`},
		{"oauth2 two tokens", watched + "    oauth2: {token_file: /t, token_command: [x]}", "mailboxes[0].oauth2", "has both token_file and token_command"},
		{"oauth2 no token", watched + "    oauth2: {mechanism: xoauth2}", "mailboxes[0].oauth2", "has no token"},
		{"oauth2 empty command", watched + "    oauth2: {token_command: [\"\"]}", "mailboxes[0].oauth2.token_command[0]", "is empty: give the program"},
		{"folder empty", watched + "    folder: \"\"", "mailboxes[0].folder", "is not a folder name"},
		{"folder control", watched + "    folder: \"IN\\nBOX\"", "mailboxes[0].folder", `"IN\nBOX" is not a folder name`},
		{"after unknown", watched + "    after: delete", "mailboxes[0].after", `"delete" is not allowed: use keep, seen`},
		{"after_other unknown", watched + "    after_other: trash", "mailboxes[0].after_other", `"trash" is not allowed`},
		{"move without folder", watched + "    after: move", "mailboxes[0].move_to", "is empty but mail is to be moved"},
		{"move_to without move", watched + "    move_to: Processed", "mailboxes[0].move_to", "neither after nor after_other is move"},
		{"move_to is the folder", watched + "    after_other: move\n    move_to: INBOX", "mailboxes[0].move_to", "is the watched folder itself"},
		{"poll zero", watched + "    poll_interval: 0s", "mailboxes[0].poll_interval", "0s is not allowed"},
		{"sweep negative", watched + "    sweep_interval: -1m", "mailboxes[0].sweep_interval", "-1m is not allowed"},
		{"unreachable below poll", watched + "    poll_interval: 5m\n    unreachable_after: 5m", "mailboxes[0].unreachable_after", "is not longer than poll_interval"},
		{"missing password file", "mailboxes:\n  - name: be-2\n    authserv_id: mx.be.ch\n    address: imap.be.ch:993\n    username: u\n    password_file: " + filepath.Join(dir, "nope"), "mailboxes[0].password_file", "cannot read " + filepath.Join(dir, "nope")},
		{"ca_file missing", watched + "    ca_file: " + filepath.Join(dir, "ca.pem"), "mailboxes[0].ca_file", "cannot read " + filepath.Join(dir, "ca.pem")},
		{"ca_file not PEM", watched + "    ca_file: " + writeFile(t, dir, "x.pem", "not a certificate", 0o644), "mailboxes[0].ca_file", "holds no PEM certificate"},
		{"ca_file with tls none", strings.Replace(watched, "imap.be.ch:993", "127.0.0.1:143", 1) + "    tls: none\n    ca_file: /etc/ssl/ca.pem", "mailboxes[0].ca_file", "is set but tls is none"},
		{"ca_file without address", "mailboxes:\n  - name: be\n    authserv_id: mx.be.ch\n    ca_file: /etc/ssl/ca.pem", "mailboxes[0].ca_file", "is set but address is empty"},
		{"missing token file", "mailboxes:\n  - name: be-2\n    authserv_id: mx.be.ch\n    address: imap.be.ch:993\n    username: u\n    oauth2: {token_file: " + filepath.Join(dir, "tok") + "}", "mailboxes[0].oauth2.token_file", "cannot read " + filepath.Join(dir, "tok")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(withRequired(tc.src))
			if err == nil {
				t.Fatal("Load succeeded")
			}
			e := findError(err, tc.key)
			if e == nil {
				t.Fatalf("no error on %s in %v", tc.key, err)
			}
			if !strings.Contains(e.Error(), tc.want) {
				t.Errorf("error %q\nwant it to contain %q", e, tc.want)
			}
			if e.Line == 0 {
				t.Errorf("error %q has no line", e)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q holds the password", err)
			}
		})
	}
	t.Run("no password at all", func(t *testing.T) {
		t.Setenv("EIAMTRIAGE_IMAP_PASSWORD_BE_2", "")
		_, err := Load(withRequired(watched))
		if e := findError(err, "mailboxes[0].password_file"); e == nil || !strings.Contains(e.Error(), "EIAMTRIAGE_IMAP_PASSWORD_BE_2 is not set") {
			t.Errorf("error %v, want the missing password named with its variable", err)
		}
	})
}
