package cron

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func zurich(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Zurich")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{"30 7 * *", "has 4 fields"},
		{"0 30 7 * * *", "has 6 fields"},
		{"61 7 * * *", "minute field \"61\": 61 is outside 0-59"},
		{"30 24 * * *", "hour field"},
		{"30 7 0 * *", "day of month field \"0\": 0 is outside 1-31"},
		{"30 7 * 13 *", "month field"},
		{"30 7 * * 8", "day of week field"},
		{"*/0 7 * * *", "step \"0\""},
		{"30 9-7 * * *", "runs backwards"},
		{"30 x * * *", "\"x\" is not a number"},
	} {
		_, err := Parse(tc.spec)
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error saying %q", tc.spec, err, tc.want)
		}
	}
}

// TestNextAcrossDST follows schedules over the two changes of the clocks
// in Europe/Zurich in 2026 (29 March 02:00 CET -> 03:00 CEST, 25 October
// 03:00 CEST -> 02:00 CET).
func TestNextAcrossDST(t *testing.T) {
	loc := zurich(t)
	utc := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, tc := range []struct {
		name, spec, start string
		want              []string // UTC instants
		labels            []string
	}{
		{"07:30 over spring forward", "30 7 * * *", "2026-03-27T12:00:00Z",
			[]string{"2026-03-28T06:30:00Z", "2026-03-29T05:30:00Z", "2026-03-30T05:30:00Z"},
			[]string{"20260328-0730", "20260329-0730", "20260330-0730"}},
		{"07:30 over fall back", "30 7 * * *", "2026-10-24T12:00:00Z",
			[]string{"2026-10-25T06:30:00Z", "2026-10-26T06:30:00Z"},
			[]string{"20261025-0730", "20261026-0730"}},
		{"02:30 skipped by spring forward fires once, at 03:30 CEST", "30 2 * * *", "2026-03-28T12:00:00Z",
			[]string{"2026-03-29T01:30:00Z", "2026-03-30T00:30:00Z"},
			[]string{"20260329-0230", "20260330-0230"}},
		{"02:30 twice at fall back fires once, the first", "30 2 * * *", "2026-10-24T12:00:00Z",
			[]string{"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"},
			[]string{"20261025-0230", "20261026-0230"}},
		{"every 30 minutes in the fall-back hour", "*/30 2 * * *", "2026-10-24T23:00:00Z",
			[]string{"2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:00:00Z"},
			[]string{"20261025-0200", "20261025-0230", "20261026-0200"}},
		{"weekdays only", "0 8 * * mon-fri", "2026-03-27T12:00:00Z", // a Friday
			[]string{"2026-03-30T06:00:00Z", "2026-03-31T06:00:00Z"},
			[]string{"20260330-0800", "20260331-0800"}},
		{"day of month or day of week", "0 8 1 * sun", "2026-03-27T12:00:00Z",
			[]string{"2026-03-29T06:00:00Z", "2026-04-01T06:00:00Z", "2026-04-05T06:00:00Z"},
			[]string{"20260329-0800", "20260401-0800", "20260405-0800"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			at := utc(tc.start)
			for i, w := range tc.want {
				sl, ok := s.Next(at, loc)
				if !ok {
					t.Fatalf("no slot after %s", at)
				}
				if !sl.At.Equal(utc(w)) || sl.Label() != tc.labels[i] {
					t.Errorf("slot %d after %s = %s (%s), want %s (%s)", i, at.UTC().Format(time.RFC3339), sl.At.UTC().Format(time.RFC3339), sl.Label(), w, tc.labels[i])
				}
				// Prev of the slot's instant is the slot itself.
				if p, ok := s.Prev(sl.At, loc); !ok || !p.At.Equal(sl.At) || p.Label() != sl.Label() {
					t.Errorf("Prev(%s) = %s %s, want the slot itself", sl.At, p.At, p.Label())
				}
				at = sl.At
			}
		})
	}
}

func TestNever(t *testing.T) {
	s, err := Parse("0 0 31 2 *")
	if err != nil {
		t.Fatal(err)
	}
	if sl, ok := s.Next(time.Now(), time.UTC); ok {
		t.Errorf("31 February fired at %s", sl.At)
	}
}
