package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/eiamtriage/eiamtriage/ingest/notice"
	"github.com/eiamtriage/eiamtriage/internal/config"
)

// TestDemo runs `eiamtriage demo` as a person does and checks its output
// folder: an escalation with the original notice attached byte for byte,
// an alert, the user mails, a summary naming every case; nothing for the
// forged notice or the out-of-office reply.
func TestDemo(t *testing.T) {
	out := filepath.Join(t.TempDir(), "demo")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // a bound, not a measure
	defer cancel()
	began := time.Now()
	cmd := exec.CommandContext(ctx, binPath, "demo", "--out", out)
	cmd.Env = cleanEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("eiamtriage demo: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("eiamtriage demo took %s", time.Since(began).Round(time.Millisecond))
	for _, want := range []string{
		"→ WRONG-PERSON", "→ PRIVATE-EMAIL", "→ REVIEW", "→ NEGLIGIBLE",
		"mail 6 → QUARANTINED (unauthenticated)", "mail 7 → not a notice (auto-reply)",
		"sent: escalation to spiges@bfs.admin.ch", "Nothing was sent for the forged notice",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, stdout.String())
		}
	}

	embedded := func(name string) []byte {
		b, err := demoMail.ReadFile("demomail/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	parser := notice.MustParser(config.DefaultWording(), nil)
	profileOf := func(raw []byte) string {
		n, err := parser.Parse(context.Background(), raw)
		if err != nil || n.ProfileID == "" {
			t.Fatalf("a demo mail is not a notice with a profile id: %v", err)
		}
		return n.ProfileID
	}
	forgedProfile := profileOf(embedded("06-forged-wrong-person-en.eml"))

	files, err := filepath.Glob(filepath.Join(out, "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no .eml in %s (%v)", out, err)
	}
	kinds := map[string]int{}
	var summaries [][]byte
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r, err := mail.CreateReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s is not a mail: %v", f, err)
		}
		kind := r.Header.Get("X-Eiamtriage-Kind")
		kinds[kind]++
		switch kind {
		case "summary":
			summaries = append(summaries, raw)
			if _, err := os.Stat(strings.TrimSuffix(f, ".eml") + ".html"); err != nil {
				t.Errorf("the summary %s has no .html beside it: %v", f, err)
			}
		case "escalation":
			if !bytes.Contains(raw, []byte("Content-Type: message/rfc822")) {
				t.Errorf("the escalation attaches no message/rfc822")
			}
			if !bytes.Contains(raw, embedded("01-wrong-person-de.eml")) {
				t.Errorf("the escalation does not carry the original notice byte for byte")
			}
		}
		if kind != "summary" && bytes.Contains(raw, []byte(forgedProfile)) {
			t.Errorf("%s (%s) concerns the forged notice's profile %s", filepath.Base(f), kind, forgedProfile)
		}
		if bytes.Contains(raw, []byte("Automatische Antwort")) {
			t.Errorf("%s answers or concerns the out-of-office reply", filepath.Base(f))
		}
	}
	want := map[string]int{"escalation": 1, "alert": 1, "user-mail": 2, "decision": 1, "summary": 2}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%d mails of kind %s, want %d (all: %v)", kinds[k], k, n, kinds)
		}
	}
	for _, name := range []string{"01-wrong-person-de.eml", "02-private-email-fr.eml", "03-negligible-it.eml", "04-review-en.eml", "05-forwarded-private-email-de.eml"} {
		p := profileOf(embedded(name))
		for i, s := range summaries {
			if !bytes.Contains(s, []byte(p)) {
				t.Errorf("summary %d does not name the case of %s (profile %s)", i+1, name, p)
			}
		}
	}
}
