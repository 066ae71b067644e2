package main

// End-to-end tests: the binary built by TestMain, run as subprocesses with
// the example configuration, the way an operator runs it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eiamtriage/eiamtriage/ingest"
	"github.com/eiamtriage/eiamtriage/internal/config"
)

// The names the tests rely on: the contract between serve and the
// commands and tools that read its state.
const (
	bucketCases    = "eiam_cases"
	streamNotices  = "EIAM_NOTICES"
	streamCases    = "EIAM_CASES"
	streamDead     = "EIAM_DEAD"
	classifyStage  = "classify"
	subjectCases   = "eiam.case.>"
	subjectIgnored = "eiam.notice.ignored"
	subjectQuarant = "eiam.dead.quarantine"
	subjectDead    = "eiam.dead.>"
)

// goldenEntry is the part of testdata/notices/golden.json the tests use.
type goldenEntry struct {
	Class      string `json:"class"`
	NotANotice string `json:"not_a_notice"`
	// Quarantine is the kind of the sender authentication verdict under
	// the example configuration when it does not trust the notice.
	Quarantine string `json:"quarantine"`
	Delivery   string `json:"delivery"`
	ProfileID  string `json:"profile_id"`
	Language   string `json:"language"`
}

func readGolden(t *testing.T, dir string) map[string]goldenEntry {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "golden.json"))
	if err != nil {
		t.Fatalf("read golden.json: %v", err)
	}
	var g map[string]goldenEntry
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatalf("decode golden.json: %v", err)
	}
	return g
}

// expectedCase is one case the fixtures must produce.
type expectedCase struct {
	key       string
	profileID string
	class     string          // the most severe class of its fixtures
	languages map[string]bool // of its fixtures
	files     []string
	mailIDs   map[string]bool // the fixtures' mail ids
}

// expectedNoticeCases derives the cases from golden.json: one per profile
// id (or per mail, for a notice without one) over every fixture that is a
// notice sender authentication trusts, with the most severe class of its
// fixtures. It also returns how many fixtures are not a notice (ignored),
// how many sender authentication quarantines (golden.json's quarantine: a
// look-alike sender, a forward by someone who is not one of the
// superusers, a mail without the boundary server's Authentication-Results),
// and how many .eml files the directory holds (every one of them must be
// in golden.json). A forward from one of the superusers that golden.json
// does not quarantine, or from anyone else that it does not, fails the
// test: the fixtures' outer From says who forwarded them.
func expectedNoticeCases(t *testing.T, dir string, superusers []string) (want map[string]*expectedCase, ignored, quarantined, files int) {
	t.Helper()
	golden := readGolden(t, dir)
	emls, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range emls {
		if _, ok := golden[filepath.Base(p)]; !ok {
			t.Fatalf("%s is not in golden.json: the expected cases would be incomplete", p)
		}
	}
	want = map[string]*expectedCase{}
	for name, g := range golden {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("golden.json names %s: %v", name, err)
		}
		forward := g.Delivery != "" && g.Delivery != "direct"
		if forward && !slices.Contains(superusers, outerFrom(t, name, raw)) && g.Quarantine == "" {
			t.Fatalf("golden.json trusts %s, forwarded by %s, who is none of the superusers %q", name, outerFrom(t, name, raw), superusers)
		}
		switch {
		case g.Quarantine != "":
			quarantined++
			continue
		case g.Class == "not-a-notice":
			ignored++
			continue
		case severity(g.Class) == 0:
			t.Fatalf("golden.json: %s has the unknown class %q", name, g.Class)
		}
		key := caseKey(g.ProfileID, raw)
		c := want[key]
		if c == nil {
			c = &expectedCase{key: key, profileID: g.ProfileID, languages: map[string]bool{}, mailIDs: map[string]bool{}}
			want[key] = c
		}
		if severity(g.Class) > severity(c.class) {
			c.class = g.Class
		}
		c.languages[g.Language] = true
		c.files = append(c.files, name)
		c.mailIDs[mailID(raw)] = true
	}
	return want, ignored, quarantined, len(emls)
}

// outerFrom returns the address of a fixture's From header, in lower case.
func outerFrom(t *testing.T, name string, raw []byte) string {
	t.Helper()
	m := regexp.MustCompile(`(?mi)^From:.*?<?([^<>\s]+@[^<>\s]+?)>?\r?$`).FindSubmatch(raw)
	if m == nil {
		t.Fatalf("%s has no From address", name)
	}
	return strings.ToLower(string(m[1]))
}

// checkCases compares the listed cases with the expected ones: every
// expected case exactly once, nothing else, with its class, profile id,
// language and only notices from its own fixtures, each published.
func checkCases(t *testing.T, list []caseRecord, want map[string]*expectedCase) {
	t.Helper()
	seen := map[string]int{}
	for _, c := range list {
		seen[c.ID]++
		w, ok := want[c.ID]
		if !ok {
			t.Errorf("unexpected case %s (profile %q, class %s, %d notices)", c.ID, c.ProfileID, c.Class, len(c.Notices))
			continue
		}
		if seen[c.ID] > 1 {
			continue // reported below
		}
		if c.Class != w.class {
			t.Errorf("case %s (fixtures %v): class %q, want %q", c.ID, w.files, c.Class, w.class)
		}
		if c.ProfileID != w.profileID {
			t.Errorf("case %s: profile id %q, want %q", c.ID, c.ProfileID, w.profileID)
		}
		if len(w.languages) == 1 && !w.languages[c.Language] {
			t.Errorf("case %s (fixtures %v): language %q, want %v", c.ID, w.files, c.Language, w.languages)
		}
		if len(c.Notices) == 0 || len(c.Notices) > len(w.files) {
			t.Errorf("case %s: %d notices, want 1 to %d (fixtures %v)", c.ID, len(c.Notices), len(w.files), w.files)
		}
		refs := map[string]bool{}
		for _, n := range c.Notices {
			if !w.mailIDs[n.MailID] {
				t.Errorf("case %s: notice from mail %s, which is none of its fixtures %v", c.ID, n.MailID, w.files)
			}
			if refs[n.MailID] {
				t.Errorf("case %s: mail %s joined twice", c.ID, n.MailID)
			}
			refs[n.MailID] = true
			if n.ReceivedSeq == 0 {
				t.Errorf("case %s: the notice from mail %s has no received event sequence", c.ID, n.MailID)
			}
		}
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("case %s is listed %d times", id, n)
		}
	}
	for key, w := range want {
		if seen[key] == 0 {
			t.Errorf("no case %s (class %s, fixtures %v)", key, w.class, w.files)
		}
	}
}

func nonEmptyLines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// TestCommandsAsAPersonUsesThem runs serve with the example configuration,
// sender authentication on as it is there (the fixtures carry the
// Authentication-Results header of its boundary server, or are forged),
// and the commands a person uses on it: publish the fixtures (twice),
// cases list, cases show and config check.
func TestCommandsAsAPersonUsesThem(t *testing.T) {
	cfg := writeExampleConfig(t)
	startServe(t, cfg, "serve")
	nc := connectNATS(t, cfg) // to see when the classify stage is idle
	noticesDir := filepath.Join(repoRoot(t), "testdata", "notices")
	loaded, err := config.LoadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	want, ignored, quarantined, files := expectedNoticeCases(t, noticesDir, loaded.Mailboxes[0].Superusers)
	if len(want) == 0 || files == 0 {
		t.Fatalf("no fixtures in %s", noticesDir)
	}

	publish := func(fresh, again int) {
		t.Helper()
		r := runCLI(t, "publish", "--config", cfg.Path, noticesDir)
		if r.code != 0 {
			t.Fatalf("publish failed:\n%s", r)
		}
		if n := len(nonEmptyLines(r.stdout)); n != files {
			t.Errorf("publish printed %d lines, want one per mail (%d):\n%s", n, files, r)
		}
		if wantSummary := fmt.Sprintf("published %d mail(s), %d already taken in, 0 failed", fresh, again); !strings.Contains(r.stderr, wantSummary) {
			t.Errorf("publish: stderr lacks %q:\n%s", wantSummary, r)
		}
	}
	listCases := func() ([]caseRecord, error) {
		t.Helper()
		r := runCLI(t, "cases", "list", "--config", cfg.Path, "--json")
		if r.code != 0 {
			return nil, errors.New(r.String())
		}
		return parseCaseLines(r.stdout)
	}
	waitIdle := func() {
		t.Helper()
		waitFor(t, 30*time.Second, "the classify stage to settle every mail", func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return consumerSettled(ctx, nc.JS, streamNotices, classifyStage)
		})
	}

	// Before anything is published, the list is empty, not an error.
	if list, err := listCases(); err != nil || len(list) != 0 {
		t.Fatalf("cases list --json before any mail: %d cases, error %v; want none and no error", len(list), err)
	}

	publish(files, 0)
	waitFor(t, 60*time.Second, fmt.Sprintf("%d cases in `cases list --json`", len(want)), func() (bool, string) {
		list, err := listCases()
		if err != nil {
			return false, err.Error()
		}
		return len(list) >= len(want), fmt.Sprintf("%d cases", len(list))
	})
	waitIdle()
	first, err := listCases()
	if err != nil {
		t.Fatal(err)
	}
	checkCases(t, first, want)

	// Every mail that is not a notice is recorded once: on
	// eiam.notice.ignored, or, from a look-alike sender, quarantined on
	// eiam.dead.quarantine. Nothing else is a dead letter.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, w := range []struct {
		stream, subject string
		want            int
	}{
		{streamNotices, subjectIgnored, ignored},
		{streamDead, subjectQuarant, quarantined},
		{streamDead, subjectDead, quarantined},
	} {
		if n, err := subjectCount(ctx, nc.JS, w.stream, w.subject); err != nil || n != uint64(w.want) {
			t.Errorf("%s holds %d messages on %s (err %v), want %d", w.stream, n, w.subject, err, w.want)
		}
	}

	// The operations listener: alive, and the metrics count what happened.
	metrics := checkMetrics(t, cfg.HTTPListen, map[string]float64{
		`eiamtriage_mails_total{mailbox="be",outcome="notice"}`:      float64(files - ignored - quarantined),
		`eiamtriage_messages_total{outcome="ack",stage="classify"}`:  float64(files),
		`eiamtriage_messages_total{outcome="dead",stage="classify"}`: 0,
		`eiamtriage_consumer_running{stage="classify"}`:              1,
	})
	q := 0.0
	for _, kind := range []string{"untrusted-sender", "untrusted-forwarder", "unauthenticated", "ambiguous-sender"} {
		q += metrics[`eiamtriage_mails_total{mailbox="be",outcome="ignored-`+kind+`"}`]
	}
	if q != float64(quarantined) {
		t.Errorf("metrics count %v quarantined mails (untrusted, unauthenticated or ambiguous senders and forwarders), want %d", q, quarantined)
	}

	// dead list shows the quarantined mails, each with its kind and reason.
	if r := runCLI(t, "dead", "list", "--config", cfg.Path, "--json"); r.code != 0 {
		t.Errorf("dead list failed:\n%s", r)
	} else {
		lines := nonEmptyLines(r.stdout)
		if len(lines) != quarantined {
			t.Errorf("dead list shows %d entries, want the %d quarantined mails:\n%s", len(lines), quarantined, r.stdout)
		}
		for _, l := range lines {
			var e struct {
				Kind   string `json:"kind"`
				Reason string `json:"reason"`
				MailID string `json:"mail_id"`
			}
			if err := json.Unmarshal([]byte(l), &e); err != nil || !slices.Contains([]string{"untrusted-sender", "untrusted-forwarder", "unauthenticated", "ambiguous-sender"}, e.Kind) || e.Reason == "" || e.MailID == "" {
				t.Errorf("dead list entry %s (%v)", l, err)
			}
		}
	}
	if r := runCLI(t, "dead", "list", "--config", cfg.Path); r.code != 0 || !strings.Contains(r.stdout, "quarantined from mailbox be (unauthenticated") {
		t.Errorf("dead list (table):\n%s", r)
	}

	// The same mails again: recognised at once (within the streams'
	// duplicate window), and nothing joins twice.
	publish(0, files)
	waitIdle()
	second, err := listCases()
	if err != nil {
		t.Fatal(err)
	}
	if len(second) != len(first) {
		t.Errorf("after publishing the same mails again: %d cases, before %d", len(second), len(first))
	}
	before := map[string]caseRecord{}
	for _, c := range first {
		before[c.ID] = c
	}
	for _, c := range second {
		b, ok := before[c.ID]
		switch {
		case !ok:
			t.Errorf("after publishing the same mails again: new case %s", c.ID)
		case len(c.Notices) != len(b.Notices) || c.noticeSummary() != b.noticeSummary():
			t.Errorf("after publishing the same mails again: case %s has %d notices [%s], before %d [%s]",
				c.ID, len(c.Notices), c.noticeSummary(), len(b.Notices), b.noticeSummary())
		case c.Class != b.Class:
			t.Errorf("after publishing the same mails again: case %s is %s, before %s", c.ID, c.Class, b.Class)
		}
	}

	// cases show, by profile id as eIAM writes it and in upper case.
	keys := make([]string, 0, len(want))
	for k, w := range want {
		if w.profileID != "" && len(w.files) == 1 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		t.Fatal("no fixture case with a profile id to show")
	}
	w := want[keys[0]]
	for _, id := range []string{w.profileID, strings.ToUpper(w.profileID)} {
		r := runCLI(t, "cases", "show", "--config", cfg.Path, id)
		if r.code != 0 {
			t.Errorf("cases show %s:\n%s", id, r)
			continue
		}
		for _, s := range []string{
			fmt.Sprintf("case %s (mailbox be): %s ", w.key, strings.ToUpper(w.class)),
			"profile " + w.profileID + ",",
			"1 notice(s):",
		} {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("cases show %s: output lacks %q:\n%s", id, s, r)
			}
		}
	}
	if r := runCLI(t, "cases", "show", "--config", cfg.Path, "no-such-profile"); r.code == 0 || !strings.Contains(r.stderr, "no such case") {
		t.Errorf("cases show of an unknown profile: want a non-zero exit and \"no such case\" on stderr:\n%s", r)
	}

	// config check: the generated file is valid; an unknown key is named
	// with its line.
	if r := runCLI(t, "config", "check", cfg.Path); r.code != 0 || !strings.Contains(r.stdout, "configuration is valid") {
		t.Errorf("config check of the generated configuration:\n%s", r)
	}
	text, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(text), "\n")
	at := -1
	for i, l := range lines {
		if l == "pipeline:" {
			at = i + 1
			break
		}
	}
	if at < 0 {
		t.Fatalf("no \"pipeline:\" line in %s", cfg.Path)
	}
	lines = append(lines[:at], append([]string{"  wrokers: 4"}, lines[at:]...)...)
	bad := filepath.Join(t.TempDir(), "unknown-key.yaml")
	if err := os.WriteFile(bad, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "config", "check", bad)
	if r.code == 0 {
		t.Errorf("config check of a file with an unknown key exited 0:\n%s", r)
	}
	for _, s := range []string{fmt.Sprintf("line %d:", at+1), `"wrokers"`} {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("config check of a file with an unknown key: stderr lacks %q:\n%s", s, r)
		}
	}
}

// restartFixture is the notice the restart test copies: plain text,
// quoted-printable, its profile id and Message-ID verbatim in its bytes.
const restartFixture = "en-table-text-given-family-email-address.eml"

// generatedMail is one copy of restartFixture with its own profile id and
// Message-ID.
type generatedMail struct {
	raw       []byte
	profileID string
	messageID string // without angle brackets
	mailID    string
	key       string
}

var (
	uuidRE      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	messageIDRE = regexp.MustCompile(`(?mi)^Message-ID:[ \t]*(<[^>\r\n]+>)`)
)

// generateNotices makes n distinct notices from restartFixture, replacing
// its profile id (the last 12 hex digits) and its Message-ID in the raw
// bytes; the lengths stay, so the quoted-printable lines do too. It
// returns the mails and the fixture's class.
func generateNotices(t *testing.T, n int) ([]generatedMail, string) {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "testdata", "notices")
	g, ok := readGolden(t, dir)[restartFixture]
	if !ok || g.Class == "not-a-notice" {
		t.Fatalf("golden.json has no notice %s", restartFixture)
	}
	raw, err := os.ReadFile(filepath.Join(dir, restartFixture))
	if err != nil {
		t.Fatal(err)
	}
	if !uuidRE.MatchString(g.ProfileID) {
		t.Fatalf("%s: profile id %q is not a lower-case UUID; the generator replaces its last 12 hex digits", restartFixture, g.ProfileID)
	}
	if !bytes.Contains(raw, []byte(g.ProfileID)) {
		t.Fatalf("%s: profile id %s is not verbatim in the mail", restartFixture, g.ProfileID)
	}
	m := messageIDRE.FindSubmatch(raw)
	if m == nil {
		t.Fatalf("%s has no Message-ID header", restartFixture)
	}
	oldMsgID := m[1]
	mails := make([]generatedMail, n)
	seen := map[string]bool{}
	for i := range mails {
		pid := g.ProfileID[:24] + fmt.Sprintf("%012x", 0xe2e000000000+i)
		msgID := fmt.Sprintf("e2e-restart-%04d@eiam.admin.ch", i)
		b := bytes.ReplaceAll(raw, []byte(g.ProfileID), []byte(pid))
		b = bytes.ReplaceAll(b, oldMsgID, []byte("<"+msgID+">"))
		if bytes.Contains(b, []byte(g.ProfileID)) || !bytes.Contains(b, []byte(pid)) || !bytes.Contains(b, []byte(msgID)) {
			t.Fatalf("generating mail %d: the replacements did not take", i)
		}
		id := mailID(b)
		if seen[id] || pid == g.ProfileID {
			t.Fatalf("generating mail %d: not distinct", i)
		}
		seen[id] = true
		mails[i] = generatedMail{raw: b, profileID: pid, messageID: msgID, mailID: id, key: caseKey(pid, b)}
	}
	return mails, g.Class
}

// countKeys returns how many keys the bucket holds.
func countKeys(ctx context.Context, kv jetstream.KeyValue) (int, error) {
	lister, err := kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for range lister.Keys() {
		n++
	}
	_ = lister.Stop() // done already when Keys is drained
	return n, nil
}

// readCases returns every case in the bucket.
func readCases(ctx context.Context, kv jetstream.KeyValue) ([]caseRecord, error) {
	lister, err := kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	_ = lister.Stop() // done already when Keys is drained
	var out []caseRecord
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("get case %s: %w", k, err)
		}
		var c caseRecord
		if err := json.Unmarshal(e.Value(), &c); err != nil {
			return nil, fmt.Errorf("case %s: %w", k, err)
		}
		if c.ID != k {
			return nil, fmt.Errorf("case under key %s has the id %q", k, c.ID)
		}
		out = append(out, c)
	}
	return out, nil
}

// caseEvent is the part of a case event on eiam.case.> the test reads.
type caseEvent struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Subject string `json:"subject"`
	Data    struct {
		Change string `json:"change"`
		MailID string `json:"mail_id"`
		Case   struct {
			ID    string `json:"id"`
			Class string `json:"class"`
		} `json:"case"`
	} `json:"data"`
	natsSubject, msgID string
}

// readCaseEvents reads every message of EIAM_CASES on eiam.case.> with an
// ordered consumer, expecting n.
func readCaseEvents(ctx context.Context, js jetstream.JetStream, n int) ([]caseEvent, error) {
	oc, err := js.OrderedConsumer(ctx, streamCases, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subjectCases}})
	if err != nil {
		return nil, err
	}
	var out []caseEvent
	for len(out) < n {
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("read %d of %d case events: %w", len(out), n, err)
		}
		batch, err := oc.Fetch(n-len(out), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return out, err
		}
		for m := range batch.Messages() {
			var ev caseEvent
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				return out, fmt.Errorf("message on %s is not a case event: %w", m.Subject(), err)
			}
			ev.natsSubject, ev.msgID = m.Subject(), m.Headers().Get(jetstream.MsgIDHeader)
			out = append(out, ev)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return out, err
		}
	}
	return out, nil
}

// TestRestartAfterSIGKILL kills serve in the middle of a batch and starts
// it again on the same data: every notice must end up in exactly one case,
// once, with exactly one case event.
func TestRestartAfterSIGKILL(t *testing.T) {
	const total = 300
	cfg := writeExampleConfig(t)
	loaded, err := config.LoadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	mails, class := generateNotices(t, total)
	want := map[string]generatedMail{}
	for _, m := range mails {
		want[m.key] = m
	}
	if len(want) != total {
		t.Fatalf("%d distinct case keys among %d generated notices", len(want), total)
	}

	// Each handler of serve-1 waits 100 ms (a test hook), so that the
	// batch takes about a second and the kill lands in its middle.
	first := startServeEnv(t, cfg, "serve-1", []string{"EIAMTRIAGE_TESTHOOK_DELAY=100ms"})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Publish in-process, as `publish` does, many at once, so that the
	// classify stage has a backlog when it is killed.
	nc := connectNATS(t, cfg)
	reader, err := ingest.ReaderFor(loaded)
	if err != nil {
		t.Fatal(err)
	}
	in, err := ingest.NewIntake(ctx, nc.JS, reader, int64(loaded.Pipeline.MaxMailSize), nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, total)
	const publishers = 32
	for w := range publishers {
		wg.Go(func() {
			for i := w; i < total; i += publishers {
				if _, err := in.Submit(ctx, mails[i].raw, loaded.Mailboxes[0].Name, fmt.Sprintf("e2e:%d", i)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("submit: %v", err)
	}

	kv, err := nc.JS.KeyValue(ctx, bucketCases)
	if err != nil {
		t.Fatal(err)
	}
	atKill := 0
	waitFor(t, 30*time.Second, "at least 50 cases before the kill", func() (bool, string) {
		n, err := countKeys(ctx, kv)
		if err != nil {
			return false, err.Error()
		}
		atKill = n
		return n >= 50, fmt.Sprintf("%d cases", n)
	})
	nc.Close()
	first.kill()

	// What serve-1 left, read from its store: the kill came in the middle
	// of the batch, with some cases but not all, and a backlog.
	store := openStoreOf(t, cfg)
	skv, err := store.JS.KeyValue(ctx, bucketCases)
	if err != nil {
		t.Fatal(err)
	}
	if atKill, err = countKeys(ctx, skv); err != nil {
		t.Fatal(err)
	}
	cons, err := store.JS.Consumer(ctx, streamNotices, classifyStage)
	if err != nil {
		t.Fatal(err)
	}
	ci := cons.CachedInfo()
	backlog := ci.NumPending + uint64(ci.NumAckPending)
	store.Close()
	t.Logf("killed serve-1 with SIGKILL at %d of %d cases; %d mails not delivered yet, %d delivered and not acknowledged", atKill, total, ci.NumPending, ci.NumAckPending)
	if atKill == 0 || atKill >= total || backlog == 0 {
		t.Fatalf("the kill did not come in the middle of the batch: %d of %d cases, a backlog of %d", atKill, total, backlog)
	}

	restarted := time.Now()
	startServe(t, cfg, "serve-2")
	nc = connectNATS(t, cfg)
	kv, err = nc.JS.KeyValue(ctx, bucketCases)
	if err != nil {
		t.Fatal(err)
	}
	// A mail delivered to serve-1 and not acknowledged when it died is
	// delivered again once its ack wait (pipeline.ack_wait, 1m in the
	// example) has passed since that delivery: the wait is bounded by it.
	var list []caseRecord
	waitFor(t, time.Duration(loaded.Pipeline.AckWait)+40*time.Second, fmt.Sprintf("%d cases, every event published, the classify stage settled", total), func() (bool, string) {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		defer ccancel()
		// Cheap checks first: this polls for up to a minute.
		n, err := countKeys(cctx, kv)
		if err != nil {
			return false, err.Error()
		}
		settled, state := consumerSettled(cctx, nc.JS, streamNotices, classifyStage)
		if n < total || !settled {
			return false, fmt.Sprintf("%d cases; %s", n, state)
		}
		list, err = readCases(cctx, kv)
		if err != nil {
			return false, err.Error()
		}
		unpublished := 0
		for _, c := range list {
			for _, n := range c.Notices {
				if n.ReceivedSeq == 0 {
					unpublished++
				}
			}
		}
		return len(list) >= total && unpublished == 0,
			fmt.Sprintf("%d cases, %d notices without their event; %s", len(list), unpublished, state)
	})
	t.Logf("all %d cases %s after the restart", total, time.Since(restarted).Round(100*time.Millisecond))

	// Exactly one case per profile, with exactly one notice.
	if len(list) != total {
		t.Errorf("%d cases, want %d", len(list), total)
	}
	seen := map[string]bool{}
	for _, c := range list {
		m, ok := want[c.ID]
		switch {
		case !ok:
			t.Errorf("unexpected case %s (profile %q)", c.ID, c.ProfileID)
			continue
		case seen[c.ID]:
			t.Errorf("case %s twice", c.ID)
			continue
		}
		seen[c.ID] = true
		if c.ProfileID != m.profileID || c.Class != class {
			t.Errorf("case %s: profile %q, class %q; want %q, %q", c.ID, c.ProfileID, c.Class, m.profileID, class)
		}
		if len(c.Notices) != 1 {
			t.Errorf("case %s: %d notices [%s], want exactly 1", c.ID, len(c.Notices), c.noticeSummary())
			continue
		}
		n := c.Notices[0]
		if n.MailID != m.mailID || strings.Trim(n.MessageID, "<>") != m.messageID || n.Duplicates != 0 || n.Change != "created" {
			t.Errorf("case %s: notice mail %s, Message-ID %q, %d duplicates, change %q; want mail %s, Message-ID %q, no duplicates, created",
				c.ID, n.MailID, n.MessageID, n.Duplicates, n.Change, m.mailID, m.messageID)
		}
	}

	// Exactly one case event per case: no event published twice across
	// the kill.
	n, err := subjectCount(ctx, nc.JS, streamCases, subjectCases)
	if err != nil {
		t.Fatal(err)
	}
	if n != total {
		t.Errorf("%s holds %d messages on %s, want one per case: %d", streamCases, n, subjectCases, total)
	}
	events, err := readCaseEvents(ctx, nc.JS, int(n))
	if err != nil {
		t.Fatalf("read the case events: %v", err)
	}
	eventIDs := map[string]int{}
	eventCases := map[string]int{}
	for _, ev := range events {
		eventIDs[ev.ID]++
		eventCases[ev.Data.Case.ID]++
		m, ok := want[ev.Data.Case.ID]
		switch {
		case !ok:
			t.Errorf("event %s is about the unexpected case %q", ev.ID, ev.Data.Case.ID)
		case ev.Data.MailID != m.mailID || ev.Data.Change != "created" || ev.natsSubject != "eiam.case."+class || ev.msgID != ev.ID:
			t.Errorf("event %s on %s (Nats-Msg-Id %q): case %s, mail %s, change %q; want subject eiam.case.%s, mail %s, created",
				ev.ID, ev.natsSubject, ev.msgID, ev.Data.Case.ID, ev.Data.MailID, ev.Data.Change, class, m.mailID)
		}
	}
	if len(eventIDs) != len(events) {
		t.Errorf("%d case events with %d distinct ids", len(events), len(eventIDs))
	}
	for id, k := range eventCases {
		if k != 1 {
			t.Errorf("case %s has %d events, want 1", id, k)
		}
	}
	if len(eventCases) != total {
		t.Errorf("events for %d cases, want %d", len(eventCases), total)
	}

	// Nothing was given up.
	if dead, err := subjectCount(ctx, nc.JS, streamDead, subjectDead); err != nil || dead != 0 {
		t.Errorf("%s holds %d dead letters (err %v), want none", streamDead, dead, err)
	}
}

// checkMetrics fetches /healthz and /metrics from the operations listener
// and compares the samples named in want (the exposition format's
// "name{labels}" as written by client_golang) with their values. It
// returns every sample it read.
func checkMetrics(t *testing.T, addr string, want map[string]float64) map[string]float64 {
	t.Helper()
	get := func(path string) string {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s\n%s", path, resp.Status, body)
		}
		return string(body)
	}
	if h := get("/healthz"); strings.TrimSpace(h) != "ok" {
		t.Errorf("/healthz says %q", h)
	}
	got := map[string]float64{}
	for _, line := range strings.Split(get("/metrics"), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			got[line[:i]] = v
		}
	}
	for name, w := range want {
		v, ok := got[name]
		if !ok && w == 0 {
			continue // a counter never incremented is not exposed
		}
		if !ok || v != w {
			t.Errorf("metric %s = %v (exposed: %v), want %v", name, v, ok, w)
		}
	}
	return got
}
