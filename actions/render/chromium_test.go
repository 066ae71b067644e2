package render

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is where Debian's chromium-headless-shell puts its binary
// (a name chromedp does not look for).
const chromiumPath = "/usr/bin/chromium-headless-shell"

// TestSummaryInChromium opens an HTML summary in headless Chromium and
// checks that it renders: the comparison tables are there, the differing
// values are marked (and painted), the hostile values are text, not
// markup, and a screenshot is not blank. The page and the screenshot are
// kept in the test's artifact directory (go test -artifacts keeps them).
// Without Chromium the test fails when CI=true and is skipped otherwise.
func TestSummaryInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("headless Chromium is missing (%v): apt-get install chromium-headless-shell", err)
		}
		t.Skipf("headless Chromium is missing (%v); CI=true makes this a failure", err)
	}
	r := newRenderer(t)
	m, err := r.Render(KindSummary, "de", views(t, r, "de")[KindSummary])
	if err != nil {
		t.Fatal(err)
	}
	dir := t.ArtifactDir()
	page := filepath.Join(dir, "summary.html")
	if err := os.WriteFile(page, []byte(m.HTML), 0o644); err != nil {
		t.Fatal(err)
	}

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath), chromedp.WindowSize(1000, 800))...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+page)); err != nil {
		t.Fatalf("open %s in Chromium: %v", page, err)
	}
	run := func(js string) any {
		t.Helper()
		tctx, done := context.WithTimeout(ctx, 20*time.Second)
		defer done()
		v, err := chromedp.Run(tctx, chromedp.Evaluate[any](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	// Four cases in the summary, each with its comparison table.
	if n := run(`document.querySelectorAll("table.comparison").length`); n != float64(4) {
		t.Errorf("%v comparison tables, want 4", n)
	}
	// The differing values, marked in both columns: 3 + 2 + 1 + 3 rows.
	if n := run(`document.querySelectorAll("table.comparison td.diff").length`); n != float64(18) {
		t.Errorf("%v cells marked as differing, want 18", n)
	}
	if n := run(`document.querySelectorAll("table.comparison td.same").length`); n != float64(6) {
		t.Errorf("%v cells marked as equal, want 6", n)
	}
	if bg := run(`getComputedStyle(document.querySelector("td.diff")).backgroundColor`); bg != "rgb(255, 229, 138)" {
		t.Errorf("a differing cell is painted %v, want the marker colour", bg)
	}
	if bg := run(`getComputedStyle(document.querySelector("td.same")).backgroundColor`); bg == "rgb(255, 229, 138)" {
		t.Error("an equal cell is painted as differing")
	}
	// The hostile organisation is text on the page, not a script.
	if n := run(`document.querySelectorAll("script, img, b, i").length`); n != float64(0) {
		t.Errorf("the page holds %v elements that came from mail values", n)
	}
	text, _ := run(`document.body.innerText`).(string)
	for _, want := range []string{"Triage-Zusammenfassung", `Spital <script>alert("x")</script> & Co`, `Muster\x1b[31m`, "Offene Aufgaben (2)"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not show %q", want)
		}
	}

	tctx, done := context.WithTimeout(ctx, 30*time.Second)
	defer done()
	shot, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatal(err)
	}
	total, ink := nonWhite(img)
	t.Logf("screenshot %v: %d of %d pixels not white; kept in %s", img.Bounds().Size(), ink, total, dir)
	if img.Bounds().Dy() < 800 || ink < total/50 {
		t.Errorf("the screenshot looks blank: %d of %d pixels are not white (size %v)", ink, total, img.Bounds().Size())
	}
}

func nonWhite(img image.Image) (total, ink int) {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			total++
			if r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				ink++
			}
		}
	}
	return total, ink
}
