package notice

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/config"

	"github.com/eiamtriage/eiamtriage/internal/event"
)

// parseWithin parses raw, and fails the test when that takes more than
// 5 s (a hang, or cost that grows faster than the input).
func parseWithin(t *testing.T, p *Parser, raw []byte) (*event.Notice, error) {
	t.Helper()
	var n *event.Notice
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		n, err = p.Parse(t.Context(), raw)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("Parse hangs: more than 5 s on a %d-byte input", len(raw))
	}
	return n, err
}

// checkSenders checks what a notice says of its senders: a known delivery,
// forwarders exactly for a forward (at most MaxForwards), a part number
// only for an attached one, and every address one address or none.
func checkSenders(t *testing.T, n *event.Notice) {
	t.Helper()
	switch n.Delivery {
	case event.DeliveryDirect:
		if len(n.Forwarders) != 0 || n.OuterMessageID != "" {
			t.Fatalf("a direct notice with forwarders %q, outer Message-ID %q", n.Forwarders, n.OuterMessageID)
		}
	case event.DeliveryInlineForward, event.DeliveryAttachedForward:
		if len(n.Forwarders) == 0 || len(n.Forwarders) > MaxForwards {
			t.Fatalf("a %s with the forwarders %q", n.Delivery, n.Forwarders)
		}
	default:
		t.Fatalf("unknown delivery %q", n.Delivery)
	}
	if (n.Part != "") != (n.Delivery == event.DeliveryAttachedForward) {
		t.Fatalf("a %s notice with the part %q", n.Delivery, n.Part)
	}
	for _, a := range append([]string{n.From}, n.Forwarders...) {
		if a != "" && (strings.Count(a, "@") != 1 || strings.ContainsAny(a, " <>,") || a != foldASCII(a)) {
			t.Fatalf("sender %q is not one ASCII-folded address", a)
		}
	}
}

// FuzzParse feeds the parser arbitrary bytes, seeded with every fixture and
// sample and small versions of the hostile shapes. No input may panic or hang, and a returned notice must be
// consistent: a language, a delivery, and the not-a-notice error kinds as
// documented. The corpus found by `go test -fuzz FuzzParse` is kept in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"../../testdata/notices", "../../testdata/samples"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
		for _, file := range files {
			raw, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(raw)
		}
	}
	// Small versions of the hostile shapes, each just past its limit.
	f.Add(shapeDeepNesting(30 * 78))
	f.Add(shapeManyParts(MaxParts*40 + 4000))
	f.Add(shapeManyAttached((MaxAttached + 2) * 900))
	f.Add(shapeLongHeaders(40 << 10))
	f.Add(shapeHugeHTML(64 << 10))
	f.Add(shapeManyTextParts(80 << 10))
	p := MustParser(config.DefaultWording(), nil)
	f.Fuzz(func(t *testing.T, raw []byte) {
		n, err := parseWithin(t, p, raw)
		if err != nil {
			if n != nil {
				t.Fatalf("Parse returned both a notice and an error %v", err)
			}
			return
		}
		if n.Language == "" && n.Readable() {
			t.Fatalf("a readable notice without a language: %+v", n)
		}
		checkSenders(t, n)
	})
}
