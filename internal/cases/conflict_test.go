package cases_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eiamtriage/eiamtriage/internal/broker/brokertest"
	"github.com/eiamtriage/eiamtriage/internal/cases"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// racingKV is the real case bucket with a rendezvous: the first two calls
// of the armed operation (Get or Create) each wait until both have made
// it, so that two writers act on what they both read, and one of their
// writes must lose to the other. It counts the writes the bucket refused.
type racingKV struct {
	jetstream.KeyValue
	armGet, armCreate bool

	mu      sync.Mutex
	arrived int
	both    chan struct{}
	refused atomic.Int32
}

func newRacingKV(kv jetstream.KeyValue) *racingKV {
	return &racingKV{KeyValue: kv, both: make(chan struct{})}
}

// meet makes the first two callers wait for each other.
func (r *racingKV) meet(ctx context.Context) {
	r.mu.Lock()
	r.arrived++
	n := r.arrived
	if n == 2 {
		close(r.both)
	}
	r.mu.Unlock()
	if n <= 2 {
		select {
		case <-r.both:
		case <-ctx.Done():
		}
	}
}

func (r *racingKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	e, err := r.KeyValue.Get(ctx, key)
	if r.armGet {
		r.meet(ctx) // after reading: both hold the same revision
	}
	return e, err
}

func (r *racingKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	if r.armCreate {
		r.meet(ctx) // before creating: both find no case
	}
	rev, err := r.KeyValue.Create(ctx, key, value, opts...)
	if err != nil {
		r.refused.Add(1)
	}
	return rev, err
}

func (r *racingKV) Update(ctx context.Context, key string, value []byte, last uint64) (uint64, error) {
	rev, err := r.KeyValue.Update(ctx, key, value, last)
	if err != nil {
		r.refused.Add(1)
	}
	return rev, err
}

func caseBucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	b := brokertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := pipeline.EnsureStreams(ctx, b.JS, pipeline.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	kv, err := b.JS.KeyValue(ctx, pipeline.BucketCases)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// recordBoth records two notices for one profile at once, through kv.
func recordBoth(t *testing.T, kv jetstream.KeyValue, a, b cases.Incoming) map[string]event.Change {
	t.Helper()
	s := cases.NewStore(kv, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var mu sync.Mutex
	changes := map[string]event.Change{}
	var wg sync.WaitGroup
	for _, in := range []cases.Incoming{a, b} {
		wg.Go(func() {
			_, change, err := s.Record(ctx, in)
			if err != nil {
				t.Errorf("Record %s: %v", in.MailID, err)
				return
			}
			mu.Lock()
			changes[in.MailID] = change
			mu.Unlock()
		})
	}
	wg.Wait()
	return changes
}

// checkChanges replays the case's notices in their order: each one's
// change (created, joined, escalated) must follow from the classes before
// it, must be what Record reported to its writer, and the case takes the
// most severe class with that notice's values.
func checkChanges(t *testing.T, c *event.Case, reported map[string]event.Change) {
	t.Helper()
	var class event.Class
	var top event.NoticeRef
	for i, n := range c.Notices {
		want := cases.Joined
		switch {
		case i == 0:
			want = cases.Created
		case n.Class.Severity() > class.Severity():
			want = cases.Escalated
		}
		if i == 0 || n.Class.Severity() > class.Severity() {
			class, top = n.Class, n
		}
		if n.Change != want {
			t.Errorf("notice %d (mail %s, %s): change %s, want %s after class %s", i, n.MailID, n.Class, n.Change, want, class)
		}
		if r, ok := reported[n.MailID]; ok && r != n.Change {
			t.Errorf("mail %s: Record reported %s, the case holds %s", n.MailID, r, n.Change)
		}
	}
	if c.Class != class || c.Actual != top.Actual {
		t.Errorf("case class %s with %+v, want %s with %+v (its most severe notice's)", c.Class, c.Actual, class, top.Actual)
	}
}

// TestConcurrentWritersOfOneCase: two writers record different notices for
// one existing case from the same revision; the bucket refuses one update
// (compare-and-set), Record reads again and retries, and both notices end
// in the case with the right changes and the escalation.
func TestConcurrentWritersOfOneCase(t *testing.T) {
	kv := caseBucket(t)
	ctx := context.Background()
	if _, _, err := cases.NewStore(kv, nil).Record(ctx, incoming("m0", "<0@eiam>", "P-9", event.ClassNegligible, "Anna")); err != nil {
		t.Fatal(err)
	}
	racing := newRacingKV(kv)
	racing.armGet = true
	reported := recordBoth(t, racing,
		incoming("m-review", "<r@eiam>", "P-9", event.ClassReview, "Anne"),
		incoming("m-wrong", "<w@eiam>", "P-9", event.ClassWrongPerson, "Peter"))
	if n := racing.refused.Load(); n < 1 {
		t.Fatalf("the bucket refused %d writes: the two writers did not conflict, the test shows nothing", n)
	}
	c, _, err := cases.NewStore(kv, nil).Get(ctx, "p.p-9")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Notices) != 3 || c.Class != event.ClassWrongPerson {
		t.Fatalf("case after the conflict: %d notices, class %s; want 3 and wrong-person", len(c.Notices), c.Class)
	}
	checkChanges(t, c, reported)
	if reported["m-wrong"] != cases.Escalated {
		t.Errorf("the wrong-person notice was reported %s, want escalated (the case was negligible or review before it)", reported["m-wrong"])
	}
}

// TestConcurrentCreatorsOfOneCase: two writers find no case for a profile
// and both create it; one creation is refused, and that writer joins the
// case the other created.
func TestConcurrentCreatorsOfOneCase(t *testing.T) {
	kv := caseBucket(t)
	racing := newRacingKV(kv)
	racing.armCreate = true
	reported := recordBoth(t, racing,
		incoming("m-a", "<a@eiam>", "P-8", event.ClassPrivateEmail, "Anna"),
		incoming("m-b", "<b@eiam>", "P-8", event.ClassReview, "Anne"))
	if n := racing.refused.Load(); n < 1 {
		t.Fatalf("the bucket refused %d writes: the creators did not conflict", n)
	}
	c, _, err := cases.NewStore(kv, nil).Get(context.Background(), "p.p-8")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Notices) != 2 || c.Class != event.ClassPrivateEmail {
		t.Fatalf("case: %d notices, class %s; want 2 and private-email", len(c.Notices), c.Class)
	}
	checkChanges(t, c, reported)
	created := 0
	for _, ch := range reported {
		if ch == cases.Created {
			created++
		}
	}
	if created != 1 {
		t.Errorf("Record reported %v: want exactly one creation", reported)
	}
}
