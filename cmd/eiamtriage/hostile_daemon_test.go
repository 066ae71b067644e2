package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/broker"
	"github.com/eiamtriage/eiamtriage/internal/event"
)

// openStoreOf opens the JetStream store of cfg's data_dir with an embedded
// server of the test's own, on a free port, as serve would: to see the
// state a serve that has stopped (or was killed) left. The caller closes
// it.
func openStoreOf(t *testing.T, cfg testConfig) *broker.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := broker.Open(ctx, broker.Options{
		Listen: "127.0.0.1:0", StoreDir: filepath.Join(cfg.DataDir, "nats"), StateDir: cfg.DataDir, Name: "e2e-test-store",
	}, nil)
	if err != nil {
		t.Fatalf("open the store of %s: %v", cfg.DataDir, err)
	}
	return b
}

// hookEntry is one line of the test hooks' log: the classify handler was
// entered for the message seq, on its delivery-th delivery.
type hookEntry struct {
	seq, delivery uint64
	source        string
}

// readHookLog reads the test hooks' log (testhooks.go); a log not written
// yet is empty.
func readHookLog(t *testing.T, path string) []hookEntry {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []hookEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e hookEntry
		if _, err := fmt.Sscanf(sc.Text(), "%d %d %s", &e.seq, &e.delivery, &e.source); err != nil {
			t.Fatalf("hook log line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// writeMails writes the generated mails into a new directory, the first
// as first.eml (it sorts first, so publish takes it in first), the others
// as notice-NNN.eml.
func writeMails(t *testing.T, first string, mails []generatedMail) string {
	t.Helper()
	dir := t.TempDir()
	for i, m := range mails {
		name := fmt.Sprintf("notice-%03d.eml", i)
		if i == 0 {
			name = first
		}
		if err := os.WriteFile(filepath.Join(dir, name), m.raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestHostileMailInTheDaemon publishes a mail whose handler never returns
// (a test hook stands for a reading that never ends) beside ordinary
// notices: the notices get their cases at once, the hostile mail ends as
// one dead letter on its first delivery, and no second worker ever holds
// it (the hooks count the handler's entries per message).
func TestHostileMailInTheDaemon(t *testing.T) {
	cfg := writeConfigFrom(t, map[string]string{"pipeline.ack_wait": "3s"}) // handler deadline 2.4s, abandoned 0.6s later
	hookLog := filepath.Join(t.TempDir(), "hooks.log")
	startServeEnv(t, cfg, "serve", []string{"EIAMTRIAGE_TESTHOOK_LOG=" + hookLog, "EIAMTRIAGE_TESTHOOK_BLOCK=hostile.eml"})
	mails, _ := generateNotices(t, 21)
	hostile, ordinary := mails[0], mails[1:]
	dir := writeMails(t, "hostile.eml", mails)

	published := time.Now()
	if r := runCLI(t, "publish", "--config", cfg.Path, dir); r.code != 0 || !strings.Contains(r.stderr, "published 21 mail(s)") {
		t.Fatalf("publish:\n%s", r)
	}
	nc := connectNATS(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kv, err := nc.JS.KeyValue(ctx, bucketCases)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the ordinary notices' cases", func() (bool, string) {
		n, err := countKeys(ctx, kv)
		return err == nil && n == len(ordinary), fmt.Sprintf("%d cases (%v)", n, err)
	})
	t.Logf("%d cases %s after publishing", len(ordinary), time.Since(published).Round(10*time.Millisecond))
	waitFor(t, 20*time.Second, "the hostile mail's dead letter", func() (bool, string) {
		n, err := subjectCount(ctx, nc.JS, streamDead, event.DeadSubject(classifyStage))
		return err == nil && n == 1, fmt.Sprintf("%d dead letters (%v)", n, err)
	})
	waitFor(t, 20*time.Second, "the classify stage to settle every mail", func() (bool, string) {
		return consumerSettled(ctx, nc.JS, streamNotices, classifyStage)
	})

	// The hostile mail: one dead letter, first delivery, the reason.
	r := runCLI(t, "dead", "list", "--config", cfg.Path, "--json")
	if r.code != 0 {
		t.Fatalf("dead list:\n%s", r)
	}
	var dead []deadEntry
	for _, l := range nonEmptyLines(r.stdout) {
		var e deadEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("dead list line %q: %v", l, err)
		}
		dead = append(dead, e)
	}
	if len(dead) != 1 || dead[0].Stage != classifyStage || dead[0].Deliveries != 1 || !strings.Contains(dead[0].Reason, "did not return") {
		t.Fatalf("dead list: %+v, want one dead letter of classify after 1 delivery saying the handler did not return", dead)
	}
	// The ordinary notices did not wait for it: every case was created
	// before the hostile mail was given up.
	list, err := readCases(ctx, kv)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.ID == hostile.key {
			t.Errorf("the hostile mail became the case %s", c.ID)
		}
		if !c.Created.Before(dead[0].At) {
			t.Errorf("case %s created %s, after the hostile mail was given up at %s", c.ID, c.Created, dead[0].At)
		}
	}

	// Each message was handled once: the hostile one by one worker only.
	entries := readHookLog(t, hookLog)
	perSeq := map[uint64]int{}
	hostileEntries := 0
	for _, e := range entries {
		perSeq[e.seq]++
		if strings.HasSuffix(e.source, "/hostile.eml") {
			hostileEntries++
		}
	}
	if hostileEntries != 1 {
		t.Errorf("the hostile mail's handler was entered %d times, want once: %+v", hostileEntries, entries)
	}
	if len(perSeq) != len(mails) {
		t.Errorf("handler entries for %d messages, want %d", len(perSeq), len(mails))
	}
	for seq, n := range perSeq {
		if n != 1 {
			t.Errorf("message %d: handler entered %d times", seq, n)
		}
	}
	checkMetrics(t, cfg.httpAddr(), map[string]float64{
		`eiamtriage_handlers_abandoned_total{reason_kind="overrun",stage="classify"}`: 1,
		`eiamtriage_handlers_stuck{stage="classify"}`:                                 1,
		`eiamtriage_dead_letters_total{reason_kind="overrun",stage="classify"}`:       1,
		`eiamtriage_messages_total{outcome="ack",stage="classify"}`:                   float64(len(ordinary)),
	})
}

// TestSIGTERMStopsServeWithAHandlerThatNeverReturns: SIGTERM ends serve
// within its shutdown grace although a handler never returns (its
// deadline lies beyond the grace); the message it held is handed back, and
// the next serve takes it in.
func TestSIGTERMStopsServeWithAHandlerThatNeverReturns(t *testing.T) {
	const grace = 10 * time.Second                                           // pipeline.DefaultShutdownGrace
	cfg := writeConfigFrom(t, map[string]string{"pipeline.ack_wait": "15s"}) // handler deadline 12s, beyond the grace
	hookLog := filepath.Join(t.TempDir(), "hooks.log")
	p := startServeEnv(t, cfg, "serve-1", []string{"EIAMTRIAGE_TESTHOOK_LOG=" + hookLog, "EIAMTRIAGE_TESTHOOK_BLOCK=hostile.eml"})
	mails, _ := generateNotices(t, 1)
	dir := writeMails(t, "hostile.eml", mails)
	if r := runCLI(t, "publish", "--config", cfg.Path, dir); r.code != 0 {
		t.Fatalf("publish:\n%s", r)
	}
	waitFor(t, 20*time.Second, "the hostile mail's handler to be entered", func() (bool, string) {
		n := len(readHookLog(t, hookLog))
		return n == 1, strconv.Itoa(n) + " entries"
	})
	began := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(grace + 5*time.Second):
		t.Fatalf("serve did not stop within %s of SIGTERM", grace+5*time.Second)
	}
	took := time.Since(began)
	t.Logf("serve stopped %s after SIGTERM", took.Round(10*time.Millisecond))
	if p.waitErr != nil {
		t.Errorf("serve exited with %v after SIGTERM, want 0", p.waitErr)
	}
	if took > grace+3*time.Second {
		t.Errorf("serve took %s to stop, beyond its grace %s (and a second to abandon the handler, and the drain)", took, grace)
	}
	if logs := p.logs(); !strings.Contains(logs, "abandoned, message handed back") {
		t.Errorf("serve's log does not say the handler was abandoned:\n%s", logs)
	}

	// Nothing lost: the message is neither acknowledged nor given up; the
	// next serve gets it again (after ack_wait: the server does not keep
	// a nak across its own stop).
	store := openStoreOf(t, cfg)
	defer store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := store.JS.Consumer(ctx, streamNotices, classifyStage)
	if err != nil {
		t.Fatal(err)
	}
	if info := c.CachedInfo(); info.AckFloor.Stream != 0 || info.NumPending+uint64(info.NumAckPending) != 1 {
		t.Errorf("the consumer after the stop: ack floor %d, %d pending, %d unacknowledged; want the mail unacknowledged",
			info.AckFloor.Stream, info.NumPending, info.NumAckPending)
	}
	if n, err := subjectCount(ctx, store.JS, streamDead, subjectDead); err != nil || n != 0 {
		t.Errorf("%d dead letters (%v): the mail was given up", n, err)
	}
}
