package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/actions"
	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/actions/outbox/smtpsink"
	"github.com/eiamtriage/eiamtriage/ingest/mailbox/dovecottest"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// TestTwoMailboxesInOneServe: one serve watches two cantons' mailboxes,
// each on a connection of its own (here two folders of one Dovecot user,
// behind one boundary server). A wrong-person notice in each becomes a
// case of its own mailbox, escalated once, and alerts only that mailbox's
// superusers: be's the superuser the notice is addressed to, zh's all of
// its own (the notice names none of them); the metrics count each
// mailbox's mail apart.
func TestTwoMailboxesInOneServe(t *testing.T) {
	dv := dovecottest.Start(t)
	sink := smtpsink.Start(t, smtpsink.Options{})
	c := dv.Client(t)
	if err := c.Create("ZH", nil).Wait(); err != nil {
		t.Fatalf("create the folder ZH: %v", err)
	}

	// The same fixture for both cantons, the second with a profile id and
	// a Message-ID of its own.
	dir := filepath.Join(repoRoot(t), "testdata", "notices")
	be, err := os.ReadFile(filepath.Join(dir, "de-blocks-two-edit-given-wrong-person.eml"))
	if err != nil {
		t.Fatal(err)
	}
	const beProfile, zhProfile = "ccb47d11-282f-d7f5-fae7-5a3cc602fbee", "ccb47d11-282f-d7f5-fae7-0000000000a2"
	zh := bytes.ReplaceAll(be, []byte(beProfile), []byte(zhProfile))
	zh = bytes.ReplaceAll(zh, []byte("<179555856385.3215.823407993752483999@eiam.admin.ch>"), []byte("<zh.1@eiam.admin.ch>"))
	if bytes.Equal(zh, be) || !bytes.Contains(be, []byte(beProfile)) {
		t.Fatal("the fixture's profile id or Message-ID moved")
	}
	if _, err := dovecottest.Append(c, "INBOX", crlfLines(be)); err != nil {
		t.Fatal(err)
	}
	if _, err := dovecottest.Append(c, "ZH", crlfLines(zh)); err != nil {
		t.Fatal(err)
	}

	addrs := freeAddrs(t, 2)
	tmp := t.TempDir()
	cfg := testConfig{Path: filepath.Join(tmp, "eiamtriage.yaml"), DataDir: filepath.Join(tmp, "data"), NATSListen: addrs[0], HTTPListen: addrs[1]}
	pw := filepath.Join(tmp, "imap-password")
	if err := os.WriteFile(pw, []byte(dovecottest.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mbox := func(name, superusers, folder string) string {
		return fmt.Sprintf(`  - name: %s
    superusers: [%s]
    authserv_id: mx.be.ch
    address: %s
    tls: none
    username: %s
    password_file: %s
    folder: %s
    poll_interval: 2s
    unreachable_after: 30s
`, name, superusers, dv.Addr, dovecottest.User, strconv.Quote(pw), folder)
	}
	text := fmt.Sprintf(`data_dir: %s
nats:
  listen: %s
http:
  listen: %s
smtp:
  address: %s
  tls: none
escalation:
  to: [spiges@bfs.admin.ch]
mailboxes:
%s%s`, strconv.Quote(cfg.DataDir), cfg.NATSListen, cfg.HTTPListen, strconv.Quote(sink.Addr()),
		mbox("be", "martina.graf@be.ch, peter.aebi@be.ch", "INBOX"), mbox("zh", "anna.keller@zh.ch, luca.meier@zh.ch", "ZH"))
	if err := os.WriteFile(cfg.Path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	startServe(t, cfg, "serve")
	b := connectNATS(t, cfg)
	ctx := context.Background()
	kinds := func() map[string]map[string][]smtpsink.Message { // case id -> kind -> mails
		per := map[string]map[string][]smtpsink.Message{}
		for _, m := range sink.Accepted() {
			id := smtpsink.Header(m.Raw, outbox.HeaderCase)
			if per[id] == nil {
				per[id] = map[string][]smtpsink.Message{}
			}
			k := smtpsink.Header(m.Raw, outbox.HeaderKind)
			per[id][k] = append(per[id][k], m)
		}
		return per
	}
	waitFor(t, 60*time.Second, "both notices escalated and every stage settled", func() (bool, string) {
		n := 0
		for _, k := range kinds() {
			n += len(k[outbox.KindEscalation])
		}
		if n < 2 {
			return false, fmt.Sprintf("%d escalations at the sink", n)
		}
		for _, s := range []struct{ stream, durable string }{
			{streamNotices, classifyStage}, {pipeline.StreamCases, actions.Name}, {pipeline.StreamTasks, outbox.Name},
		} {
			if ok, state := consumerSettled(ctx, b.JS, s.stream, s.durable); !ok {
				return false, state
			}
		}
		return true, ""
	})

	list := listCases(t, cfg)
	byProfile := map[string]caseRecord{}
	for _, c := range list {
		byProfile[c.ProfileID] = c
	}
	if len(list) != 2 {
		t.Fatalf("%d cases, want 2 (one per mailbox): %+v", len(list), list)
	}
	per := kinds()
	for _, want := range []struct {
		profile, mailbox string
		alertTo          []string
	}{
		{beProfile, "be", []string{"martina.graf@be.ch"}},                    // the superuser addressed
		{zhProfile, "zh", []string{"anna.keller@zh.ch", "luca.meier@zh.ch"}}, // it names none of zh's: all of them
	} {
		c, ok := byProfile[want.profile]
		if !ok {
			t.Errorf("no case for profile %s (mailbox %s)", want.profile, want.mailbox)
			continue
		}
		if c.Mailbox != want.mailbox || c.Class != "wrong-person" || len(c.Notices) != 1 || c.Notices[0].Mailbox != want.mailbox {
			t.Errorf("case %s: mailbox %q, class %s, %d notices; want mailbox %s, wrong-person, one notice of that mailbox", c.ID, c.Mailbox, c.Class, len(c.Notices), want.mailbox)
		}
		got := per[c.ID]
		if esc := got[outbox.KindEscalation]; len(esc) != 1 || !slices.Equal(esc[0].To, []string{"spiges@bfs.admin.ch"}) {
			t.Errorf("case %s (%s): escalations %v, want one to spiges@bfs.admin.ch", c.ID, want.mailbox, recipients(esc))
		}
		al := got[outbox.KindAlert]
		if len(al) != 1 {
			t.Errorf("case %s (%s): %d alerts, want one", c.ID, want.mailbox, len(al))
			continue
		}
		to := slices.Clone(al[0].To)
		slices.Sort(to)
		if !slices.Equal(to, want.alertTo) {
			t.Errorf("case %s (%s): the alert went to %v, want %v (that mailbox's superusers only)", c.ID, want.mailbox, to, want.alertTo)
		}
	}
	for _, name := range []string{"be", "zh"} {
		if v := metric(t, cfg, `eiamtriage_mailbox_mails_total{mailbox="`+name+`",outcome="submitted"}`); v != "1" {
			t.Errorf("mailbox %s: %q mails submitted by its watcher, want 1", name, v)
		}
		if v := metric(t, cfg, `eiamtriage_mailbox_connected{mailbox="`+name+`"}`); v != "1" {
			t.Errorf("mailbox %s: connected = %q, want 1", name, v)
		}
	}
}

// recipients lists each mail's envelope recipients.
func recipients(ms []smtpsink.Message) [][]string {
	var rs [][]string
	for _, m := range ms {
		rs = append(rs, m.To)
	}
	return rs
}
