package main

import (
	"context"
	"encoding/json"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/cases"
)

// evil is what a mail can carry to take over a terminal: clear screen,
// OSC 52 (write the clipboard), CR to overwrite the line, NUL, the C1 CSI,
// a bidirectional override.
const evil = "\x1b[2J\x1b]52;c;ZXZpbA==\x07\rX\x00\u009b31m\u202e"

// hostileNotice is an eIAM notice with evil in its Subject, its
// Message-ID, the application, and the signed-in given and family names
// (which whoever redeemed the code chose), for the profile CH.12345, whose
// case key is hashed.
func hostileNotice() []byte {
	body := strings.Join([]string{
		"Guten Tag", "",
		"Beim Onboarding wurden Abweichungen zwischen den im eIAM-Portal erfassten Daten und den Daten des angemeldeten Benutzers festgestellt.", "",
		"Profil-ID: CH.12345",
		"Anwendung: SpiGes" + evil,
		"Organisation: Kanton St. Gallen",
		"Anmeldung am: 12.04.2026 08:52", "",
		"Attribut | Im eIAM-Portal erfasst | Angemeldeter Benutzer",
		"---------+------------------------+--------------------------",
		"Vorname  | Juerg                  | Ju" + evil + "erg",
		"Name     | Bonvin                 | Bonvin" + evil,
		"E-Mail   | jurg.bonvin@vs.ch      | jurg.bonvin78@hotmail.com", "",
		"Diese Nachricht wurde automatisch erstellt.", "",
	}, "\r\n")
	return []byte("Authentication-Results: mx.be.ch; dkim=pass header.d=admin.ch; dmarc=pass header.from=eiam.admin.ch\r\n" +
		"From: eIAM <noreply@eiam.admin.ch>\r\n" +
		"To: Martina Graf <martina.graf@be.ch>\r\n" +
		"Subject: eIAM: Abweichende Benutzerdaten " + mime.BEncoding.Encode("utf-8", evil) + "\r\n" +
		"Date: Sun, 12 Apr 2026 08:52:00 +0100\r\n" +
		"Message-ID: <evil" + strings.ReplaceAll(evil, "\r", "") + "@eiam.admin.ch>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body)
}

// strangersForward is that notice forwarded by someone who is not a
// superuser, with evil in the display name: quarantined.
func strangersForward() []byte {
	return []byte("From: \"Mal" + strings.ReplaceAll(evil, "\r", "") + "lory\" <mallory@example.org>\r\nTo: triage@be.ch\r\n" +
		"Subject: WG: eIAM\r\nMessage-ID: <fwd-evil@example.org>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nzur Triage\r\n--b\r\n" +
		"Content-Type: message/rfc822\r\n\r\n" + string(hostileNotice()) + "\r\n--b--\r\n")
}

// checkNoControl fails the test when out holds a rune a terminal would act
// on, naming the command.
func checkNoControl(t *testing.T, what, out string) {
	t.Helper()
	if bad := terminalUnsafe(out); bad != "" {
		t.Errorf("%s: the output holds %s", what, bad)
	}
}

// TestNothingFromAMailOnTheTerminal runs every command that shows mail on
// a hostile notice (in a file whose name is hostile too), a stranger's
// forward of it and binary input, in text and in JSON: no control
// character other than the newline and the tab reaches the output, the
// values show escaped in the text, and the JSON gives them back intact.
func TestNothingFromAMailOnTheTerminal(t *testing.T) {
	dir := t.TempDir()
	hostileName := filepath.Join(dir, "n"+strings.ReplaceAll(evil, "\x00", "")+"ame.eml") // a file name holds anything but NUL and /
	binary := make([]byte, 4096)
	for i := range binary {
		binary[i] = byte(i*131 + i/7)
	}
	for path, raw := range map[string][]byte{
		hostileName:                      hostileNotice(),
		filepath.Join(dir, "fwd.eml"):    strangersForward(),
		filepath.Join(dir, "binary.eml"): binary,
	} {
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// classify, offline.
	r := runCLI(t, "classify", dir)
	checkNoControl(t, "classify", r.stdout+r.stderr)
	if !strings.Contains(r.stdout, `Ju\x1b[2J\x1b]52;c;ZXZpbA==\a`) || !strings.Contains(r.stdout, `/n\x1b[2J\x1b]52;c;ZXZpbA==\a\rX\u009b31m\u202eame.eml`) {
		t.Errorf("classify does not show the hostile name and file name escaped:\n%s", r)
	}
	if !strings.Contains(r.stderr, "binary.eml") {
		t.Errorf("classify says nothing of the binary input:\n%s", r)
	}
	r = runCLI(t, "classify", "--json", dir)
	checkNoControl(t, "classify --json", r.stdout+r.stderr)
	var sawName bool
	for _, l := range nonEmptyLines(r.stdout) {
		var res struct {
			Source string `json:"source"`
			Actual struct {
				GivenName string `json:"given_name"`
			} `json:"actual"`
		}
		if err := json.Unmarshal([]byte(l), &res); err != nil {
			t.Fatalf("classify --json line %q: %v", l, err)
		}
		if res.Source == hostileName && strings.Contains(res.Actual.GivenName, "\x1b[2J\x1b]52;c;ZXZpbA==\x07") {
			sawName = true
		}
	}
	if !sawName {
		t.Errorf("classify --json lost the hostile name or file name:\n%s", r.stdout)
	}
	// Binary input on standard input.
	cmd := runCLIStdin(t, string(binary), "classify", "-")
	checkNoControl(t, "classify - (binary)", cmd.stdout+cmd.stderr)

	// The daemon's commands.
	cfg := writeExampleConfig(t)
	p := startServe(t, cfg, "serve")
	nc := connectNATS(t, cfg)
	r = runCLI(t, "publish", "--config", cfg.Path, dir)
	checkNoControl(t, "publish", r.stdout+r.stderr)
	if r.code != 0 || !strings.Contains(r.stdout, `/n\x1b[2J\x1b]52;c;ZXZpbA==\a\rX\u009b31m\u202eame.eml`) || !strings.Contains(r.stderr, "published 3 mail(s)") {
		t.Errorf("publish:\n%s", r)
	}
	waitFor(t, 30*time.Second, "the classify stage to settle every mail", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return consumerSettled(ctx, nc.JS, streamNotices, classifyStage)
	})

	for _, args := range [][]string{
		{"cases", "list"}, {"cases", "list", "--json"},
		{"cases", "show", "CH.12345"}, {"cases", "show", "--json", "CH.12345"},
		{"dead", "list"}, {"dead", "list", "--json"},
	} {
		r := runCLI(t, append(append([]string(nil), args...), "--config", cfg.Path)...)
		what := strings.Join(args, " ")
		if r.code != 0 {
			t.Errorf("%s:\n%s", what, r)
			continue
		}
		checkNoControl(t, what, r.stdout+r.stderr)
		if strings.Contains(what, "--json") {
			if strings.HasPrefix(what, "dead") {
				if !strings.Contains(r.stdout, `header line: \u0000`) {
					t.Errorf("%s does not carry the binary mail's reason, escaped:\n%s", what, r.stdout)
				}
				continue
			}
			if !strings.Contains(r.stdout, `\u001b[2J\u001b]52;c;ZXZpbA==\u0007`) || !strings.Contains(r.stdout, `\u009b31m\u202e`) {
				t.Errorf("%s does not carry the hostile value, escaped:\n%s", what, r.stdout)
			}
			continue
		}
		if what == "dead list" {
			if !strings.Contains(r.stdout, `header line: \x00`) {
				t.Errorf("%s does not show the binary mail's reason escaped:\n%s", what, r.stdout)
			}
		} else if !strings.Contains(r.stdout, `\x1b[2J\x1b]52;c;ZXZpbA==\a`) {
			t.Errorf("%s does not show the hostile name escaped:\n%s", what, r.stdout)
		}
	}

	// cases show finds the case of CH.12345 by the profile id as eIAM
	// writes it, although its key is hashed.
	key := cases.KeyForProfile("CH.12345")
	if !strings.HasPrefix(key, "p.h") {
		t.Fatalf("the key of CH.12345 is %q: not hashed, the test shows nothing", key)
	}
	for _, id := range []string{"CH.12345", "ch.12345", key} {
		r := runCLI(t, "cases", "show", "--config", cfg.Path, id)
		if r.code != 0 || !strings.Contains(r.stdout, "case "+key+" (mailbox be)") || !strings.Contains(r.stdout, "profile CH.12345,") {
			t.Errorf("cases show %s:\n%s", id, r)
		}
	}
	// dead list shows the quarantined forward and the unreadable mail with
	// their reasons.
	r = runCLI(t, "dead", "list", "--config", cfg.Path)
	for _, s := range []string{"quarantined from mailbox be (", "unreadable mail from mailbox be (unreadable-mail, publish:" + filepath.Join(dir, "binary.eml")} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("dead list lacks %q:\n%s", s, r)
		}
	}
	// Nor in serve's log, which logs the file name as the mail's source.
	p.stop()
	logs := p.logs()
	checkNoControl(t, "serve's log", logs)
	if !strings.Contains(logs, `n\u001b[2J\u001b]52;c;ZXZpbA==\u0007\rX\u009b31m\u202eame.eml`) {
		t.Errorf("serve's log does not name the hostile file, escaped:\n%s", logs)
	}
}
