package classify_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"

	"github.com/eiamtriage/eiamtriage/classify"
	"github.com/eiamtriage/eiamtriage/ingest/notice"
	"github.com/eiamtriage/eiamtriage/ingest/trust"
)

// golden is what classify's tests take from testdata/notices/golden.json:
// the class of each fixture. Everything the parser reads of a fixture is
// compared by the parser's own golden test (ingest/notice).
type golden struct {
	Class      string `json:"class"`
	NotANotice string `json:"not_a_notice"`
	Covers     string `json:"covers"`
}

func loadGolden(t testing.TB, dir string) map[string]golden {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g map[string]golden
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatalf("%s/golden.json: %v", dir, err)
	}
	return g
}

// TestGolden classifies every fixture of testdata/notices, read by the
// parser, as `eiamtriage classify` does (the sender rule of NOTICE.md
// section 2 first, ingest/trust.SenderRule), and checks its class against
// golden.json; every class occurs.
func TestGolden(t *testing.T) {
	const dir = "../testdata/notices"
	want := loadGolden(t, dir)
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) < 80 || len(files) != len(want) {
		t.Fatalf("%d fixtures in %s and %d golden entries, want the same number, at least 80", len(files), dir, len(want))
	}
	p := notice.MustParser(config.DefaultWording(), nil)
	cl := classify.New(nil)
	classes := map[string]int{}
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
			if errors.Is(err, notice.ErrNotANotice) {
				if g.Class != "not-a-notice" {
					t.Fatalf("want %s, got %v", g.Class, err)
				}
				classes[g.Class]++
				return
			}
			if err != nil {
				t.Fatalf("want %s, got error %v", g.Class, err)
			}
			if sr := trust.SenderRule(nil, trust.Chain{NoticeFrom: n.From, Forwarders: n.Forwarders}); !sr.Trusted {
				if g.Class != "not-a-notice" || g.NotANotice != sr.Kind {
					t.Errorf("the sender rule says %s (%q); golden.json says %s %s", sr.Kind, sr.Reasons, g.Class, g.NotANotice)
				}
				classes["not-a-notice"]++
				return
			}
			v := cl.Classify(n)
			classes[string(v.Class)]++
			if string(v.Class) != g.Class {
				t.Errorf("class %s, want %s (%s); reasons %q", v.Class, g.Class, g.Covers, v.Reasons)
			}
		})
	}
	for _, c := range []string{"negligible", "private-email", "wrong-person", "review", "not-a-notice"} {
		if classes[c] == 0 {
			t.Errorf("no fixture of class %s", c)
		}
	}
}

// TestSamples checks the contract's own 24 samples (testdata/samples, a copy
// of shared/samples) against their labels.
func TestSamples(t *testing.T) {
	const dir = "../testdata/samples"
	data, err := os.ReadFile(filepath.Join(dir, "labels.json"))
	if err != nil {
		t.Fatal(err)
	}
	var labels map[string]struct {
		Class    string        `json:"class"`
		Lang     string        `json:"lang"`
		Expected *event.Person `json:"expected"`
		Actual   *event.Person `json:"actual"`
	}
	if err := json.Unmarshal(data, &labels); err != nil {
		t.Fatal(err)
	}
	p := notice.MustParser(config.DefaultWording(), nil)
	cl := classify.New(nil)
	for name, want := range labels {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			n, err := p.Parse(t.Context(), raw)
			if want.Class == "not-a-notice" {
				if errors.Is(err, notice.ErrNotANotice) {
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if sr := trust.SenderRule(nil, trust.Chain{NoticeFrom: n.From, Forwarders: n.Forwarders}); sr.Trusted {
					t.Fatalf("want not-a-notice, got a notice from the eIAM sender %s", n.From)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v := cl.Classify(n)
			if string(v.Class) != want.Class || n.Language != want.Lang {
				t.Errorf("got %s/%s, want %s/%s; reasons %q", v.Class, n.Language, want.Class, want.Lang, v.Reasons)
			}
			if n.Expected != *want.Expected || n.Actual != *want.Actual {
				t.Errorf("got %+v / %+v, want %+v / %+v", n.Expected, n.Actual, *want.Expected, *want.Actual)
			}
		})
	}
}

// BenchmarkParseClassify runs the parser and the classifier over every
// fixture and sample in turn; msgs/s is messages per second on one core
// (run with -cpu 1).
func BenchmarkParseClassify(b *testing.B) {
	var msgs [][]byte
	for _, dir := range []string{"../testdata/notices", "../testdata/samples"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			msgs = append(msgs, raw)
		}
	}
	if len(msgs) == 0 {
		b.Fatal("no fixtures")
	}
	p := notice.MustParser(config.DefaultWording(), nil)
	cl := classify.New(nil)
	var bytes int64
	for _, m := range msgs {
		bytes += int64(len(m))
	}
	b.SetBytes(bytes / int64(len(msgs)))
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		n, err := p.Parse(b.Context(), msgs[i%len(msgs)])
		if err == nil {
			_ = cl.Classify(n)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
