package outbox_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/internal/broker"
	"github.com/eiamtriage/eiamtriage/internal/broker/brokertest"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// startJS runs embedded NATS with the streams and the outbox's buckets.
func startJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	return startBroker(t).JS
}

// startBroker is startJS that returns the broker (for its client URL).
func startBroker(t *testing.T) *broker.Broker {
	t.Helper()
	b := brokertest.Start(t)
	ctx := context.Background()
	if err := pipeline.EnsureStreams(ctx, b.JS, pipeline.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := pipeline.EnsureOutbox(ctx, b.JS, pipeline.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	return b
}

func open(t *testing.T, js jetstream.JetStream, opts outbox.Options) *outbox.Outbox {
	t.Helper()
	if opts.From == "" {
		opts.From = from
	}
	if opts.Log == nil {
		opts.Log = zaptest.NewLogger(t)
	}
	o, err := outbox.Open(context.Background(), js, opts)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// requests counts the delivery requests in the tasks stream.
func requests(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), pipeline.StreamTasks)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(outbox.Subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func mustGet(t *testing.T, o *outbox.Outbox, id string) (outbox.Entry, []byte) {
	t.Helper()
	e, raw, err := o.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return e, raw
}

// waitEntry waits until the entry id satisfies cond.
func waitEntry(t *testing.T, o *outbox.Outbox, id, what string, cond func(outbox.Entry) bool) outbox.Entry {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		e, _, err := o.Get(context.Background(), id)
		if e.ID != "" && cond(e) { // the entry, even when its mail cannot be read
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("mail %s: still waiting for %s; entry %+v (%v)", id, what, e, err)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not a fixed wait
	}
}

// testOptions are delivery options for a sink on addr: plain SMTP on
// loopback, quick retries, a short ack wait.
func testOptions(addr string) outbox.Options {
	return outbox.Options{
		Relay:   outbox.Relay{Address: addr, TLS: outbox.TLSNone, HeloName: "test.be.ch", Timeout: 2 * time.Second},
		Backoff: []time.Duration{10 * time.Millisecond},
		AckWait: 4 * time.Second,
		Workers: 4,
	}
}

// runDelivery runs o's delivery part until the returned stop is called
// (or the test ends); stop waits for it.
func runDelivery(t *testing.T, o *outbox.Outbox) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx, nil) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("delivery: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// deadLetters returns the reasons of the outbox's dead letters.
func deadLetters(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	recs, err := pipeline.ReadDead(context.Background(), js, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		if r.Letter != nil && r.Letter.Stage == outbox.Name {
			out = append(out, r.Letter.Reason)
		}
	}
	return out
}

// waitDead waits for n dead letters of the outbox.
func waitDead(t *testing.T, js jetstream.JetStream, n int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if dl := deadLetters(t, js); len(dl) >= n {
			return dl
		}
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %d dead letter(s) of the outbox", n)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition
	}
}
