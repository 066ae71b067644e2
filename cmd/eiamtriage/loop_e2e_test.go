package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/actions"
	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/actions/outbox/smtpsink"
	"github.com/eiamtriage/eiamtriage/ingest/mailbox/dovecottest"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// replaceMailboxValues replaces, in the example configuration's text, the
// values of keys of its one mailbox (the keys indented by four spaces
// under mailboxes:), each of which must occur exactly once there.
func replaceMailboxValues(t *testing.T, text string, values map[string]string) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	in := false
	count := map[string]int{}
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "mailboxes:"):
			in = true
			continue
		case len(l) > 0 && l[0] != ' ' && l[0] != '#':
			in = false
		}
		if !in {
			continue
		}
		m := configKeyLine.FindStringSubmatch(l)
		if m == nil || len(m[1]) != 4 {
			continue
		}
		if v, ok := values[m[2]]; ok {
			lines[i] = m[1] + m[2] + ": " + v
			count[m[2]]++
		}
	}
	for k := range values {
		if count[k] != 1 {
			t.Fatalf("the example's mailbox has the key %s %d times, want once", k, count[k])
		}
	}
	return strings.Join(lines, "\n")
}

// TestTheWholeLoop: notices arrive in a Dovecot mailbox; serve runs with
// the example configuration (only addresses, ports and paths changed)
// against an SMTP sink on loopback. Every wrong-person case is escalated
// once with its original notice attached byte for byte, every
// private-email user is mailed once at the entered address, nothing is
// sent for a quarantined (forged) notice or a mail that is no notice, and
// after a restart nothing is sent again.
func TestTheWholeLoop(t *testing.T) {
	dv := dovecottest.Start(t)
	sink := smtpsink.Start(t, smtpsink.Options{})
	cfg := writeConfigFrom(t, map[string]string{"smtp.address": strconv.Quote(sink.Addr()), "smtp.tls": "none"})
	raw, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(t.TempDir(), "imap-be")
	if err := os.WriteFile(pw, []byte(dovecottest.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := replaceMailboxValues(t, string(raw), map[string]string{
		"address":       strconv.Quote(dv.Addr),
		"tls":           "none",
		"username":      dovecottest.User,
		"password_file": strconv.Quote(pw),
	})
	if err := os.WriteFile(cfg.Path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	// The fixtures, as the mail server delivers them.
	dir := filepath.Join(repoRoot(t), "testdata", "notices")
	want, _, quarantined, files := expectedNoticeCases(t, dir, []string{"martina.graf@be.ch", "peter.aebi@be.ch"})
	golden := readGolden(t, dir)
	// The mail server stores and serves them with CRLF line ends: those
	// bytes are the mails the cases record.
	for _, c := range want {
		for _, name := range c.files {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			c.mailIDs[mailID(crlfLines(b))] = true
		}
	}
	byMailID := map[string][]byte{}
	var mails [][]byte
	for name := range golden {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		b = crlfLines(b)
		byMailID[event.MailID(b)] = b
		mails = append(mails, b)
	}
	if err := dv.FillMaildir(mails); err != nil {
		t.Fatal(err)
	}

	serve := startServe(t, cfg, "serve")
	b := connectNATS(t, cfg)
	ctx := context.Background()
	settle := func() {
		t.Helper()
		waitFor(t, 120*time.Second, "every mail taken in and every effect done", func() (bool, string) {
			if n := mailEvents(t, b.JS); n < uint64(files) {
				return false, fmt.Sprintf("%d of %d mails taken in", n, files)
			}
			for _, c := range []struct{ stream, durable string }{
				{streamNotices, classifyStage}, {pipeline.StreamCases, actions.Name}, {pipeline.StreamTasks, outbox.Name},
			} {
				if ok, state := consumerSettled(ctx, b.JS, c.stream, c.durable); !ok {
					return false, state
				}
			}
			return true, ""
		})
	}
	settle()

	list := listCases(t, cfg)
	checkCases(t, list, want)
	cases := map[string]caseRecord{}
	for _, c := range list {
		cases[c.ID] = c
	}

	// More escalations and user mails than the example's caps allow in an
	// hour: the rest is held until a person releases it.
	countKind := func(kind string) (n int) {
		for _, m := range sink.Accepted() {
			if smtpsink.Header(m.Raw, outbox.HeaderKind) == kind {
				n++
			}
		}
		return n
	}
	if e, u := countKind(outbox.KindEscalation), countKind(outbox.KindUserMail)+countKind(outbox.KindDraft); e > 2*5 || u > 2*10 {
		t.Errorf("before any release: %d escalations and %d user mails sent, past the example's caps (5 and 10 an hour)", e, u)
	}
	r := runCLI(t, "actions", "release", "--config", cfg.Path, "--list")
	if r.code != 0 || !strings.Contains(r.stdout, "escalation") {
		t.Fatalf("actions release --list: no held escalation:\n%s", r)
	}
	if r = runCLI(t, "actions", "release", "--config", cfg.Path, "--by", "Martina Graf"); r.code != 0 {
		t.Fatalf("actions release:\n%s", r)
	}
	settle()

	sent := sink.Accepted()
	perCase := map[string]map[string][]smtpsink.Message{}
	for _, m := range sent {
		kind, id := smtpsink.Header(m.Raw, outbox.HeaderKind), smtpsink.Header(m.Raw, outbox.HeaderCase)
		if id == "" {
			continue // a summary
		}
		if _, ok := cases[id]; !ok {
			t.Errorf("a %s mail for %s, which is no case (a quarantined or ignored mail?)", kind, id)
		}
		if perCase[id] == nil {
			perCase[id] = map[string][]smtpsink.Message{}
		}
		perCase[id][kind] = append(perCase[id][kind], m)
	}
	escalations, userMails := 0, 0
	for id, c := range cases {
		got := perCase[id]
		switch c.Class {
		case string(event.ClassWrongPerson):
			escalations++
			esc := got[outbox.KindEscalation]
			if len(esc) != 1 || len(got[outbox.KindAlert]) != 1 {
				t.Errorf("wrong-person case %s: %d escalations and %d alerts, want one each", id, len(esc), len(got[outbox.KindAlert]))
				continue
			}
			if len(esc[0].To) != 1 || esc[0].To[0] != "spiges@bfs.admin.ch" {
				t.Errorf("case %s escalated to %v", id, esc[0].To)
			}
			_, content, err := smtpsink.Attachment(esc[0].Raw)
			if err != nil || !carriesANoticeOf(content, c, byMailID) {
				t.Errorf("case %s: the escalation's attachment (%d bytes, %v) is none of its notices byte for byte", id, len(content), err)
			}
		case string(event.ClassPrivateEmail):
			userMails++
			um, dr := got[outbox.KindUserMail], got[outbox.KindDraft]
			if len(um)+len(dr) != 1 {
				t.Errorf("private-email case %s: %d user mails and %d drafts, want one", id, len(um), len(dr))
			}
			if len(got[outbox.KindEscalation]) != 0 {
				t.Errorf("private-email case %s was escalated", id)
			}
		default:
			if len(got[outbox.KindEscalation])+len(got[outbox.KindUserMail]) != 0 {
				t.Errorf("%s case %s caused an escalation or a user mail", c.Class, id)
			}
		}
	}
	if escalations == 0 || userMails == 0 || quarantined == 0 {
		t.Fatalf("%d escalations, %d user mails, %d quarantined: the fixtures no longer reach every kind", escalations, userMails, quarantined)
	}
	t.Logf("%d mails: %d cases, %d escalated, %d private-email, %d quarantined; %d mails sent", files, len(cases), escalations, userMails, quarantined, len(sent))

	// A restart on the same data sends nothing again.
	serve.stop()
	startServe(t, cfg, "serve-2")
	b = connectNATS(t, cfg)
	settle()
	// A positive marker after the restart: a new wrong-person notice
	// (another profile, another Message-ID) arrives; once its escalation
	// and alert are at the sink, exactly those two mails are new.
	marker, err := os.ReadFile(filepath.Join(dir, "de-blocks-two-edit-given-wrong-person.eml"))
	if err != nil {
		t.Fatal(err)
	}
	fresh := bytes.ReplaceAll(marker, []byte("ccb47d11-282f-d7f5-fae7-5a3cc602fbee"), []byte("ccb47d11-282f-d7f5-fae7-000000000001"))
	fresh = bytes.ReplaceAll(fresh, []byte("<179555856385.3215.823407993752483999@eiam.admin.ch>"), []byte("<after-restart.1@eiam.admin.ch>"))
	if bytes.Equal(fresh, marker) {
		t.Fatal("the marker notice is unchanged: the fixture's profile id or Message-ID moved")
	}
	if _, err := dovecottest.Append(dv.Client(t), "INBOX", crlfLines(fresh)); err != nil {
		t.Fatalf("APPEND the marker notice: %v", err)
	}
	caseMails := func() (n int, newEsc, newAlert int) {
		for _, m := range sink.Accepted() {
			id := smtpsink.Header(m.Raw, outbox.HeaderCase)
			if id == "" {
				continue
			}
			n++
			if _, old := cases[id]; !old {
				switch smtpsink.Header(m.Raw, outbox.HeaderKind) {
				case outbox.KindEscalation:
					newEsc++
				case outbox.KindAlert:
					newAlert++
				}
			}
		}
		return
	}
	before := 0
	for _, m := range sent {
		if smtpsink.Header(m.Raw, outbox.HeaderCase) != "" {
			before++
		}
	}
	waitFor(t, 60*time.Second, "the marker notice escalated and alerted after the restart", func() (bool, string) {
		_, e, a := caseMails()
		return e >= 1 && a >= 1, fmt.Sprintf("%d escalations and %d alerts for the new case", e, a)
	})
	settle()
	if n, e, a := caseMails(); n != before+2 || e != 1 || a != 1 {
		t.Errorf("after the restart and one new wrong-person notice: %d case mails (before %d), %d new escalations, %d new alerts; want %d, 1, 1: something was sent again or twice", n, before, e, a, before+2)
	}
}

// carriesANoticeOf reports whether content is the bytes of one of the
// case's notices (the mail itself, or for an attached forward its part).
func carriesANoticeOf(content []byte, c caseRecord, byMailID map[string][]byte) bool {
	for _, n := range c.Notices {
		raw := byMailID[n.MailID]
		if raw != nil && (bytes.Equal(content, raw) || bytes.Contains(raw, content) && len(content) > 200) {
			return true
		}
	}
	return false
}

// crlfLines gives raw CRLF line ends, as a mail server delivers a mail.
func crlfLines(raw []byte) []byte {
	return bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}
