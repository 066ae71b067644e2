package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestForgedNoticesAreQuarantined runs serve with the example
// configuration, sender authentication on, and puts in testdata/trust with
// `publish --mailbox be`: every trusted notice becomes its case, naming the
// mailbox and how it was authenticated; every forgery (no or a failing
// Authentication-Results header, a passing one planted below the real one or
// from another server, a look-alike sender, two From fields, a forward by
// someone who is not a superuser of the mailbox or by a look-alike of one,
// an unauthenticated forward, a forwarded notice from a look-alike sender)
// gives no case and one quarantine entry with its reason.
func TestForgedNoticesAreQuarantined(t *testing.T) {
	cfg := writeExampleConfig(t)
	startServe(t, cfg, "serve")
	nc := connectNATS(t, cfg)
	dir := filepath.Join(repoRoot(t), "testdata", "trust")
	raw, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var expected map[string]struct {
		Case        string `json:"case"`
		Class       string `json:"class"`
		Quarantined string `json:"quarantined"`
	}
	if err := json.Unmarshal(raw, &expected); err != nil {
		t.Fatal(err)
	}
	wantCases, wantQuarantined := map[string]string{}, map[string]string{}
	for name, e := range expected {
		if e.Case != "" {
			wantCases[e.Case] = e.Class
		} else {
			wantQuarantined[mailID(mustRead(t, filepath.Join(dir, name)))] = e.Quarantined
		}
	}
	if len(wantCases) < 3 || len(wantQuarantined) < 8 {
		t.Fatalf("testdata/trust has %d trusted and %d forged notices: regenerate it (testdata/gen/gen_trust.py)", len(wantCases), len(wantQuarantined))
	}

	if r := runCLI(t, "publish", "--config", cfg.Path, "--mailbox", "be", dir); r.code != 0 {
		t.Fatalf("publish failed:\n%s", r)
	}
	waitFor(t, 30*time.Second, "the classify stage to settle every mail", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return consumerSettled(ctx, nc.JS, streamNotices, classifyStage)
	})

	list := listCases(t, cfg)
	if len(list) != len(wantCases) {
		t.Errorf("%d cases, want exactly the %d trusted notices'", len(list), len(wantCases))
	}
	for _, c := range list {
		class, ok := wantCases[c.ID]
		switch {
		case !ok:
			t.Errorf("case %s (%s) is a forgery's", c.ID, c.Class)
		case c.Class != class || c.Mailbox != "be" || len(c.Notices) != 1:
			t.Errorf("case %s: class %s, mailbox %q, %d notices; want %s, be, 1", c.ID, c.Class, c.Mailbox, len(c.Notices), class)
		case c.Notices[0].Mailbox != "be" || !c.Notices[0].Trust.Trusted || (c.Notices[0].Trust.Method != "dkim" && c.Notices[0].Trust.Method != "dmarc"):
			t.Errorf("case %s: its notice has mailbox %q and trust %+v; want be, trusted by dkim or dmarc", c.ID, c.Notices[0].Mailbox, c.Notices[0].Trust)
		}
	}

	r := runCLI(t, "dead", "list", "--config", cfg.Path, "--json")
	if r.code != 0 {
		t.Fatalf("dead list: %s", r)
	}
	seen := map[string]bool{}
	for _, l := range nonEmptyLines(r.stdout) {
		var e struct {
			Kind, Reason, Mailbox string
			MailID                string `json:"mail_id"`
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("dead list line %q: %v", l, err)
		}
		kind, ok := wantQuarantined[e.MailID]
		switch {
		case !ok:
			t.Errorf("dead list shows mail %s, which is not a forgery: %s", e.MailID, l)
		case seen[e.MailID]:
			t.Errorf("mail %s is quarantined twice", e.MailID)
		case kind != "any" && e.Kind != kind, e.Reason == "", e.Mailbox != "be":
			t.Errorf("quarantine entry %s: kind %q, mailbox %q, reason %q; want kind %s, mailbox be and a reason", e.MailID, e.Kind, e.Mailbox, e.Reason, kind)
		}
		seen[e.MailID] = true
	}
	for id := range wantQuarantined {
		if !seen[id] {
			t.Errorf("the forgery %s is not in dead list", id)
		}
	}
	if t.Failed() {
		t.Logf("dead list:\n%s", r.stdout)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
