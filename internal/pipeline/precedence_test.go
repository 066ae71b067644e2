package pipeline

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/event"
)

// seen records the mail ids a handler was called with.
type seen struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (s *seen) add(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]bool{}
	}
	s.ids[id] = true
}

func (s *seen) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id]
}

// TestYieldsWhileTheFirstStageIsBusy: a consumer that yields to another
// fetches nothing while that one has a message in hand, and fetches once
// it has settled it; with a short YieldFor it fetches anyway.
func TestYieldsWhileTheFirstStageIsBusy(t *testing.T) {
	for _, tc := range []struct {
		name     string
		yieldFor time.Duration
	}{
		{"until the first is done", time.Hour},
		{"at most YieldFor", 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js := setup(t)
			prec := &Precedence{}
			release := make(chan struct{})
			var first, second seen
			a := testConfig("first")
			a.First = prec
			start(t, js, a, func(ctx context.Context, m Msg) error {
				id := mailID(t, m)
				first.add(id)
				if id == "hold" {
					<-release
				}
				return nil
			}, nil)
			b := testConfig("second")
			b.YieldTo, b.YieldFor, b.Workers = prec, tc.yieldFor, 1
			start(t, js, b, func(ctx context.Context, m Msg) error {
				second.add(mailID(t, m))
				return nil
			}, nil)
			var once sync.Once
			free := func() { once.Do(func() { close(release) }) }
			t.Cleanup(free) // before the consumers stop

			// "hold" keeps the first stage busy; the second takes it (its
			// fetch was out already) and then waits before its next one.
			publish(t, js, "hold")
			eventually(t, "both stages to have the held message and the second to wait", func() bool {
				return first.has("hold") && second.has("hold") && prec.Waits() >= 1
			})
			publish(t, js, "next")
			eventually(t, "the first stage to handle the next message (the marker)", func() bool { return first.has("next") })
			if tc.yieldFor == time.Hour {
				if second.has("next") {
					t.Fatal("the second stage handled a message while the first had one in hand")
				}
				if info := consumerInfo(t, js, StreamNotices, "second"); info.NumPending != 1 || info.NumAckPending != 0 {
					t.Errorf("second consumer: %d pending, %d delivered and unsettled; want the next message not fetched (1, 0)", info.NumPending, info.NumAckPending)
				}
				free()
			}
			eventually(t, "the second stage to handle the next message", func() bool { return second.has("next") })
			settled(t, js, StreamNotices, "second", 2)
		})
	}
}

func TestPrecedenceNilAndConfig(t *testing.T) {
	var p *Precedence
	p.add(1)
	p.wait(context.Background(), time.Hour) // returns at once
	if p.Waits() != 0 {
		t.Error("a nil Precedence counted a wait")
	}
	prec := &Precedence{}
	c := testConfig("self")
	c.First, c.YieldTo = prec, prec
	if err := c.withDefaults().validate(); err == nil {
		t.Error("a stage yielding to itself was accepted")
	}
	c.First, c.YieldFor = nil, -time.Second
	if err := c.withDefaults().validate(); err == nil {
		t.Error("a negative YieldFor was accepted")
	}
	if c := (ConsumerConfig{YieldTo: prec}).withDefaults(); c.YieldFor != DefaultYieldFor {
		t.Errorf("YieldFor default %s, want %s", c.YieldFor, DefaultYieldFor)
	}
}

// mailID is the mail id of a mail-received event.
func mailID(t *testing.T, m Msg) string {
	var mr event.MailReceived
	if _, err := event.ParseInto(m.Data, &mr); err != nil {
		t.Errorf("message %d: %v", m.Sequence, err)
	}
	return mr.MailID
}
