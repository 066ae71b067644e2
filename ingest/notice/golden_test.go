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

	"github.com/eiamtriage/eiamtriage/ingest/notice"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
)

const noticesDir = "../../testdata/notices"

// golden is one entry of testdata/notices/golden.json: every field of the
// notice the parser must read (under event.Notice's JSON names), and what
// is not the parser's (the class, what the fixture covers).
type golden struct {
	event.Notice
	Class      string `json:"class"`
	NotANotice string `json:"not_a_notice"`
	// Unreadable says the notice has Problems (their wording is the
	// parser's own, so only their presence is compared).
	Unreadable bool   `json:"unreadable"`
	Covers     string `json:"covers"`
}

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
			if g.Class == "not-a-notice" {
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
		})
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
