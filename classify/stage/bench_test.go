package stage_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eiamtriage/eiamtriage/classify/stage"
	"github.com/eiamtriage/eiamtriage/ingest"
	"github.com/eiamtriage/eiamtriage/internal/broker"
	"github.com/eiamtriage/eiamtriage/internal/broker/brokertest"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// BenchmarkClassifyStage measures the classify stage end to end through
// JetStream on one embedded server: b.N distinct notices (generated before
// the timer starts) are submitted by a few goroutines through an Intake,
// one stage instance with the default number of workers (pipeline.workers) classifies them, and a core NATS
// subscription on eiam.case.> waits for every case event. It reports the
// throughput (mails/s) and the latency of one mail from the start of its
// Submit call to the arrival of its case event (p50-ms, p99-ms).
//
// Run it with
//
//	go test -run '^$' -bench ClassifyStage -benchmem ./internal/triage/
//
// (add -benchtime=2000x for a fixed batch of 2000 mails).
func BenchmarkClassifyStage(b *testing.B) {
	// saturated: 16 submitters keep the stage busy, so throughput is the
	// stage's and the latency includes the queue; one-by-one: each mail is
	// submitted once the case event of the one before arrived, so the
	// latency is that of a mail arriving alone (submitters 0).
	for _, sub := range []struct {
		name       string
		submitters int
	}{{"saturated", 16}, {"one-by-one", 0}} {
		b.Run(sub.name, func(b *testing.B) { benchmarkClassifyStage(b, sub.submitters) })
	}
}

func benchmarkClassifyStage(b *testing.B, submitters int) {
	n := b.N
	mails := genMails(b, n)
	index := make(map[string]int, n)
	for i, m := range mails {
		index[m.MailID] = i
	}

	br := brokertest.Start(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := pipeline.EnsureStreams(ctx, br.JS, pipeline.StreamConfig{}); err != nil {
		b.Fatalf("EnsureStreams: %v", err)
	}
	cfg := stage.Consumer()
	cfg.Workers = config.Default().Pipeline.Workers // as serve runs it
	cfg.AckWait = 30 * time.Second
	cfg.Backoff = []time.Duration{50 * time.Millisecond, 500 * time.Millisecond}
	// The stage on a connection of its own, as a separate instance or the
	// daemon has: a NATS connection is one ordered byte stream, read by
	// one goroutine on each side.
	stageConn, err := broker.Open(ctx, broker.Options{URL: br.ClientURL(), Name: "bench-stage"}, zap.NewNop())
	if err != nil {
		b.Fatalf("connect the stage: %v", err)
	}
	defer stageConn.Close()
	stage := startInstance(b, "bench", stageConn.JS, cfg, zap.NewNop())
	waitUntil(b, time.Now().Add(20*time.Second), "the stage consuming", func() (bool, string) { return stage.status.Running(), "" })
	intake, err := ingest.NewIntake(ctx, br.JS, testReader(b), 0, nil)
	if err != nil {
		b.Fatalf("NewIntake: %v", err)
	}

	// The subscription's callbacks run one at a time: got and recv need no
	// lock; done publishes them to the benchmark goroutine.
	started := make([]time.Time, n)
	recv := make([]time.Time, n)
	got := 0
	done := make(chan struct{})
	arrived := make(chan struct{}, 1) // one-by-one: the last mail's event is in
	var stray atomic.Int64
	sub, err := br.Conn.Subscribe(event.SubjectCases, func(m *nats.Msg) {
		at := time.Now()
		// The event id, also the Nats-Msg-Id, ends in the mail id
		// (cases.EventID): no need to decode the event, which would
		// charge the benchmark's own work to the pipeline.
		id := m.Header.Get(jetstream.MsgIDHeader)
		i, ok := index[id[strings.LastIndexByte(id, '-')+1:]]
		if !ok {
			stray.Add(1)
			return
		}
		if !recv[i].IsZero() {
			return // a retried publish: the stream drops it, the subscription sees it
		}
		recv[i] = at
		if submitters == 0 {
			arrived <- struct{}{}
		}
		if got++; got == n {
			close(done)
		}
	})
	if err != nil {
		b.Fatalf("subscribe to %s: %v", event.SubjectCases, err)
	}
	defer sub.Unsubscribe()
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		b.Fatal(err)
	}
	if err := br.Conn.Flush(); err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	began := time.Now()
	var (
		next      atomic.Int64
		submitted sync.WaitGroup
	)
	if submitters == 0 {
		for i := range n {
			started[i] = time.Now()
			if _, err := intake.Submit(ctx, mails[i].Raw, testMailbox, fmt.Sprintf("bench/%d", i)); err != nil {
				b.Fatalf("submit mail %d: %v", i, err)
			}
			select {
			case <-arrived:
			case <-ctx.Done():
				b.Fatalf("gave up waiting for the case event of mail %d", i)
			}
		}
	}
	for range submitters {
		submitted.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				started[i] = time.Now()
				if _, err := intake.Submit(ctx, mails[i].Raw, testMailbox, fmt.Sprintf("bench/%d", i)); err != nil {
					b.Errorf("submit mail %d: %v", i, err)
					return
				}
			}
		})
	}
	submitted.Wait()
	select {
	case <-done:
	case <-ctx.Done():
		b.Fatalf("gave up waiting for the case events of %d mails", n)
	}
	elapsed := time.Since(began)
	b.StopTimer()

	if s := stray.Load(); s > 0 {
		b.Errorf("%d case events for mails not submitted here", s)
	}
	lat := make([]float64, n)
	for i := range n {
		lat[i] = float64(recv[i].Sub(started[i])) / float64(time.Millisecond)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "mails/s")
	b.ReportMetric(percentile(lat, 0.50), "p50-ms")
	b.ReportMetric(percentile(lat, 0.99), "p99-ms")
}

// percentile returns the p-th quantile of sorted (nearest rank).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
