package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/actions"
	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/actions/outbox/smtpsink"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// TestActionsEndToEnd runs serve with the example configuration against
// an SMTP sink, puts in a notice of each class and a stranger's forward
// with `publish`, and checks the mails, then the operator's commands:
// tasks list and done, cases decide, summaries send (twice), actions
// release --list; and that a restart sends nothing again.
func TestActionsEndToEnd(t *testing.T) {
	sink := smtpsink.Start(t, smtpsink.Options{})
	cfg := writeConfigFrom(t, map[string]string{"smtp.address": `"` + sink.Addr() + `"`, "smtp.tls": "none"})
	serve := startServe(t, cfg, "serve")

	dir := t.TempDir()
	fixture := func(name string) []byte {
		raw, err := os.ReadFile(filepath.Join(repoRoot(t), "testdata", "notices", name))
		if err != nil {
			t.Fatal(err)
		}
		return bytes.ReplaceAll(raw, []byte("\n"), []byte("\r\n")) // as a mail server delivers it
	}
	files := map[string][]byte{
		"wrong.eml":      fixture("de-table-alt-anna-anja-wrong-person.eml"),
		"private.eml":    fixture("fr-table-alt-private-orange.eml"),
		"review.eml":     fixture("de-blocks-review-name-change.eml"),
		"negligible.eml": fixture("de-html-subdomain-negligible.eml"),
	}
	files["stranger.eml"] = []byte("From: mallory@example.org\r\nTo: triage@be.ch\r\nSubject: WG: eIAM\r\nMessage-ID: <x1@example.org>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nzur Triage\r\n--b\r\n" +
		"Content-Type: message/rfc822\r\n\r\n" + string(fixture("it-table-alt-wrong-person-gmail.eml")) + "\r\n--b--\r\n")
	for name, raw := range files {
		if err := os.WriteFile(filepath.Join(dir, name), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if r := runCLI(t, "publish", "--config", cfg.Path, dir); r.code != 0 {
		t.Fatalf("publish failed:\n%s", r)
	}

	// The escalation, the alert, the user mail and the decision asked.
	msgs := sink.Wait(t, 60*time.Second, "four mails", func(ms []smtpsink.Message) bool { return len(ms) >= 4 })
	kinds := map[string]smtpsink.Message{}
	for _, m := range msgs {
		kinds[smtpsink.Header(m.Raw, outbox.HeaderKind)] = m
	}
	esc, ok := kinds[outbox.KindEscalation]
	if !ok || len(esc.To) != 1 || esc.To[0] != "spiges@bfs.admin.ch" {
		t.Fatalf("no escalation to spiges@bfs.admin.ch among %d mails", len(msgs))
	}
	mt, content, err := smtpsink.Attachment(esc.Raw)
	if err != nil || mt != "message/rfc822" || !bytes.Equal(content, files["wrong.eml"]) {
		t.Errorf("the escalation's attachment (%s, %d bytes, %v) is not the original notice (%d bytes) byte for byte", mt, len(content), err, len(files["wrong.eml"]))
	}
	if a := kinds[outbox.KindAlert]; len(a.To) != 1 || a.To[0] != "martina.graf@be.ch" || smtpsink.Header(a.Raw, "Importance") != "high" {
		t.Errorf("alert to %v, importance %q; want an urgent alert to the superuser the notice was addressed to", a.To, smtpsink.Header(a.Raw, "Importance"))
	}
	if _, ok := kinds[outbox.KindDecision]; !ok {
		t.Error("no decision asked for the review case")
	}

	b := connectNATS(t, cfg)
	ctx := context.Background()
	waitFor(t, 30*time.Second, "the actions stage to settle", func() (bool, string) {
		return consumerSettled(ctx, b.JS, pipeline.StreamCases, actions.Name)
	})

	// The user mail went to the address entered in the portal.
	r := runCLI(t, "cases", "list", "--config", cfg.Path, "--json", "--class", "private-email")
	var pe event.Case
	if lines := nonEmptyLines(r.stdout); len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &pe) != nil {
		t.Fatalf("cases list --class private-email:\n%s", r)
	}
	if u := kinds[outbox.KindUserMail]; len(u.To) != 1 || u.To[0] != pe.Expected.Email || strings.EqualFold(u.To[0], pe.Actual.Email) {
		t.Errorf("user mail to %v, want the entered address %s (signed in with %s)", u.To, pe.Expected.Email, pe.Actual.Email)
	}
	// The French notice names no superuser: all of them in Reply-To.
	if rt := smtpsink.Header(kinds[outbox.KindUserMail].Raw, "Reply-To"); !strings.Contains(rt, "<martina.graf@be.ch>") || !strings.Contains(rt, "<peter.aebi@be.ch>") {
		t.Errorf("user mail Reply-To %q, want the superusers", rt)
	}

	// tasks list: the wrong person's deactivation, the private address's
	// deactivation and recreation.
	tasksJSON := func() []event.Task {
		t.Helper()
		r := runCLI(t, "tasks", "list", "--config", cfg.Path, "--json")
		if r.code != 0 {
			t.Fatalf("tasks list failed:\n%s", r)
		}
		var out []event.Task
		for _, l := range nonEmptyLines(r.stdout) {
			var tk event.Task
			if err := json.Unmarshal([]byte(l), &tk); err != nil {
				t.Fatalf("tasks list --json line %q: %v", l, err)
			}
			out = append(out, tk)
		}
		return out
	}
	tasks := tasksJSON()
	if len(tasks) != 3 {
		t.Fatalf("%d open tasks, want 3", len(tasks))
	}
	var urgent string
	for _, tk := range tasks {
		if tk.Urgent {
			urgent = tk.ID
		}
	}
	if r := runCLI(t, "tasks", "list", "--config", cfg.Path); r.code != 0 || !strings.Contains(r.stdout, "URGENT "+urgent) || !strings.Contains(r.stdout, "eIAM-Delegationsportal") {
		t.Errorf("tasks list does not show the urgent task and where to do it:\n%s", r)
	}
	if r := runCLI(t, "tasks", "done", "--config", cfg.Path, "--by", "Martina Graf", urgent); r.code != 0 || !strings.Contains(r.stdout, urgent+" done") {
		t.Fatalf("tasks done:\n%s", r)
	}
	if n := len(tasksJSON()); n != 2 {
		t.Errorf("%d open tasks after one was done, want 2", n)
	}
	if r := runCLI(t, "tasks", "done", "--config", cfg.Path, "deactivate.p.nonexistent"); r.code != 1 {
		t.Errorf("tasks done of an unknown task: exit %d, want 1\n%s", r.code, r)
	}

	// cases decide: the review case is a change of name.
	var reviewCase string
	r = runCLI(t, "cases", "list", "--config", cfg.Path, "--json", "--class", "review")
	for _, l := range nonEmptyLines(r.stdout) {
		var c event.Case
		if err := json.Unmarshal([]byte(l), &c); err == nil {
			reviewCase = c.ID
		}
	}
	if reviewCase == "" {
		t.Fatalf("no review case:\n%s", r)
	}
	if r := runCLI(t, "cases", "decide", "--config", cfg.Path, reviewCase, "negligible", "--by", "Martina Graf", "--why", "married: new name"); r.code != 0 ||
		!strings.Contains(r.stdout, "decided negligible by Martina Graf") || !strings.Contains(r.stdout, "record: done") {
		t.Errorf("cases decide:\n%s", r)
	}
	if r := runCLI(t, "cases", "decide", "--config", cfg.Path, reviewCase, "wrong-person", "--by", "Peter", "--why", "x"); r.code != 1 || !strings.Contains(r.stderr, "decided already") {
		t.Errorf("deciding otherwise:\n%s", r)
	}
	// The decision is shown beside the case: in the list (text and JSON),
	// under its decided class too, and by cases show.
	r = runCLI(t, "cases", "list", "--config", cfg.Path, "--json", "--class", "negligible")
	decided := false
	for _, l := range nonEmptyLines(r.stdout) {
		var c struct {
			ID       string `json:"id"`
			Class    string `json:"class"`
			Decision *struct {
				Class, By, Why string
			} `json:"decision"`
		}
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatalf("cases list --json: %v: %q", err, l)
		}
		if c.ID == reviewCase {
			decided = c.Class == "review" && c.Decision != nil && c.Decision.Class == "negligible" && c.Decision.By == "Martina Graf" && c.Decision.Why == "married: new name"
		} else if c.Decision != nil {
			t.Errorf("case %s, never decided, lists a decision %+v", c.ID, *c.Decision)
		}
	}
	if !decided {
		t.Errorf("cases list --class negligible --json does not list %s as a review case decided negligible by Martina Graf:\n%s", reviewCase, r)
	}
	if r := runCLI(t, "cases", "list", "--config", cfg.Path); !strings.Contains(r.stdout, "review → negligible (decided)") {
		t.Errorf("cases list does not show the decision:\n%s", r)
	}
	if r := runCLI(t, "cases", "show", "--config", cfg.Path, reviewCase); !strings.Contains(r.stdout, "decided NEGLIGIBLE by Martina Graf on ") || !strings.Contains(r.stdout, ": married: new name") {
		t.Errorf("cases show does not show the decision:\n%s", r)
	}

	// summaries send: one per superuser, then nothing.
	r = runCLI(t, "summaries", "send", "--config", cfg.Path)
	if r.code != 0 || !strings.Contains(r.stdout, "be: period ") || !strings.Contains(r.stdout, ": 2 summaries in the outbox") {
		t.Fatalf("summaries send:\n%s", r)
	}
	sums := sink.Wait(t, 60*time.Second, "two summaries", func(ms []smtpsink.Message) bool {
		n := 0
		for _, m := range ms {
			if smtpsink.Header(m.Raw, outbox.HeaderKind) == outbox.KindSummary {
				n++
			}
		}
		return n == 2
	})
	if r := runCLI(t, "summaries", "send", "--config", cfg.Path); r.code != 0 || !strings.Contains(r.stdout, "summarised before") {
		t.Errorf("summaries send again:\n%s", r)
	}
	if r := runCLI(t, "actions", "release", "--config", cfg.Path, "--list"); r.code != 0 || !strings.Contains(r.stdout, "HELD SINCE") {
		t.Errorf("actions release --list:\n%s", r)
	}

	// A restart sends nothing again.
	before := len(sums)
	serve.stop()
	startServe(t, cfg, "serve again")
	b2 := connectNATS(t, cfg)
	waitFor(t, 30*time.Second, "the restarted actions stage to settle", func() (bool, string) {
		return consumerSettled(ctx, b2.JS, pipeline.StreamCases, actions.Name)
	})
	waitFor(t, 30*time.Second, "the restarted outbox to settle", func() (bool, string) {
		return consumerSettled(ctx, b2.JS, pipeline.StreamTasks, outbox.Name)
	})
	if n := len(sink.Messages()); n != before {
		t.Errorf("%d mails after the restart, %d before: something was sent again", n, before)
	}
	for _, m := range sink.Messages() {
		for _, to := range m.To {
			if strings.Contains(to, "gmail") || strings.Contains(to, "orange.fr") {
				t.Errorf("a mail to the private address %s", to)
			}
		}
	}
}
