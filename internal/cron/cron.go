// Package cron reads a five-field cron schedule (minute hour day-of-month
// month day-of-week, as crontab(5) writes it) and computes its firing
// times in a time zone, correctly across daylight-saving changes. It is
// pure: no clock, no timers.
//
// Across a change of the clocks a schedule fires once per local date and
// slot:
//   - spring forward: a slot that does not exist that day (02:30 when the
//     clocks jump from 02:00 to 03:00) fires at the instant the clock
//     before the jump would have called it, which is as late after the
//     jump (03:30);
//   - fall back: a slot that exists twice that day (02:30 when the clocks
//     go back from 03:00 to 02:00) fires at its first occurrence only.
package cron

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	// A schedule names its time zone; the binary must not depend on the
	// host's zoneinfo.
	_ "time/tzdata"
)

// Spec is a parsed schedule. The zero value never fires.
type Spec struct {
	minute, hour, dom, month, dow uint64 // bit i set: value i matches
	domStar, dowStar              bool
	text                          string
}

// String returns the schedule as it was written.
func (s Spec) String() string { return s.text }

// ErrInvalid is wrapped by Parse's errors.
var ErrInvalid = errors.New("invalid cron schedule")

type field struct {
	name     string
	min, max int
	names    []string // for month and day of week, from min
}

var fields = [5]field{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day of month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
	{name: "day of week", min: 0, max: 7, names: []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
}

// Parse reads a schedule of five fields separated by white space: minute
// (0-59), hour (0-23), day of month (1-31), month (1-12 or jan-dec), day of
// week (0-7, 0 and 7 are Sunday, or sun-sat). Each field is *, a value, a
// range a-b, a step */n or a-b/n, or a comma-separated list of these. As
// in crontab(5), when both day fields are restricted a day matches when
// either does.
func Parse(text string) (Spec, error) {
	parts := strings.Fields(text)
	if len(parts) != 5 {
		return Spec{}, fmt.Errorf("cron: %w: %q has %d fields; write five: minute hour day-of-month month day-of-week, such as \"30 7 * * *\" for 07:30 every day", ErrInvalid, text, len(parts))
	}
	s := Spec{text: strings.Join(parts, " ")}
	sets := [5]*uint64{&s.minute, &s.hour, &s.dom, &s.month, &s.dow}
	for i, p := range parts {
		set, err := parseField(p, fields[i])
		if err != nil {
			return Spec{}, fmt.Errorf("cron: %w: %q: %s field %q: %v", ErrInvalid, text, fields[i].name, p, err)
		}
		*sets[i] = set
	}
	if s.dow&(1<<7) != 0 {
		s.dow |= 1 // 7 is Sunday too
	}
	s.domStar = parts[2] == "*" || strings.HasPrefix(parts[2], "*/")
	s.dowStar = parts[4] == "*" || strings.HasPrefix(parts[4], "*/")
	return s, nil
}

func parseField(p string, f field) (uint64, error) {
	var set uint64
	for item := range strings.SplitSeq(p, ",") {
		rng, stepText, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("step %q is not a positive number", stepText)
			}
			step = n
		}
		lo, hi := f.min, f.max
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if lo, err = value(a, f); err != nil {
				return 0, err
			}
			if hi, err = value(b, f); err != nil {
				return 0, err
			}
			if lo > hi {
				return 0, fmt.Errorf("range %q runs backwards", rng)
			}
		default:
			v, err := value(rng, f)
			if err != nil {
				return 0, err
			}
			lo, hi = v, v
			if hasStep {
				hi = f.max // "5/15" is 5-max/15
			}
		}
		for v := lo; v <= hi; v += step {
			set |= 1 << v
		}
	}
	return set, nil
}

func value(s string, f field) (int, error) {
	for i, n := range f.names {
		if strings.EqualFold(s, n) {
			return f.min + i, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if v < f.min || v > f.max {
		return 0, fmt.Errorf("%d is outside %d-%d", v, f.min, f.max)
	}
	return v, nil
}

// Slot is one firing of a schedule: the instant it fires and the local
// date and time it is named by (for a slot skipped by spring forward,
// the nominal time, not the later instant it fires at).
type Slot struct {
	At time.Time
	// Year, Month, Day, Hour, Minute are the slot's nominal local time.
	Year              int
	Month             time.Month
	Day, Hour, Minute int
}

// Label names the slot by its nominal local date and time,
// "20260329-0730": one label per firing, the same in every process.
func (sl Slot) Label() string {
	return fmt.Sprintf("%04d%02d%02d-%02d%02d", sl.Year, sl.Month, sl.Day, sl.Hour, sl.Minute)
}

// horizon bounds the search for the next slot: a schedule such as
// "0 0 31 2 *" never fires.
const horizon = 5 * 366

// Next returns the first slot strictly after after, in loc. ok is false
// for a schedule that never fires.
func (s Spec) Next(after time.Time, loc *time.Location) (Slot, bool) {
	local := after.In(loc)
	y, m, d := local.Date()
	for day := range horizon {
		date := time.Date(y, m, d+day, 12, 0, 0, 0, time.UTC) // calendar arithmetic only
		if !s.matchesDay(date) {
			continue
		}
		for h := range 24 {
			if s.hour&(1<<h) == 0 {
				continue
			}
			for mi := range 60 {
				if s.minute&(1<<mi) == 0 {
					continue
				}
				at := resolve(date.Year(), date.Month(), date.Day(), h, mi, loc)
				if at.After(after) {
					return Slot{At: at, Year: date.Year(), Month: date.Month(), Day: date.Day(), Hour: h, Minute: mi}, true
				}
			}
		}
	}
	return Slot{}, false
}

// Prev returns the last slot at or before at, in loc. ok is false when
// there is none within the search horizon.
func (s Spec) Prev(at time.Time, loc *time.Location) (Slot, bool) {
	local := at.In(loc)
	y, m, d := local.Date()
	for day := range horizon {
		date := time.Date(y, m, d-day, 12, 0, 0, 0, time.UTC)
		if !s.matchesDay(date) {
			continue
		}
		for h := 23; h >= 0; h-- {
			if s.hour&(1<<h) == 0 {
				continue
			}
			for mi := 59; mi >= 0; mi-- {
				if s.minute&(1<<mi) == 0 {
					continue
				}
				t := resolve(date.Year(), date.Month(), date.Day(), h, mi, loc)
				if !t.After(at) {
					return Slot{At: t, Year: date.Year(), Month: date.Month(), Day: date.Day(), Hour: h, Minute: mi}, true
				}
			}
		}
	}
	return Slot{}, false
}

func (s Spec) matchesDay(date time.Time) bool {
	if s.month&(1<<int(date.Month())) == 0 {
		return false
	}
	domOK := s.dom&(1<<date.Day()) != 0
	dowOK := s.dow&(1<<int(date.Weekday())) != 0
	switch {
	case s.domStar && s.dowStar:
		return true
	case s.domStar:
		return dowOK
	case s.dowStar:
		return domOK
	default:
		return domOK || dowOK // crontab(5): either
	}
}

// resolve returns the instant the local wall time y-mo-d h:mi names in
// loc: the earlier of two when the clocks went back over it, and for a
// wall time the clocks jumped over, the instant that the offset in force
// before the jump gives it (as late after the jump as it was meant to be
// after the time the clocks left).
func resolve(y int, mo time.Month, d, h, mi int, loc *time.Location) time.Time {
	naive := time.Date(y, mo, d, h, mi, 0, 0, time.UTC).Unix() // the wall time read as UTC
	before := offsetAt(naive-86400, loc)
	after := offsetAt(naive+86400, loc)
	var best int64
	found := false
	for _, off := range []int{before, after} {
		u := naive - int64(off)
		if offsetAt(u, loc) == off && (!found || u < best) {
			best, found = u, true
		}
	}
	if !found {
		best = naive - int64(before) // in the gap
	}
	return time.Unix(best, 0).In(loc)
}

func offsetAt(unix int64, loc *time.Location) int {
	_, off := time.Unix(unix, 0).In(loc).Zone()
	return off
}
