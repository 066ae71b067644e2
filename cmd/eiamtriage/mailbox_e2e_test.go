package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eiamtriage/eiamtriage/ingest/mailbox/dovecottest"
	"github.com/eiamtriage/eiamtriage/internal/broker/brokertest"
)

// writeMailboxConfig writes a configuration whose mailbox be is watched on
// the Dovecot dv; natsURL empty: the embedded NATS.
func writeMailboxConfig(t *testing.T, dv *dovecottest.Server, natsURL string) testConfig {
	t.Helper()
	addrs := freeAddrs(t, 2)
	dir := t.TempDir()
	tc := testConfig{Path: filepath.Join(dir, "eiamtriage.yaml"), DataDir: filepath.Join(dir, "data"), NATSListen: addrs[0], HTTPListen: addrs[1]}
	pw := filepath.Join(dir, "imap-be")
	if err := os.WriteFile(pw, []byte(dovecottest.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	nats := "  listen: " + tc.NATSListen
	if natsURL != "" {
		nats = "  url: " + natsURL
	}
	cfg := fmt.Sprintf(`data_dir: %s
nats:
%s
http:
  listen: %s
pipeline:
  ack_wait: 5s
  backoff: [200ms, 1s]
mailboxes:
  - name: be
    superusers: [martina.graf@be.ch]
    authserv_id: mx.be.ch
    # As the other end-to-end tests: the generated notices carry no
    # Authentication-Results (ingest/mailbox's tests have them).
    authentication: off
    address: %s
    tls: none
    username: %s
    password_file: %s
    poll_interval: 2s
    unreachable_after: 30s
`, strconv.Quote(tc.DataDir), nats, tc.HTTPListen, dv.Addr, dovecottest.User, pw)
	if err := os.WriteFile(tc.Path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return tc
}

// metric returns the value of the series (name and labels as /metrics
// prints them) of the serve at cfg, or "" when absent.
func metric(t *testing.T, cfg testConfig, series string) string {
	t.Helper()
	resp, err := http.Get("http://" + cfg.HTTPListen + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// waitAllCases waits until every generated notice is exactly one case with
// exactly one notice and the classify stage settled.
func waitAllCases(t *testing.T, js jetstream.JetStream, mails []generatedMail, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout+10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, bucketCases)
	if err != nil {
		t.Fatal(err)
	}
	var list []caseRecord
	waitFor(t, timeout, fmt.Sprintf("%d cases", len(mails)), func() (bool, string) {
		n, err := countKeys(ctx, kv)
		if err != nil {
			return false, err.Error()
		}
		settled, state := consumerSettled(ctx, js, streamNotices, classifyStage)
		if n < len(mails) || !settled {
			return false, fmt.Sprintf("%d cases; %s", n, state)
		}
		list, err = readCases(ctx, kv)
		return err == nil, fmt.Sprint(err)
	})
	want := map[string]bool{}
	for _, m := range mails {
		want[m.key] = true
	}
	if len(list) != len(mails) {
		t.Errorf("%d cases, want %d", len(list), len(mails))
	}
	for _, c := range list {
		if !want[c.ID] {
			t.Errorf("unexpected case %s", c.ID)
		}
		if len(c.Notices) != 1 || c.Notices[0].Duplicates != 0 {
			t.Errorf("case %s: notices %s, want exactly one, never a duplicate", c.ID, c.noticeSummary())
		}
	}
}

// mailEvents counts the mail-received events.
func mailEvents(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), "EIAM_NOTICES")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter("eiam.notice.received"))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects["eiam.notice.received"]
}

// TestMailboxServeSIGKILL: serve takes in a Dovecot INBOX, is killed with
// SIGKILL in the middle, and started again on the same data: it takes the
// mailbox back at once (its own lease, its process gone), and every
// notice is exactly one case, its mail announced once.
func TestMailboxServeSIGKILL(t *testing.T) {
	const total = 1500
	dv := dovecottest.Start(t)
	mails, _ := generateNotices(t, total)
	raws := make([][]byte, total)
	for i, m := range mails {
		raws[i] = m.raw
	}
	if err := dv.FillMaildir(raws); err != nil {
		t.Fatal(err)
	}
	cfg := writeMailboxConfig(t, dv, "")
	first := startServe(t, cfg, "serve-1")
	nc := connectNATS(t, cfg)
	waitFor(t, 60*time.Second, "at least 40 mails taken in", func() (bool, string) {
		v, _ := strconv.ParseFloat(metric(t, cfg, `eiamtriage_mailbox_mails_total{mailbox="be",outcome="submitted"}`), 64)
		return v >= 40, fmt.Sprintf("%v submitted", v)
	})
	nc.Close()
	atKill := metric(t, cfg, `eiamtriage_mailbox_mails_total{mailbox="be",outcome="submitted"}`)
	first.kill()
	if v, _ := strconv.Atoi(atKill); v >= total {
		t.Fatalf("all %d mails were in before the kill (%s submitted): the test did not kill serve mid-batch", total, atKill)
	}
	t.Logf("killed serve-1 with SIGKILL after %s of %d mails", atKill, total)
	startServe(t, cfg, "serve-2")
	if v := metric(t, cfg, `eiamtriage_mailbox_lease_held{mailbox="be"}`); v != "1" {
		waitFor(t, 5*time.Second, "serve-2 holding the mailbox", func() (bool, string) {
			v := metric(t, cfg, `eiamtriage_mailbox_lease_held{mailbox="be"}`)
			return v == "1", v
		})
	}
	nc = connectNATS(t, cfg)
	waitAllCases(t, nc.JS, mails, 90*time.Second)
	if n := mailEvents(t, nc.JS); n != total {
		t.Errorf("%d mail-received events, want %d: each mail announced once", n, total)
	}
}

// TestMailboxSecondServeTakesOver: two serve on one NATS: the second
// stands by (and is ready) while the first watches the mailbox; killed,
// the first leaves the mailbox to the second once its lease expires, and
// a notice arriving then becomes a case.
func TestMailboxSecondServeTakesOver(t *testing.T) {
	dv := dovecottest.Start(t)
	ext := brokertest.Start(t)
	mails, _ := generateNotices(t, 2)
	c := dv.Client(t)
	if _, err := dovecottest.Append(c, "INBOX", mails[0].raw); err != nil {
		t.Fatal(err)
	}
	cfgA, cfgB := writeMailboxConfig(t, dv, ext.ClientURL()), writeMailboxConfig(t, dv, ext.ClientURL())
	a := startServe(t, cfgA, "serve-a")
	waitFor(t, 20*time.Second, "serve-a watching", func() (bool, string) {
		v := metric(t, cfgA, `eiamtriage_mailbox_connected{mailbox="be"}`)
		return v == "1", v
	})
	startServe(t, cfgB, "serve-b") // waits for its /readyz: a standby is ready
	if v := metric(t, cfgB, `eiamtriage_mailbox_lease_held{mailbox="be"}`); v != "0" {
		t.Errorf("serve-b lease_held %q, want 0 while serve-a watches", v)
	}
	a.kill()
	killed := time.Now()
	waitFor(t, 40*time.Second, "serve-b taking the mailbox over", func() (bool, string) {
		v := metric(t, cfgB, `eiamtriage_mailbox_connected{mailbox="be"}`)
		return v == "1", v
	})
	t.Logf("serve-b took over %s after serve-a was killed", time.Since(killed).Round(100*time.Millisecond))
	if _, err := dovecottest.Append(c, "INBOX", mails[1].raw); err != nil {
		t.Fatal(err)
	}
	nc := connectNATS(t, cfgB)
	waitAllCases(t, nc.JS, mails, 30*time.Second)
}
