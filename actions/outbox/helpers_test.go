package outbox_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/eiamtriage/eiamtriage/actions/outbox"
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
	b := brokertest.Start(t)
	ctx := context.Background()
	if err := pipeline.EnsureStreams(ctx, b.JS, pipeline.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := pipeline.EnsureOutbox(ctx, b.JS, pipeline.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	return b.JS
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
		if err == nil && cond(e) {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("mail %s: still waiting for %s; entry %+v (%v)", id, what, e, err)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not a fixed wait
	}
}
