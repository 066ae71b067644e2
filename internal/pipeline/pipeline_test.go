package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/broker"
	"github.com/eiamtriage/eiamtriage/internal/broker/brokertest"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

const waitFor = 10 * time.Second

// setup starts an embedded JetStream with the streams in place.
func setup(t *testing.T) jetstream.JetStream {
	t.Helper()
	b := brokertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := EnsureStreams(ctx, b.JS, StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	return b.JS
}

// testConfig is a consumer of the notices stream with short delays.
func testConfig(stage string) ConsumerConfig {
	return ConsumerConfig{
		Stream:          StreamNotices,
		FilterSubject:   event.SubjectNoticeReceived,
		Stage:           stage,
		MaxDeliver:      5,
		Backoff:         []time.Duration{10 * time.Millisecond},
		AckWait:         5 * time.Second,
		Workers:         2,
		PendingInterval: 50 * time.Millisecond,
	}
}

// running is a Run in a goroutine; stop cancels it and returns Run's result.
type running struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // Run's result, once done is closed
}

func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(waitFor):
		t.Fatal("Run did not return after its context was cancelled")
		return nil
	}
}

// start runs Run in a goroutine, waits until its consumer runs and stops
// it at cleanup.
func start(t *testing.T, js jetstream.JetStream, cfg ConsumerConfig, h Handler, m *Metrics) *running {
	t.Helper()
	if cfg.Status == nil {
		cfg.Status = &Status{}
	}
	r := startNoWait(t, js, cfg, h, m)
	eventually(t, "the consumer to run", cfg.Status.Running)
	return r
}

func startNoWait(t *testing.T, js jetstream.JetStream, cfg ConsumerConfig, h Handler, m *Metrics) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	log := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	go func() {
		defer close(r.done)
		r.err = Run(ctx, js, cfg, h, log, m)
	}()
	t.Cleanup(func() {
		if err := r.stop(t); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

func publish(t *testing.T, js jetstream.JetStream, id string) event.Event {
	t.Helper()
	ev, err := event.New(event.TypeMailReceived, "test", id, time.Now(), event.MailReceived{MailID: id, Size: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := Publish(ctx, js, event.SubjectNoticeReceived, ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func consumerInfo(t *testing.T, js jetstream.JetStream, stream, name string) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := js.Consumer(ctx, stream, name)
	if err != nil {
		t.Fatal(err)
	}
	return c.CachedInfo()
}

// settled waits until the consumer has settled (acked or terminated) the
// stream up to sequence floor, with nothing pending, and returns its info.
func settled(t *testing.T, js jetstream.JetStream, stream, name string, floor uint64) *jetstream.ConsumerInfo {
	t.Helper()
	var info *jetstream.ConsumerInfo
	eventually(t, "the consumer to settle", func() bool {
		info = consumerInfo(t, js, stream, name)
		return info.NumAckPending == 0 && info.NumPending == 0 && info.AckFloor.Stream >= floor
	})
	return info
}

// deadLetters returns the dead letters of stage.
func deadLetters(t *testing.T, js jetstream.JetStream, stage string) []event.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, StreamDead, jetstream.OrderedConsumerConfig{FilterSubjects: []string{event.DeadSubject(stage)}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.FetchNoWait(100)
	if err != nil {
		t.Fatal(err)
	}
	var out []event.Event
	for m := range batch.Messages() {
		ev, err := event.Parse(m.Data())
		if err != nil {
			t.Fatalf("dead letter is not an event: %v", err)
		}
		if got := m.Headers().Get(jetstream.MsgIDHeader); got != ev.ID {
			t.Errorf("dead letter Nats-Msg-Id %q, event id %q", got, ev.ID)
		}
		out = append(out, ev)
	}
	if err := batch.Error(); err != nil {
		t.Fatal(err)
	}
	return out
}

func deadLetter(t *testing.T, ev event.Event) event.DeadLetter {
	t.Helper()
	if ev.Type != event.TypeDead {
		t.Fatalf("dead letter type %q", ev.Type)
	}
	var dl event.DeadLetter
	if err := ev.Decode(&dl); err != nil {
		t.Fatal(err)
	}
	return dl
}

func TestEnsureStreamsIdempotent(t *testing.T) {
	js := setup(t) // once
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := EnsureStreams(ctx, js, StreamConfig{}); err != nil { // twice
		t.Fatalf("second EnsureStreams: %v", err)
	}
	for _, want := range Streams(StreamConfig{}) {
		s, err := js.Stream(ctx, want.Name)
		if err != nil {
			t.Fatal(err)
		}
		got := s.CachedInfo().Config
		if got.Retention != jetstream.LimitsPolicy || got.Storage != jetstream.FileStorage || got.Duplicates != 10*time.Minute || fmt.Sprint(got.Subjects) != fmt.Sprint(want.Subjects) {
			t.Errorf("stream %s: %+v", want.Name, got)
		}
	}
	kv, err := js.KeyValue(ctx, BucketCases)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.History() != 5 {
		t.Errorf("case bucket history %d", st.History())
	}
	obj, err := js.ObjectStore(ctx, BucketMail)
	if err != nil {
		t.Fatal(err)
	}
	mail := bytes.Repeat([]byte("Subject: x\r\n\r\nbody \xff\r\n"), 20000) // over a chunk, not UTF-8
	if _, err := obj.PutBytes(ctx, "m1", mail); err != nil {
		t.Fatal(err)
	}
	back, err := obj.GetBytes(ctx, "m1")
	if err != nil || !bytes.Equal(back, mail) {
		t.Fatalf("mail not stored byte for byte: %v", err)
	}
	if err := EnsureStreams(ctx, js, StreamConfig{Replicas: 7}); err == nil {
		t.Error("7 replicas accepted")
	}
	// Buckets are read from their stream's leader only, also after a
	// second EnsureStreams (a lagging replica must never answer).
	for _, name := range []string{"KV_" + BucketCases, "OBJ_" + BucketMail} {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if st.CachedInfo().Config.AllowDirect {
			t.Errorf("stream %s allows direct get", name)
		}
	}
}

func TestPublishDeduplicates(t *testing.T) {
	js := setup(t)
	publish(t, js, "same")
	publish(t, js, "same")
	publish(t, js, "other")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	s, err := js.Stream(ctx, StreamNotices)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 2 {
		t.Fatalf("stream holds %d messages, want 2", n)
	}
	// PublishNew tells a stored event from a dropped duplicate.
	ev, err := event.New(event.TypeMailReceived, "test", "other", time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if stored, err := PublishNew(ctx, js, event.SubjectNoticeReceived, ev); err != nil || stored {
		t.Errorf("PublishNew of a duplicate: stored %v, err %v; want false, nil", stored, err)
	}
	ev.ID = "third"
	if stored, err := PublishNew(ctx, js, event.SubjectNoticeReceived, ev); err != nil || !stored {
		t.Errorf("PublishNew of a new event: stored %v, err %v; want true, nil", stored, err)
	}
}

func TestPublishGivesUpWithContext(t *testing.T) {
	js := setup(t)
	ev, _ := event.New(event.TypeMailReceived, "test", "x", time.Now(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := Publish(ctx, js, "nostream.here", ev)
	if err == nil || IsPermanent(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish to a subject without stream: %v", err)
	}
	if err := Publish(context.Background(), js, "eiam.notice.x", event.Event{ID: "no type"}); !IsPermanent(err) {
		t.Fatalf("invalid event: %v, want a permanent error", err)
	}
}

func TestSuccessAcks(t *testing.T) {
	js := setup(t)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	var calls atomic.Int32
	var got atomic.Value
	cfg := testConfig("ack")
	cfg.Status = &Status{}
	start(t, js, cfg, func(ctx context.Context, msg Msg) error {
		calls.Add(1)
		ev, err := msg.Event()
		if err != nil {
			return err
		}
		got.Store(ev.ID)
		return nil
	}, m)
	ev := publish(t, js, "ok-1")
	info := settled(t, js, StreamNotices, "ack", 1) // acked: no redelivery can follow
	if calls.Load() != 1 || got.Load() != ev.ID {
		t.Fatalf("handler called %d times with %v", calls.Load(), got.Load())
	}
	if info.AckFloor.Stream != 1 || info.NumRedelivered != 0 {
		t.Errorf("consumer %+v", info)
	}
	if v := testutil.ToFloat64(m.messages.WithLabelValues("ack", OutcomeAck)); v != 1 {
		t.Errorf("ack counter %v", v)
	}
	if n := testutil.CollectAndCount(m.duration); n != 1 {
		t.Errorf("%d duration series", n)
	}
	if !cfg.Status.Running() || Ready(context.Background(), js, cfg.Status) != nil {
		t.Errorf("status: running %v, ready %v", cfg.Status.Running(), Ready(context.Background(), js, cfg.Status))
	}
	if testutil.ToFloat64(m.running.WithLabelValues("ack")) != 1 {
		t.Error("running gauge not 1")
	}
}

func TestTemporaryFailureRetriedThenAcked(t *testing.T) {
	js := setup(t)
	m := NewMetrics(nil)
	var mu sync.Mutex
	var deliveries []uint64
	start(t, js, testConfig("retry"), func(ctx context.Context, msg Msg) error {
		mu.Lock()
		defer mu.Unlock()
		deliveries = append(deliveries, msg.NumDelivered)
		if len(deliveries) <= 2 {
			return errors.New("mail server busy")
		}
		return nil
	}, m)
	publish(t, js, "flaky")
	info := settled(t, js, StreamNotices, "retry", 1)
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(deliveries) != "[1 2 3]" {
		t.Fatalf("deliveries %v, want [1 2 3]", deliveries)
	}
	if info.AckFloor.Stream != 1 {
		t.Errorf("not acked: %+v", info.AckFloor)
	}
	if r, a := testutil.ToFloat64(m.messages.WithLabelValues("retry", OutcomeRetry)), testutil.ToFloat64(m.messages.WithLabelValues("retry", OutcomeAck)); r != 2 || a != 1 {
		t.Errorf("retry %v ack %v", r, a)
	}
	if n := len(deadLetters(t, js, "retry")); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}

func TestPermanentFailureDeadLetters(t *testing.T) {
	js := setup(t)
	m := NewMetrics(nil)
	var calls atomic.Int32
	start(t, js, testConfig("perm"), func(ctx context.Context, msg Msg) error {
		calls.Add(1)
		return Permanent(fmt.Errorf("recipient %s rejected", "x@example.org"))
	}, m)
	ev := publish(t, js, "poison")
	settled(t, js, StreamNotices, "perm", 1) // terminated: no redelivery can follow
	if calls.Load() != 1 {
		t.Fatalf("handler called %d times, want 1", calls.Load())
	}
	dls := deadLetters(t, js, "perm")
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	dl := deadLetter(t, dls[0])
	body, _ := ev.Marshal()
	if !strings.Contains(dl.Reason, "recipient x@example.org rejected") || !dl.Permanent || dl.Deliveries != 1 ||
		dl.Stage != "perm" || dl.OriginalSubject != event.SubjectNoticeReceived || !bytes.Equal(dl.Original(), body) {
		t.Errorf("dead letter %+v", dl)
	}
	if dl.Headers[jetstream.MsgIDHeader][0] != ev.ID || dls[0].Subject != ev.ID {
		t.Errorf("dead letter lost the original id: headers %v, subject %q", dl.Headers, dls[0].Subject)
	}
	if v := testutil.ToFloat64(m.deadLetters.WithLabelValues("perm", ReasonPermanent)); v != 1 {
		t.Errorf("dead letter counter %v", v)
	}
}

func TestTemporaryFailureForeverDeadLettersAfterMaxDeliver(t *testing.T) {
	js := setup(t)
	m := NewMetrics(nil)
	var calls atomic.Int32
	cfg := testConfig("forever")
	cfg.MaxDeliver = 3
	start(t, js, cfg, func(ctx context.Context, msg Msg) error {
		calls.Add(1)
		return errors.New("still down")
	}, m)
	publish(t, js, "doomed")
	eventually(t, "a dead letter", func() bool { return len(deadLetters(t, js, "forever")) == 1 })
	settled(t, js, StreamNotices, "forever", 1)
	if calls.Load() != 3 {
		t.Fatalf("handler called %d times, want 3", calls.Load())
	}
	dl := deadLetter(t, deadLetters(t, js, "forever")[0])
	if dl.Permanent || dl.Deliveries != 3 || dl.Reason != "still down" {
		t.Errorf("dead letter %+v", dl)
	}
	if v := testutil.ToFloat64(m.deadLetters.WithLabelValues("forever", ReasonMaxDeliver)); v != 1 {
		t.Errorf("max_deliver counter %v", v)
	}
}

func TestPanicIsDeadLetteredAndRunGoesOn(t *testing.T) {
	js := setup(t)
	m := NewMetrics(nil)
	var calls atomic.Int32
	start(t, js, testConfig("panic"), func(ctx context.Context, msg Msg) error {
		calls.Add(1)
		if bytes.Contains(msg.Data, []byte("boom")) {
			var nilMap map[string]int
			nilMap["x"] = 1 // a genuine runtime panic
		}
		return nil
	}, m)
	publish(t, js, "boom")
	publish(t, js, "fine")
	info := settled(t, js, StreamNotices, "panic", 2)
	if calls.Load() != 2 || info.AckFloor.Stream != 2 {
		t.Fatalf("calls %d, ack floor %+v", calls.Load(), info.AckFloor)
	}
	dls := deadLetters(t, js, "panic")
	if len(dls) != 1 {
		t.Fatalf("%d dead letters", len(dls))
	}
	if dl := deadLetter(t, dls[0]); !dl.Permanent || !strings.Contains(dl.Reason, "panicked") {
		t.Errorf("dead letter %+v", dl)
	}
	if v := testutil.ToFloat64(m.deadLetters.WithLabelValues("panic", ReasonPanic)); v != 1 {
		t.Errorf("panic counter %v", v)
	}
}

func TestMalformedMessageDeadLettered(t *testing.T) {
	js := setup(t)
	start(t, js, testConfig("garbage"), func(ctx context.Context, msg Msg) error {
		_, err := msg.Event()
		return err
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	raw := []byte{0xff, 0xfe, 'n', 'o', 't', ' ', 'j', 's', 'o', 'n'}
	if _, err := js.Publish(ctx, event.SubjectNoticeReceived, raw); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a dead letter", func() bool { return len(deadLetters(t, js, "garbage")) == 1 })
	dl := deadLetter(t, deadLetters(t, js, "garbage")[0])
	if !dl.Permanent || !bytes.Equal(dl.Original(), raw) {
		t.Errorf("dead letter %+v", dl)
	}
}

func TestDeadLetterPublishFailureNaks(t *testing.T) {
	old := deadLetterTimeout
	deadLetterTimeout = 200 * time.Millisecond
	t.Cleanup(func() { deadLetterTimeout = old })

	js := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := js.DeleteStream(ctx, StreamDead); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	cfg := testConfig("nodead")
	cfg.Backoff = []time.Duration{300 * time.Millisecond}
	start(t, js, cfg, func(ctx context.Context, msg Msg) error {
		calls.Add(1)
		return Permanent(errors.New("never"))
	}, nil)
	publish(t, js, "kept")
	eventually(t, "a second attempt", func() bool { return calls.Load() >= 2 })
	if info := consumerInfo(t, js, StreamNotices, "nodead"); info.AckFloor.Stream != 0 {
		t.Fatalf("message settled without its dead letter: %+v", info.AckFloor)
	}
	// Once the dead-letter stream is back, the message gets its dead letter.
	if err := EnsureStreams(ctx, js, StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a dead letter", func() bool { return len(deadLetters(t, js, "nodead")) == 1 })
	settled(t, js, StreamNotices, "nodead", 1)
}

func TestShutdownLetsInFlightHandlerFinish(t *testing.T) {
	js := setup(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	var returned atomic.Bool
	var ctxErr atomic.Value
	cfg := testConfig("shutdown")
	cfg.Status = &Status{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		err             error
		handlerReturned bool // when Run returned
	}
	done := make(chan result, 1)
	go func() {
		err := Run(ctx, js, cfg, func(ctx context.Context, msg Msg) error {
			close(entered)
			<-release
			ctxErr.Store(fmt.Sprint(ctx.Err()))
			returned.Store(true)
			return nil
		}, zaptest.NewLogger(t), nil)
		done <- result{err, returned.Load()}
	}()
	eventually(t, "the consumer to run", cfg.Status.Running)
	publish(t, js, "slow")
	<-entered
	cancel()
	// Run is stopping: the consumer says so, and the handler still holds
	// its message.
	eventually(t, "the consumer to stop fetching", func() bool { return !cfg.Status.Running() })
	close(release)
	var res result
	select {
	case res = <-done:
	case <-time.After(waitFor):
		t.Fatal("Run did not return after its handler did")
	}
	if res.err != nil {
		t.Fatalf("Run: %v", res.err)
	}
	if !res.handlerReturned {
		t.Fatal("Run returned while a handler was running")
	}
	if got := ctxErr.Load(); got != "<nil>" {
		t.Errorf("handler ctx cancelled during the grace period: %v", got)
	}
	if info := consumerInfo(t, js, StreamNotices, "shutdown"); info.AckFloor.Stream != 1 || info.NumAckPending != 0 {
		t.Errorf("in-flight message not acked: %+v", info)
	}
	if cfg.Status.Running() {
		t.Error("status running after Run returned")
	}
	if err := Ready(context.Background(), js, cfg.Status); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Errorf("Ready after stop: %v", err)
	}
}

func TestShutdownGraceCancelsHandler(t *testing.T) {
	js := setup(t)
	entered := make(chan struct{})
	cfg := testConfig("grace")
	cfg.ShutdownGrace = 100 * time.Millisecond
	r := start(t, js, cfg, func(ctx context.Context, msg Msg) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}, nil)
	publish(t, js, "stuck")
	<-entered
	began := time.Now()
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("Run took %s to return", d)
	}
	info := consumerInfo(t, js, StreamNotices, "grace")
	if info.AckFloor.Stream != 0 {
		t.Errorf("a cancelled handler's message was acked: %+v", info.AckFloor)
	}
	if n := len(deadLetters(t, js, "grace")); n != 0 {
		t.Errorf("shutdown produced %d dead letters", n)
	}
	// The next Run gets it again.
	got := make(chan uint64, 1)
	start(t, js, cfg, func(ctx context.Context, msg Msg) error {
		got <- msg.NumDelivered
		return nil
	}, nil)
	select {
	case n := <-got:
		if n != 2 {
			t.Errorf("redelivered as delivery %d", n)
		}
	case <-time.After(waitFor):
		t.Fatal("message not redelivered to the next Run")
	}
}

func TestConsumerRecreatedWhenDeleted(t *testing.T) {
	js := setup(t)
	cfg := testConfig("phoenix")
	cfg.Status = &Status{}
	var calls atomic.Int32
	start(t, js, cfg, func(ctx context.Context, msg Msg) error {
		calls.Add(1)
		return nil
	}, nil)
	eventually(t, "the consumer to run", cfg.Status.Running)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := js.DeleteConsumer(ctx, StreamNotices, "phoenix"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the consumer to be recreated", func() bool {
		_, err := js.Consumer(ctx, StreamNotices, "phoenix")
		return err == nil && cfg.Status.Running()
	})
	publish(t, js, "after")
	eventually(t, "the message after recreation", func() bool { return calls.Load() == 1 })
}

func TestRunWaitsForStream(t *testing.T) {
	b := brokertest.Start(t)
	cfg := testConfig("early")
	cfg.Status = &Status{}
	var calls atomic.Int32
	startNoWait(t, b.JS, cfg, func(ctx context.Context, msg Msg) error {
		calls.Add(1)
		return nil
	}, nil)
	eventually(t, "a status error", func() bool { return cfg.Status.Err() != errNotStarted })
	if cfg.Status.Running() || !strings.Contains(cfg.Status.Err().Error(), StreamNotices) {
		t.Fatalf("status without stream: running %v, %v", cfg.Status.Running(), cfg.Status.Err())
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := EnsureStreams(ctx, b.JS, StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the consumer to run", cfg.Status.Running)
	publish(t, b.JS, "late")
	eventually(t, "the message", func() bool { return calls.Load() == 1 })
}

func TestPendingGauge(t *testing.T) {
	js := setup(t)
	m := NewMetrics(nil)
	release := make(chan struct{})
	cfg := testConfig("lag")
	cfg.Workers = 1
	start(t, js, cfg, func(ctx context.Context, msg Msg) error {
		<-release
		return nil
	}, m)
	for i := range 10 {
		publish(t, js, fmt.Sprint("lag-", i))
	}
	eventually(t, "lag to show", func() bool { return testutil.ToFloat64(m.pending.WithLabelValues("lag")) >= 5 })
	close(release)
	eventually(t, "lag to clear", func() bool { return testutil.ToFloat64(m.pending.WithLabelValues("lag")) == 0 })
}

func TestConfigValidation(t *testing.T) {
	h := func(context.Context, Msg) error { return nil }
	tests := []struct {
		name string
		cfg  ConsumerConfig
		h    Handler
	}{
		{"no stream", ConsumerConfig{Stage: "s"}, h},
		{"no stage", ConsumerConfig{Stream: "S"}, h},
		{"dotted stage", ConsumerConfig{Stream: "S", Stage: "a.b"}, h},
		{"timeout beyond ack wait", ConsumerConfig{Stream: "S", Stage: "s", AckWait: time.Second, HandlerTimeout: 2 * time.Second}, h},
		{"nil handler", ConsumerConfig{Stream: "S", Stage: "s"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Run(context.Background(), nil, tt.cfg, tt.h, nil, nil)
			if err == nil || !strings.HasPrefix(err.Error(), "pipeline: ") {
				t.Fatalf("Run = %v", err)
			}
		})
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("x")
	if Permanent(nil) != nil || IsPermanent(base) || IsPermanent(nil) {
		t.Fatal("nil or unmarked error counted as permanent")
	}
	p := fmt.Errorf("wrapped: %w", Permanent(base))
	if !IsPermanent(p) || !errors.Is(p, base) || p.Error() != "wrapped: x" {
		t.Fatalf("marked error: %v", p)
	}
	if Permanent(p) != p {
		t.Error("Permanent wraps twice")
	}
}

func TestThreeNodeCluster(t *testing.T) {
	c := brokertest.StartCluster(t, 3)
	client := c.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := EnsureStreams(ctx, client.JS, StreamConfig{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	s, err := client.JS.Stream(ctx, StreamNotices)
	if err != nil {
		t.Fatal(err)
	}
	if ci := s.CachedInfo().Cluster; ci == nil || ci.Leader == "" || len(ci.Replicas) != 2 {
		t.Fatalf("stream cluster info %+v", ci)
	}
	got := make(chan string, 10)
	cfg := testConfig("r3")
	start(t, client.JS, cfg, func(ctx context.Context, msg Msg) error {
		ev, err := msg.Event()
		if err != nil {
			return err
		}
		got <- ev.ID
		return nil
	}, nil)
	publish(t, client.JS, "r3-a")
	publish(t, client.JS, "r3-a") // de-duplicated across the cluster too
	publish(t, client.JS, "r3-b")
	var ids []string
	for len(ids) < 2 {
		select {
		case id := <-got:
			ids = append(ids, id)
		case <-time.After(waitFor):
			t.Fatalf("received %v", ids)
		}
	}
	info := settled(t, client.JS, StreamNotices, "r3", 2)
	if info.AckFloor.Stream != 2 || len(got) != 0 {
		t.Errorf("ack floor %+v, extra deliveries %d", info.AckFloor, len(got))
	}
}

func TestDeadLetterRepublishDeduplicated(t *testing.T) {
	js := setup(t)
	r := &runner{js: js, cfg: testConfig("twice").withDefaults(), ctx: context.Background()}
	m := Msg{Subject: event.SubjectNoticeReceived, Data: []byte(`{}`), Stream: StreamNotices, Sequence: 7, NumDelivered: 1, Timestamp: time.Now()}
	for range 2 { // as after a lost Term and a redelivery
		if err := r.deadLetter(m, Permanent(errors.New("bad"))); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(deadLetters(t, js, "twice")); n != 1 {
		t.Fatalf("%d dead letters, want 1", n)
	}
}

// TestPublishSaysTheStoreIsFull: a server whose JetStream store limit is
// reached refuses a publish for lack of resources; Publish returns at
// once with ErrStoreFull (temporary, not Permanent), not a timeout.
func TestPublishSaysTheStoreIsFull(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Open(ctx, broker.Options{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), MaxStore: 1 << 20}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := EnsureStreams(ctx, b.JS, StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 100<<10)
	for i := range 40 {
		ev, err := event.New(event.TypeMailReceived, "test", fmt.Sprint("full-", i), time.Now(), map[string]string{"pad": big})
		if err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		err = Publish(ctx, b.JS, event.SubjectNoticeReceived, ev)
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrStoreFull) || IsPermanent(err) {
			t.Fatalf("publish %d into a full store: %v; want ErrStoreFull, not permanent", i, err)
		}
		if d := time.Since(began); d > 2*time.Second {
			t.Errorf("the refusal took %s: retried instead of reported", d)
		}
		return
	}
	t.Fatal("40 publishes of 100 KiB fitted a store limited to 1 MiB")
}
