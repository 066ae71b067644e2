package notice_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/ingest"
	"github.com/eiamtriage/eiamtriage/ingest/notice"
	"github.com/eiamtriage/eiamtriage/ingest/trust"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/mailstore"
)

const noticesDir = "../../testdata/notices"

// golden is one entry of testdata/notices/golden.json: every field of the
// notice the parser must read (under event.Notice's JSON names), and what
// is not the parser's (the class, what the fixture covers).
type golden struct {
	event.Notice
	// Class is what `eiamtriage classify` says: the class of the notice,
	// or not-a-notice with NotANotice the parser's kind or the sender
	// rule's (untrusted-sender, ambiguous-sender).
	Class      string `json:"class"`
	NotANotice string `json:"not_a_notice"`
	// Quarantine is the kind of the verdict of sender authentication
	// (ingest/trust.Check) for the example configuration's mailbox, when
	// it does not trust the notice; empty for a trusted one.
	Quarantine string `json:"quarantine"`
	// Unreadable says the notice has Problems (their wording is the
	// parser's own, so only their presence is compared).
	Unreadable bool   `json:"unreadable"`
	Covers     string `json:"covers"`
}

// parserKinds are the kinds of NotANoticeError; any other not-a-notice
// of golden.json is a notice the sender rule rejects.
var parserKinds = map[string]bool{"auto-reply": true, "dsn": true, "list-mail": true, "own-mail": true, "no-notice-subject": true, "unreadable-mail": true}

// loadGolden reads golden.json strictly: a key that is not a field is a
// mistake in the generator.
func loadGolden(t *testing.T) map[string]golden {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(noticesDir, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatalf("golden.json: %v", err)
	}
	out := make(map[string]golden, len(raw))
	for name, r := range raw {
		dec := json.NewDecoder(bytes.NewReader(r))
		dec.DisallowUnknownFields()
		var g golden
		if err := dec.Decode(&g); err != nil {
			t.Fatalf("golden.json: %s: %v", name, err)
		}
		out[name] = g
	}
	return out
}

// TestGolden parses every fixture of testdata/notices and compares the
// notice with golden.json field by field, every field: a value the parser
// reads where the golden file has none fails as much as a wrong one. For a
// mail that is not a notice, the kind.
func TestGolden(t *testing.T) {
	want := loadGolden(t)
	files, _ := filepath.Glob(filepath.Join(noticesDir, "*.eml"))
	if len(files) < 80 {
		t.Fatalf("%d fixtures in %s, want at least 80", len(files), noticesDir)
	}
	if len(files) != len(want) {
		t.Errorf("%d .eml files but %d golden entries", len(files), len(want))
	}
	p := notice.MustParser(config.DefaultWording(), nil)
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(strings.TrimSuffix(name, ".eml"), func(t *testing.T) {
			g, ok := want[name]
			if !ok {
				t.Fatalf("no golden entry for %s", name)
			}
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			n, err := p.Parse(t.Context(), raw)
			if parserKinds[g.NotANotice] {
				var nn *notice.NotANoticeError
				if !errors.As(err, &nn) {
					t.Fatalf("want not-a-notice (%s), got notice %+v err %v", g.NotANotice, n, err)
				}
				if nn.Kind != g.NotANotice {
					t.Errorf("not-a-notice kind %q (%s), want %q", nn.Kind, nn.Reason, g.NotANotice)
				}
				return
			}
			if err != nil {
				t.Fatalf("want a notice (%s), got error %v", g.Covers, err)
			}
			if g.Unreadable != !n.Readable() {
				t.Errorf("problems %q, golden says unreadable=%v", n.Problems, g.Unreadable)
			}
			for _, d := range diffNotice(n, &g.Notice) {
				t.Error(d)
			}
			if n.Part != "" {
				checkPart(t, p, raw, n)
			}
		})
	}
}

// checkPart checks that internal/mailstore.Part, given the notice's part
// number, returns the attached notice itself: a message that reads as the
// same notice delivered directly.
func checkPart(t *testing.T, p *notice.Parser, raw []byte, n *event.Notice) {
	t.Helper()
	inner, err := mailstore.Part(raw, n.Part)
	if err != nil {
		t.Fatalf("mailstore.Part(%q): %v", n.Part, err)
	}
	m, err := p.Parse(t.Context(), inner)
	if err != nil {
		t.Fatalf("the bytes of part %s are no notice: %v", n.Part, err)
	}
	want := *n
	want.Delivery, want.Forwarders, want.OuterMessageID, want.Part = event.DeliveryDirect, nil, "", ""
	for _, d := range diffNotice(m, &want) {
		t.Errorf("part %s: %s", n.Part, d)
	}
}

// diffNotice lists every field in which got differs from want, Problems
// aside; times compare as instants.
func diffNotice(got, want *event.Notice) []string {
	var out []string
	g, w := *got, *want
	for _, f := range []struct {
		name     string
		got, exp *time.Time
	}{{"signed_in_at", &g.SignedInAt, &w.SignedInAt}, {"date", &g.Date, &w.Date}} {
		if !f.got.Equal(*f.exp) {
			out = append(out, f.name+": "+f.got.String()+", want "+f.exp.String())
		}
		*f.got, *f.exp = time.Time{}, time.Time{}
	}
	g.Problems, w.Problems = nil, nil
	gv, wv := reflect.ValueOf(g), reflect.ValueOf(w)
	for i := range gv.NumField() {
		fg, fw := gv.Field(i).Interface(), wv.Field(i).Interface()
		if !reflect.DeepEqual(fg, fw) {
			name := gv.Type().Field(i).Tag.Get("json")
			name, _, _ = strings.Cut(name, ",")
			gj, _ := json.Marshal(fg)
			wj, _ := json.Marshal(fw)
			out = append(out, name+": "+string(gj)+", want "+string(wj))
		}
	}
	return out
}

// TestGoldenTrust checks golden.json's quarantine, which the generator
// derives from its own reading of NOTICE.md section 5, against sender
// authentication itself (ingest/trust.Check under the example
// configuration's first mailbox) on what the parser reads of each notice
// fixture: the forwarders and the notice's sender come from the parser,
// the decision from trust.
func TestGoldenTrust(t *testing.T) {
	cfg, err := config.LoadFile("../../deploy/eiamtriage.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	policy := ingest.PolicyFor(cfg, &cfg.Mailboxes[0])
	if policy.Off {
		t.Fatal("the example configuration switches authentication off")
	}
	p := notice.MustParser(cfg.Wording, nil)
	kinds := map[string]int{}
	for name, g := range loadGolden(t) {
		if parserKinds[g.NotANotice] {
			continue
		}
		t.Run(strings.TrimSuffix(name, ".eml"), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(noticesDir, name))
			if err != nil {
				t.Fatal(err)
			}
			n, err := p.Parse(t.Context(), raw)
			if err != nil {
				t.Fatal(err)
			}
			v := trust.Check(t.Context(), policy, raw, trust.Chain{NoticeFrom: n.From, Forwarders: n.Forwarders})
			if v.Trusted != (g.Quarantine == "") || v.Kind != g.Quarantine {
				t.Errorf("trust: trusted %v kind %q (%q), golden quarantine %q", v.Trusted, v.Kind, v.Reasons, g.Quarantine)
			}
			kinds[v.Kind]++
		})
	}
	for _, k := range []string{"", trust.KindUntrustedSender, trust.KindUntrustedForwarder, trust.KindUnauthenticated, trust.KindAmbiguousSender} {
		if kinds[k] == 0 {
			t.Errorf("no notice fixture with the trust verdict %q", k)
		}
	}
}
