package actions_test

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/actions/outbox/smtpsink"
	"github.com/eiamtriage/eiamtriage/internal/event"
)

// BenchmarkEscalationLatency measures the time from a wrong-person case
// event (seen on eiam.case.> by a subscriber in this process) to its
// escalation accepted by the SMTP sink (the end of its DATA), through the
// actions stage and the outbox on an embedded JetStream. The notices go
// in through the intake and the classify stage; the clock starts at the
// case event. "one-by-one" sends the next notice after the previous
// escalation arrived (a notice alone); "burst" sends batches of 50 at
// once. It reports p50 and p99 in milliseconds.
//
//	go test -run '^$' -bench EscalationLatency -benchtime 200x -count 3 ./actions/
func BenchmarkEscalationLatency(b *testing.B) {
	for _, mode := range []struct {
		name  string
		batch int
	}{{"one-by-one", 1}, {"burst", 50}} {
		b.Run(mode.name, func(b *testing.B) {
			e := newEnv(b, envOptions{})
			e.runStage(b, e.newStage(b, nil))
			var mu sync.Mutex
			seen := map[string]time.Time{} // case id -> its case event
			nc := natsConn(b, e.js)
			sub, err := nc.Subscribe(event.SubjectCases, func(m *nats.Msg) {
				at := time.Now()
				id := strings.TrimPrefix(m.Header.Get(jetstream.MsgIDHeader), "case-")
				caseID := id[:strings.LastIndexByte(id, '-')]
				mu.Lock()
				if _, ok := seen[caseID]; !ok {
					seen[caseID] = at
				}
				mu.Unlock()
			})
			if err != nil {
				b.Fatal(err)
			}
			defer sub.Unsubscribe()
			// Warm up: the consumers, the relay connection.
			e.submit(b, variant(b, wrongPerson, 60000), "warm-up")
			e.sink.Wait(b, waitFor, "the warm-up escalation", func(ms []smtpsink.Message) bool { return escalations(ms) == 1 })
			raws := make([][]byte, b.N)
			for i := range raws {
				raws[i] = variant(b, wrongPerson, i)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i += mode.batch {
				end := min(i+mode.batch, b.N)
				for j := i; j < end; j++ {
					e.submit(b, raws[j], fmt.Sprint("n", j))
				}
				e.sink.Wait(b, waitFor, "the batch's escalations", func(ms []smtpsink.Message) bool { return escalations(ms) == 1+end })
			}
			b.StopTimer()
			var lat []time.Duration
			mu.Lock()
			for _, m := range e.sink.Accepted() {
				if smtpsink.Header(m.Raw, outbox.HeaderKind) != outbox.KindEscalation {
					continue
				}
				c := smtpsink.Header(m.Raw, outbox.HeaderCase)
				if c == caseID(b, wrongPerson, 60000) {
					continue
				}
				at, ok := seen[c]
				if !ok {
					b.Fatalf("no case event seen for %s", c)
				}
				lat = append(lat, m.Received.Sub(at))
			}
			mu.Unlock()
			if len(lat) != b.N {
				b.Fatalf("%d escalations measured, want %d", len(lat), b.N)
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(ms(quantile(lat, 0.50)), "p50-ms")
			b.ReportMetric(ms(quantile(lat, 0.99)), "p99-ms")
			b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
		})
	}
}

func escalations(ms []smtpsink.Message) int {
	return len(slices.DeleteFunc(slices.Clone(ms), func(m smtpsink.Message) bool {
		return m.Code != 250 || smtpsink.Header(m.Raw, outbox.HeaderKind) != outbox.KindEscalation
	}))
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// natsConn connects a core NATS client to the server behind js.
func natsConn(b testing.TB, js jetstream.JetStream) *nats.Conn {
	b.Helper()
	nc := js.Conn()
	if nc == nil {
		b.Fatal("no connection behind the JetStream context")
	}
	return nc
}
