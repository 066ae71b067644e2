package mailbox

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock that moves only when the test advances it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  map[*fakeTimer]bool
	created []time.Duration // every timer's duration, in order
	changed chan struct{}   // closed and replaced when a timer is made
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC), timers: map[*fakeTimer]bool{}, changed: make(chan struct{})}
}

type fakeTimer struct {
	c     *fakeClock
	at    time.Time
	d     time.Duration
	ch    chan time.Time
	fired bool
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), d: d, ch: make(chan time.Time, 1)}
	c.created = append(c.created, d)
	if d <= 0 {
		t.fired = true
		t.ch <- c.now
	} else {
		c.timers[t] = true
	}
	close(c.changed)
	c.changed = make(chan struct{})
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	active := t.c.timers[t]
	delete(t.c.timers, t)
	return active
}

// Advance moves the clock by d and fires the timers due, earliest first.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	for t := range c.timers {
		if !t.at.After(c.now) {
			due = append(due, t)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, t := range due {
		delete(c.timers, t)
		t.fired = true
		t.ch <- c.now
	}
}

// waitTimer waits until a timer of duration d is pending, failing the
// test after a few seconds of real time. It is the positive marker that
// the code under test waits on that timer, so that Advance fires it.
func (c *fakeClock) waitTimer(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		ch := c.changed
		var pending []time.Duration
		for tm := range c.timers {
			if tm.d == d {
				c.mu.Unlock()
				return
			}
			pending = append(pending, tm.d)
		}
		c.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no timer of %s was started within 10s; pending: %v", d, pending)
		}
	}
}

// pending lists the pending timers' durations, for messages.
func (c *fakeClock) pending() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ds []time.Duration
	for t := range c.timers {
		ds = append(ds, t.d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return fmt.Sprint(ds)
}

func TestFakeClock(t *testing.T) {
	c := newFakeClock()
	a, b := c.NewTimer(time.Second), c.NewTimer(time.Minute)
	c.waitTimer(t, time.Minute)
	c.Advance(time.Second)
	select {
	case <-a.C():
	default:
		t.Fatal("the 1s timer did not fire after 1s")
	}
	select {
	case <-b.C():
		t.Fatal("the 1m timer fired after 1s")
	default:
	}
	if !b.Stop() || b.Stop() {
		t.Error("Stop of a pending timer: want true, then false")
	}
	c.Advance(time.Hour)
	select {
	case <-b.C():
		t.Fatal("a stopped timer fired")
	default:
	}
}
