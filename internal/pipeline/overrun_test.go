package pipeline

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"
)

// entries counts handler calls per message (stream sequence).
type entries struct {
	mu sync.Mutex
	n  map[uint64]int
}

func (e *entries) enter(seq uint64) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.n == nil {
		e.n = map[uint64]int{}
	}
	e.n[seq]++
	return e.n[seq]
}

func (e *entries) get(seq uint64) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n[seq]
}

// TestHandlerIgnoringItsDeadlineIsAbandoned: a handler that blocks
// forever, ignoring its ctx, is abandoned once its deadline and
// AbandonAfter have passed; its message ends as one dead letter on its
// first delivery (reason kind overrun), the server never redelivers it,
// the other messages are handled beside it, and the stuck handler is
// counted until it returns.
func TestHandlerIgnoringItsDeadlineIsAbandoned(t *testing.T) {
	js := setup(t)
	m := NewMetrics(nil)
	cfg := testConfig("overrun")
	cfg.AckWait = time.Second
	cfg.HandlerTimeout = 300 * time.Millisecond
	cfg.AbandonAfter = 300 * time.Millisecond
	cfg.Workers = 2
	cfg.Status = &Status{}
	unblock := make(chan struct{})
	t.Cleanup(func() { close(unblock) }) // before the Run stops (cleanups run last in, first out)
	var calls entries
	var ordinary atomic.Int32
	start(t, js, cfg, func(ctx context.Context, msg Msg) error {
		calls.enter(msg.Sequence)
		if strings.Contains(string(msg.Data), "hostile") {
			<-unblock // ignores ctx
			return nil
		}
		ordinary.Add(1)
		return nil
	}, m)
	hostile := publish(t, js, "hostile")
	for i := range 5 {
		publish(t, js, "ordinary-"+string(rune('a'+i)))
	}
	eventually(t, "the ordinary messages beside the stuck one", func() bool { return ordinary.Load() == 5 })
	eventually(t, "the dead letter of the stuck handler's message", func() bool { return len(deadLetters(t, js, "overrun")) == 1 })
	info := settled(t, js, StreamNotices, "overrun", 6)
	dl := deadLetter(t, deadLetters(t, js, "overrun")[0])
	if !dl.Permanent || dl.Deliveries != 1 || !strings.Contains(dl.Reason, "did not return") || !strings.Contains(dl.Reason, "300ms") {
		t.Errorf("dead letter %+v", dl)
	}
	if !strings.Contains(string(dl.Original()), hostile.ID) {
		t.Errorf("the dead letter is not the hostile message's")
	}
	if info.NumRedelivered != 0 || calls.get(1) != 1 {
		t.Errorf("the stuck message was delivered again (%d redelivered, %d handler entries), want once", info.NumRedelivered, calls.get(1))
	}
	if v := testutil.ToFloat64(m.deadLetters.WithLabelValues("overrun", ReasonOverrun)); v != 1 {
		t.Errorf("overrun dead letters %v", v)
	}
	if v := testutil.ToFloat64(m.abandoned.WithLabelValues("overrun", ReasonOverrun)); v != 1 {
		t.Errorf("abandoned handlers %v", v)
	}
	if stuck, workers := cfg.Status.Stuck(); stuck != 1 || workers != 2 {
		t.Errorf("Stuck() = %d of %d, want 1 of 2", stuck, workers)
	}
	if err := Ready(context.Background(), js, cfg.Status); err != nil {
		t.Errorf("one worker of two stuck: not ready: %v", err)
	}
	if v := testutil.ToFloat64(m.stuck.WithLabelValues("overrun")); v != 1 {
		t.Errorf("stuck gauge %v", v)
	}
}

// TestEveryWorkerStuckIsNotReady: when the abandoned handlers hold every
// worker, Ready says so and what to do.
func TestEveryWorkerStuckIsNotReady(t *testing.T) {
	js := setup(t)
	cfg := testConfig("allstuck")
	cfg.AckWait = time.Second
	cfg.HandlerTimeout = 200 * time.Millisecond
	cfg.AbandonAfter = 200 * time.Millisecond
	cfg.Workers = 1
	cfg.Status = &Status{}
	unblock := make(chan struct{})
	t.Cleanup(func() { close(unblock) })
	start(t, js, cfg, func(ctx context.Context, msg Msg) error { <-unblock; return nil }, nil)
	publish(t, js, "stuck")
	eventually(t, "the dead letter", func() bool { return len(deadLetters(t, js, "allstuck")) == 1 })
	eventually(t, "not ready", func() bool {
		err := Ready(context.Background(), js, cfg.Status)
		return err != nil && strings.Contains(err.Error(), "every worker (1)") && strings.Contains(err.Error(), "restart")
	})
}

// TestSlowHandlerKeptInProgress: a handler that takes two and a half
// AckWaits (past its deadline, within AbandonAfter) keeps its message: the
// heartbeats stop the server from redelivering it to the second worker,
// and its result (nil) acks it.
func TestSlowHandlerKeptInProgress(t *testing.T) {
	js := setup(t)
	cfg := testConfig("slow")
	cfg.AckWait = time.Second
	cfg.HandlerTimeout = 800 * time.Millisecond
	cfg.AbandonAfter = 5 * time.Second
	cfg.Workers = 2
	var calls entries
	start(t, js, cfg, func(ctx context.Context, msg Msg) error {
		calls.enter(msg.Sequence)
		time.Sleep(2500 * time.Millisecond) // a slow handler, ignoring ctx
		return nil
	}, nil)
	publish(t, js, "slow")
	info := settled(t, js, StreamNotices, "slow", 1)
	if info.NumRedelivered != 0 || calls.get(1) != 1 {
		t.Errorf("the slow handler's message was redelivered (%d redelivered, %d handler entries), want one delivery", info.NumRedelivered, calls.get(1))
	}
	if n := len(deadLetters(t, js, "slow")); n != 0 {
		t.Errorf("%d dead letters for a slow handler that returned nil", n)
	}
}

// TestMaxDeliverBoundsHandlersThatNeverReturn: a handler that never
// returns, even when cancelled, is abandoned after the shutdown grace and
// its message handed back; Run returns within the grace and a second.
// After MaxDeliver such deliveries the next one is dead-lettered without
// calling the handler: the count is taken at delivery, not when a handler
// returns.
func TestMaxDeliverBoundsHandlersThatNeverReturn(t *testing.T) {
	js := setup(t)
	m := NewMetrics(nil)
	cfg := testConfig("neverreturns")
	cfg.MaxDeliver = 2
	cfg.AckWait = 2 * time.Second
	cfg.HandlerTimeout = time.Second
	cfg.AbandonAfter = 30 * time.Second // only the shutdown abandons it
	cfg.ShutdownGrace = 200 * time.Millisecond
	unblock := make(chan struct{})
	t.Cleanup(func() { close(unblock) })
	var calls entries
	entered := make(chan uint64, 10)
	h := func(ctx context.Context, msg Msg) error {
		calls.enter(msg.Sequence)
		entered <- msg.NumDelivered
		<-unblock
		return nil
	}
	publish(t, js, "never")
	for delivery := uint64(1); delivery <= 2; delivery++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Run(ctx, js, cfg, h, zaptest.NewLogger(t), m) }()
		select {
		case n := <-entered:
			if n != delivery {
				t.Fatalf("handler entered on delivery %d, want %d", n, delivery)
			}
		case <-time.After(waitFor):
			t.Fatalf("delivery %d never reached the handler", delivery)
		}
		began := time.Now()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(waitFor):
			t.Fatalf("Run did not return with a handler that never returns")
		}
		if d := time.Since(began); d > cfg.ShutdownGrace+shutdownAbandon+2*time.Second {
			t.Errorf("Run took %s to stop, beyond its grace %s and %s", d, cfg.ShutdownGrace, shutdownAbandon)
		}
	}
	if v := testutil.ToFloat64(m.abandoned.WithLabelValues("neverreturns", ReasonShutdown)); v != 2 {
		t.Errorf("%v handlers abandoned at shutdown, want 2", v)
	}
	// The third delivery is over max_deliver: dead-lettered, not handled.
	start(t, js, cfg, h, m)
	eventually(t, "the dead letter", func() bool { return len(deadLetters(t, js, "neverreturns")) == 1 })
	settled(t, js, StreamNotices, "neverreturns", 1)
	dl := deadLetter(t, deadLetters(t, js, "neverreturns")[0])
	if dl.Permanent || dl.Deliveries != 3 || !strings.Contains(dl.Reason, "more than max_deliver 2") {
		t.Errorf("dead letter %+v", dl)
	}
	if n := calls.get(1); n != 2 {
		t.Errorf("the handler was entered %d times, want max_deliver (2)", n)
	}
	if v := testutil.ToFloat64(m.deadLetters.WithLabelValues("neverreturns", ReasonMaxDeliver)); v != 1 {
		t.Errorf("max_deliver dead letters %v", v)
	}
}

// TestFetchesNoMoreThanFreeWorkers: with its one worker busy, Run holds
// no further message: the second waits in the stream, not in the client,
// where its ack timer would run out and hand it to another consumer.
func TestFetchesNoMoreThanFreeWorkers(t *testing.T) {
	js := setup(t)
	cfg := testConfig("onefree")
	cfg.Workers = 1
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	start(t, js, cfg, func(ctx context.Context, msg Msg) error {
		entered <- struct{}{}
		<-release
		return nil
	}, nil)
	publish(t, js, "first")
	publish(t, js, "second")
	<-entered
	// The consumer's own count says where the second one is: a fetch that
	// took it would show it as delivered and not acknowledged.
	eventually(t, "the consumer to show one pending in the stream", func() bool {
		info := consumerInfo(t, js, StreamNotices, "onefree")
		return info.NumPending == 1
	})
	if info := consumerInfo(t, js, StreamNotices, "onefree"); info.NumAckPending != 1 {
		t.Errorf("%d messages delivered and unsettled with one worker busy, want 1", info.NumAckPending)
	}
	close(release)
	settled(t, js, StreamNotices, "onefree", 2)
}
