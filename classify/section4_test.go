package classify_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"

	"github.com/eiamtriage/eiamtriage/classify"
	"github.com/eiamtriage/eiamtriage/ingest/notice"
)

// section4Golden is one entry of testdata/notices-s4/golden-s4.json: the
// keys of testdata/notices/golden.json that these notices use, and the rule,
// name verdict and a part of the deciding reason.
type section4Golden struct {
	Class        string       `json:"class"`
	Language     string       `json:"language"`
	Delivery     string       `json:"delivery"`
	Layout       string       `json:"layout"`
	ProfileID    string       `json:"profile_id"`
	Application  string       `json:"application"`
	Organisation string       `json:"organisation"`
	SignedInRaw  string       `json:"signed_in_raw"`
	Expected     event.Person `json:"expected"`
	Actual       event.Person `json:"actual"`
	Rule         int          `json:"rule"`
	Names        string       `json:"names"`
	Reason       string       `json:"reason"`
	Covers       string       `json:"covers"`
}

// TestSection4Notices parses every notice of testdata/notices-s4 (written by
// testdata/gen/gen_section4.py, one or more per clause that changed in
// section 4) with the parser and classifies it: the class, rule and name
// verdict of golden-s4.json, a deciding reason that quotes the decisive value
// escaped, no raw control or invisible character in any reason, and what the
// parser read (invisible format characters removed, control characters
// kept for the classifier to refuse).
func TestSection4Notices(t *testing.T) {
	const dir = "../testdata/notices-s4"
	data, err := os.ReadFile(filepath.Join(dir, "golden-s4.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]section4Golden
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatalf("%s/golden-s4.json: %v", dir, err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) == 0 || len(files) != len(want) {
		t.Fatalf("%d .eml files in %s but %d golden entries", len(files), dir, len(want))
	}
	p := notice.MustParser(config.DefaultWording(), nil)
	cl := classify.New(nil)
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
			if err != nil {
				t.Fatalf("want a notice of class %s, got error %v", g.Class, err)
			}
			v := cl.Classify(n)
			if string(v.Class) != g.Class || v.Rule != g.Rule || string(v.Names) != g.Names {
				t.Errorf("class %s, rule %d, names %q; want %s, %d, %q (%s)\nreasons: %+q",
					v.Class, v.Rule, v.Names, g.Class, g.Rule, g.Names, g.Covers, v.Reasons)
			}
			found := false
			for _, r := range v.Reasons {
				found = found || strings.Contains(r, g.Reason)
			}
			if !found {
				t.Errorf("no reason holds %q: %+q", g.Reason, v.Reasons)
			}
			tag := fmt.Sprintf("(rule %d)", g.Rule)
			if !strings.Contains(strings.Join(v.Reasons, "\n"), tag) {
				t.Errorf("no reason says %s: %+q", tag, v.Reasons)
			}
			for _, r := range v.Reasons {
				if i := strings.IndexFunc(r, func(c rune) bool {
					return unicode.IsControl(c) || unicode.Is(unicode.Cf, c)
				}); i >= 0 {
					t.Errorf("reason %+q holds a raw control or invisible character at %d", r, i)
				}
			}
			for _, f := range []struct{ what, got, want string }{
				{"language", n.Language, g.Language},
				{"delivery", string(n.Delivery), g.Delivery},
				{"layout", string(n.Layout), g.Layout},
				{"profile id", n.ProfileID, g.ProfileID},
				{"application", n.Application, g.Application},
				{"organisation", n.Organisation, g.Organisation},
				{"signed in at", n.SignedInRaw, g.SignedInRaw},
			} {
				if f.got != f.want {
					t.Errorf("%s %q, want %q", f.what, f.got, f.want)
				}
			}
			if n.Expected != g.Expected || n.Actual != g.Actual {
				t.Errorf("read %+q / %+q, want %+q / %+q", n.Expected, n.Actual, g.Expected, g.Actual)
			}
			if !n.Readable() {
				t.Errorf("problems %q, want none", n.Problems)
			}
		})
	}
}
