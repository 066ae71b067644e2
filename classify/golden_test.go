package classify_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"

	"github.com/eiamtriage/eiamtriage/classify"
	"github.com/eiamtriage/eiamtriage/ingest/notice"
)

// golden is one expectation of testdata/notices/golden.json.
type golden struct {
	Class        string        `json:"class"`
	Language     string        `json:"language"`
	Delivery     string        `json:"delivery"`
	Layout       string        `json:"layout"`
	ProfileID    string        `json:"profile_id"`
	Application  string        `json:"application"`
	Organisation string        `json:"organisation"`
	SignedInRaw  string        `json:"signed_in_raw"`
	Expected     *event.Person `json:"expected"`
	Actual       *event.Person `json:"actual"`
	ExtraRows    []event.Row   `json:"extra_rows"`
	NotANotice   string        `json:"not_a_notice"`
	Unreadable   bool          `json:"unreadable"`
	Covers       string        `json:"covers"`
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

// TestGolden parses and classifies every fixture of testdata/notices and
// checks it against golden.json: the class, and for a notice everything the
// parser read (language, delivery, layout, metadata, the compared values,
// extra rows); for a mail that is not a notice, the kind.
func TestGolden(t *testing.T) {
	const dir = "../testdata/notices"
	want := loadGolden(t, dir)
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) < 80 {
		t.Fatalf("%d fixtures in %s, want at least 80", len(files), dir)
	}
	if len(files) != len(want) {
		t.Errorf("%d .eml files but %d golden entries", len(files), len(want))
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
			n, err := p.Parse(raw)
			if g.Class == "not-a-notice" {
				var nn *notice.NotANoticeError
				if !errors.As(err, &nn) {
					t.Fatalf("want not-a-notice (%s), got notice %+v err %v", g.NotANotice, n, err)
				}
				if g.NotANotice != "" && nn.Kind != g.NotANotice {
					t.Errorf("not-a-notice kind %q (%s), want %q", nn.Kind, nn.Reason, g.NotANotice)
				}
				classes[g.Class]++
				return
			}
			if err != nil {
				t.Fatalf("want %s, got error %v", g.Class, err)
			}
			v := cl.Classify(n)
			classes[string(v.Class)]++
			if string(v.Class) != g.Class {
				t.Errorf("class %s, want %s (%s); reasons %q", v.Class, g.Class, g.Covers, v.Reasons)
			}
			if g.Language != "" && n.Language != g.Language {
				t.Errorf("language %s, want %s", n.Language, g.Language)
			}
			if g.Delivery != "" && string(n.Delivery) != g.Delivery {
				t.Errorf("delivery %s, want %s", n.Delivery, g.Delivery)
			}
			if g.Unreadable != !n.Readable() {
				t.Errorf("readable %v (problems %q), golden says unreadable=%v", n.Readable(), n.Problems, g.Unreadable)
			}
			if g.Layout != "" && string(n.Layout) != g.Layout {
				t.Errorf("layout %s, want %s", n.Layout, g.Layout)
			}
			for _, f := range []struct{ name, got, want string }{
				{"profile id", n.ProfileID, g.ProfileID},
				{"application", n.Application, g.Application},
				{"organisation", n.Organisation, g.Organisation},
				{"signed in at", n.SignedInRaw, g.SignedInRaw},
			} {
				if f.want != "" && f.got != f.want {
					t.Errorf("%s %q, want %q", f.name, f.got, f.want)
				}
			}
			if g.Unreadable {
				return
			}
			if g.SignedInRaw != "" && n.SignedInAt.IsZero() {
				t.Errorf("signed in at %q not read as a time", n.SignedInRaw)
			}
			if g.Expected != nil && n.Expected != *g.Expected {
				t.Errorf("expected %+v, want %+v", n.Expected, *g.Expected)
			}
			if g.Actual != nil && n.Actual != *g.Actual {
				t.Errorf("actual %+v, want %+v", n.Actual, *g.Actual)
			}
			if len(g.ExtraRows) > 0 && !sameRows(n.ExtraRows, g.ExtraRows) {
				t.Errorf("extra rows %+v, want %+v", n.ExtraRows, g.ExtraRows)
			}
		})
	}
	for _, c := range []string{"negligible", "private-email", "wrong-person", "review", "not-a-notice"} {
		if classes[c] == 0 {
			t.Errorf("no fixture of class %s", c)
		}
	}
}

func sameRows(got, want []event.Row) bool {
	key := func(rs []event.Row) []string {
		var out []string
		for _, r := range rs {
			out = append(out, strings.ToLower(r.Label)+"|"+r.Value+"|"+r.Expected+"|"+r.Actual)
		}
		sort.Strings(out)
		return out
	}
	g, w := key(got), key(want)
	if len(g) != len(w) {
		return false
	}
	for i := range g {
		if g[i] != w[i] {
			return false
		}
	}
	return true
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
			n, err := p.Parse(raw)
			if want.Class == "not-a-notice" {
				if !errors.Is(err, notice.ErrNotANotice) {
					t.Fatalf("want not-a-notice, got %+v %v", n, err)
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
		n, err := p.Parse(msgs[i%len(msgs)])
		if err == nil {
			_ = cl.Classify(n)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
