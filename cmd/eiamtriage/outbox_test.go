package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/actions/outbox/smtpsink"
)

func TestSafe(t *testing.T) {
	for in, want := range map[string]string{
		"Grüezi, Änna":          "Grüezi, Änna",
		"a\x1b[2Jb":             `a\x1b[2Jb`,
		"line\r\nbreak\ttab":    `line\r\nbreak\ttab`,
		"abc\u202edcba":         `abc\u202edcba`,
		"bad \xff utf-8":        `bad \xff utf-8`,
		"sep\u2028arator\u0085": `sep\u2028arator\u0085`,
	} {
		if got := safe(in); got != want {
			t.Errorf("safe(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestOutboxCommands runs serve with its smtp section pointing at a sink
// on loopback, puts mails into the outbox as the actions stage does, and
// uses `outbox list` and `outbox resend` as an operator would.
func TestOutboxCommands(t *testing.T) {
	sink := smtpsink.Start(t, smtpsink.Options{Rcpt: func(to string) *smtp.SMTPError {
		if to == "nobody@be.ch" {
			return smtpsink.Reply(550, "no such user \x1b[2J here")
		}
		return nil
	}})
	cfg := writeExampleConfig(t)
	raw, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	text, err := replaceConfigValues(string(raw), map[string]string{"smtp.address": `"` + sink.Addr() + `"`, "smtp.tls": "none"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.Path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	startServe(t, cfg, "serve")

	b := connectNATS(t, cfg)
	ctx := context.Background()
	o, err := outbox.Open(ctx, b.JS, outbox.Options{From: "eiamtriage <triage@be.ch>"})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []outbox.Message{
		{ID: "alert.p.1", Kind: outbox.KindAlert, Case: "p.1", Mailbox: "be", To: []string{"martina.graf@be.ch"},
			Subject: "Falsche Person \u202eesrever", Text: "Bitte sperren.\n", Urgent: true},
		{ID: "user-mail.p.2", Kind: outbox.KindUserMail, Case: "p.2", Mailbox: "be", To: []string{"nobody@be.ch"},
			Subject: "Bitte anmelden", Text: "Bitte mit der Berufsadresse anmelden.\n"},
	} {
		if _, _, err := o.Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
	}

	listJSON := func(args ...string) []outbox.Entry {
		t.Helper()
		r := runCLI(t, append([]string{"outbox", "list", "--config", cfg.Path, "--json"}, args...)...)
		if r.code != 0 {
			t.Fatalf("outbox list failed:\n%s", r)
		}
		var out []outbox.Entry
		for _, l := range nonEmptyLines(r.stdout) {
			var e outbox.Entry
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatalf("outbox list --json line %q: %v", l, err)
			}
			out = append(out, e)
		}
		return out
	}
	waitFor(t, 30*time.Second, "one mail sent and one failed", func() (bool, string) {
		es := listJSON()
		states := map[string]outbox.State{}
		for _, e := range es {
			states[e.ID] = e.State
		}
		return states["alert.p.1"] == outbox.StateSent && states["user-mail.p.2"] == outbox.StateFailed, statesString(states)
	})
	if failed := listJSON("--state", "failed"); len(failed) != 1 || failed[0].ID != "user-mail.p.2" || failed[0].Attempts != 1 {
		t.Errorf("--state failed: %+v", failed)
	}
	if other := listJSON("--mailbox", "zh"); len(other) != 0 {
		t.Errorf("--mailbox zh lists %d mails", len(other))
	}

	r := runCLI(t, "outbox", "list", "--config", cfg.Path)
	if r.code != 0 {
		t.Fatalf("outbox list:\n%s", r)
	}
	for _, want := range []string{"alert.p.1", "user-mail.p.2", "sent", "failed", `Falsche Person \u202eesrever`, `RCPT: 550 5.0.0 no such user \x1b[2J here`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("outbox list lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.ContainsAny(r.stdout, "\x1b\u202e") {
		t.Errorf("outbox list printed a control character from a mail or the relay unescaped:\n%q", r.stdout)
	}

	if r := runCLI(t, "outbox", "list", "--config", cfg.Path, "--state", "lost"); r.code != 2 || !strings.Contains(r.stderr, "no state") {
		t.Errorf("--state lost:\n%s", r)
	}
	if r := runCLI(t, "outbox", "resend", "--config", cfg.Path, "no.such.mail"); r.code != 2 {
		t.Errorf("resend of an unknown id:\n%s", r)
	}
	r = runCLI(t, "outbox", "resend", "--config", cfg.Path, "alert.p.1")
	if r.code != 0 || !strings.Contains(r.stdout, "alert.p.1 queued again (resend 1, Message-ID <alert.p.1@be.ch>)") {
		t.Fatalf("outbox resend:\n%s", r)
	}
	sink.Wait(t, 30*time.Second, "the resent alert", func(ms []smtpsink.Message) bool {
		n := 0
		for _, m := range ms {
			if m.Code == 250 && smtpsink.Header(m.Raw, "Message-Id") == "<alert.p.1@be.ch>" {
				n++
			}
		}
		return n == 2
	})
}

func statesString(m map[string]outbox.State) string {
	b, _ := json.Marshal(m)
	return string(b)
}
