package stage_test

import (
	"context"
	"encoding/json"
	"errors"
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
	"go.uber.org/zap/zaptest"

	"github.com/eiamtriage/eiamtriage/classify/stage"
	"github.com/eiamtriage/eiamtriage/ingest"
	"github.com/eiamtriage/eiamtriage/internal/broker"
	"github.com/eiamtriage/eiamtriage/internal/broker/brokertest"
	"github.com/eiamtriage/eiamtriage/internal/cases"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// TestThreeNodeClusterTwoInstances runs two instances of the classify
// stage, each connected to its own node of a three-node JetStream cluster
// with R3 streams, while a third connection, to the third node, submits 500
// distinct notices. In the middle of the batch one node stops (the leader
// of the case bucket's stream, unless that is the publisher's node) and one
// instance is cancelled:
//
//   - "survivor's node stops": the node of the instance that goes on stops
//     and the other instance is cancelled, so the survivor has to
//     reconnect to a remaining node and finish the work alone;
//   - "cancelled instance's node stops": the instance and its node go
//     together (a machine lost), the survivor's node stays.
//
// Mails from the 250th on are submitted only after the fault, so intake
// goes on through it. In the end every profile has exactly one case with
// exactly one notice, and the case stream holds exactly one event per
// notice: none classified twice, none missed.
func TestThreeNodeClusterTwoInstances(t *testing.T) {
	// Each scenario gets 45 s, and both together no more than 88 s: a
	// scenario usually takes 5 to 15 s, one in which the stage stalls for
	// its consumer's 30 s heartbeat up to 40 s.
	end := time.Now().Add(88 * time.Second)
	mails := genMails(t, 500)
	for _, tc := range []struct {
		name          string
		survivorsNode bool // the survivor's node stops, else the cancelled instance's
	}{
		{"survivor's node stops", true},
		{"cancelled instance's node stops", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			deadline := time.Now().Add(45 * time.Second)
			if deadline.After(end) {
				deadline = end
			}
			runClusterFault(t, mails, tc.survivorsNode, deadline)
		})
	}
}

func runClusterFault(t *testing.T, mails []genMail, stopSurvivorsNode bool, deadline time.Time) {
	const (
		faultAt    = 150 // case events stored before the fault
		holdBackAt = 250 // mails submitted only after the fault
		submitters = 4
	)
	total := len(mails)
	began := time.Now()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	byProfile := make(map[string]genMail, total)
	for _, m := range mails {
		byProfile[m.ProfileID] = m
	}

	cl := brokertest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Until(deadline))
	defer cancel()
	if err := pipeline.EnsureStreams(ctx, cl.Nodes[0].JS, pipeline.StreamConfig{Replicas: 3}); err != nil {
		t.Fatalf("EnsureStreams: %v", err)
	}

	// The victim is the node leading the case bucket, unless that is node
	// 0, the publisher's node, which never stops.
	victim := 1
	if l := streamLeader(ctx, cl.Nodes[0].JS, "KV_"+pipeline.BucketCases); l > 0 {
		victim = l
	}
	const pub = 0
	other := 3 - victim // the third node: 1 or 2
	survivorNode, cancelledNode := victim, other
	if !stopSurvivorsNode {
		survivorNode, cancelledNode = other, victim
	}
	t.Logf("cluster up after %s: publisher on n%d, survivor on n%d, cancelled instance on n%d, n%d to stop",
		time.Since(began).Round(time.Millisecond), pub, survivorNode, cancelledNode, victim)

	connect := func(node int, name string) *broker.Broker {
		t.Helper()
		b, err := broker.Open(ctx, broker.Options{URL: cl.URLs[node], Name: name}, log.Named(name))
		if err != nil {
			t.Fatalf("connect %s to n%d: %v", name, node, err)
		}
		t.Cleanup(b.Close)
		return b
	}
	survivorConn := connect(survivorNode, "survivor")
	cancelledConn := connect(cancelledNode, "cancelled")
	pubConn := connect(pub, "publisher")
	obs := cl.Nodes[pub].JS // the observer: the publisher's node never stops

	cfg := stage.Consumer()
	cfg.Workers = 2
	cfg.MaxDeliver = 50 // a node failure must not dead-letter anything
	cfg.Backoff = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond}
	cfg.AckWait = 5 * time.Second
	cfg.ShutdownGrace = 2 * time.Second
	// Both at once: the second instance's first pull may meet the new R3
	// consumer before it has a leader ("no responders"); pipeline.Run
	// must restart the consumption at once rather than idle until a
	// 30-second pull expires.
	survivor := startInstance(t, "survivor", survivorConn.JS, cfg, log)
	cancelled := startInstance(t, "cancelled", cancelledConn.JS, cfg, log)
	waitUntil(t, deadline, "both instances consuming", func() (bool, string) {
		return survivor.status.Running() && cancelled.status.Running(), ""
	})

	intake, err := ingest.NewIntake(ctx, pubConn.JS, testReader(t), 0, nil)
	if err != nil {
		t.Fatalf("NewIntake: %v", err)
	}

	// Submit the batch from a few goroutines; mails from holdBackAt on go
	// only after the fault, so that publishing goes on through it.
	fault := make(chan struct{})
	work := make(chan int)
	var (
		failedAttempts atomic.Int64
		submitErrs     = make(chan error, total)
		submitted      sync.WaitGroup
	)
	go func() {
		defer close(work)
		for i := range mails {
			if i == holdBackAt {
				select {
				case <-fault:
				case <-ctx.Done():
					return
				}
			}
			select {
			case work <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range submitters {
		submitted.Go(func() {
			for i := range work {
				n, err := submit(intake, mails[i].Raw, fmt.Sprintf("test:cluster/%d", i), deadline)
				failedAttempts.Add(int64(n))
				if err != nil {
					submitErrs <- fmt.Errorf("mail %d: %w", i, err)
				}
			}
		})
	}

	// The fault, once faultAt case events exist.
	waitUntil(t, deadline, fmt.Sprintf("%d case events before the fault", faultAt), func() (bool, string) {
		n, err := streamMsgs(ctx, obs, pipeline.StreamCases)
		return err == nil && n >= faultAt, fmt.Sprintf("%d case events (err %v)", n, err)
	})
	n, _ := streamMsgs(ctx, obs, pipeline.StreamCases)
	faultTime := time.Now()
	t.Logf("fault after %s with %d case events; leaders: %s; %s; %s", faultTime.Sub(began).Round(time.Millisecond), n,
		leaders(ctx, obs), survivor.outcomes(), cancelled.outcomes())
	if survivor.acked() == 0 || cancelled.acked() == 0 {
		t.Errorf("before the fault the instances did not share the work: %s; %s", survivor.outcomes(), cancelled.outcomes())
	}
	cancelled.cancel()
	cl.Nodes[victim].Server().Shutdown()
	cl.Nodes[victim].Server().WaitForShutdown()
	close(fault)
	cancelled.stop(t, 20*time.Second)
	cancelledConn.Close() // the process is gone
	t.Logf("n%d stopped and the cancelled instance gone after %s", victim, time.Since(faultTime).Round(time.Millisecond))

	submitted.Wait()
	close(submitErrs)
	for err := range submitErrs {
		t.Errorf("submit failed for good: %v", err)
	}
	t.Logf("all %d mails submitted %s after the fault (%d failed Submit attempts retried)", total, time.Since(faultTime).Round(time.Millisecond), failedAttempts.Load())
	if t.Failed() {
		t.FailNow()
	}

	// Done is when the bucket holds every case and the consumer has
	// nothing pending nor unacknowledged: no further processing can come.
	kv, err := obs.KeyValue(ctx, pipeline.BucketCases)
	if err != nil {
		t.Fatalf("open the case bucket: %v", err)
	}
	var (
		last *jetstream.ConsumerInfo
		dead uint64
	)
	waitUntil(t, deadline, fmt.Sprintf("%d cases and an idle consumer", total), func() (bool, string) {
		if dead, _ = streamMsgs(ctx, obs, pipeline.StreamDead); dead > 0 {
			return true, "" // a mail will never become a case: report it now
		}
		keys, kerr := countKeys(ctx, kv)
		ci, cerr := consumerInfo(ctx, obs)
		if kerr != nil || cerr != nil {
			return false, fmt.Sprintf("keys: %v, consumer: %v", kerr, cerr)
		}
		last = ci
		state := fmt.Sprintf("%d cases, consumer pending %d, ack pending %d, redelivered %d; survivor running %v (%v); %s; %s",
			keys, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, survivor.status.Running(), survivor.status.Err(),
			survivor.outcomes(), cancelled.outcomes())
		return keys >= total && ci.NumPending == 0 && ci.NumAckPending == 0, state
	})
	if dead > 0 {
		cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer ccancel()
		checkNotices(t, cctx, obs, total)
		t.Fatalf("%d messages dead-lettered; stopped waiting for the cases (%s; %s)", dead, survivor.outcomes(), cancelled.outcomes())
	}
	t.Logf("all cases recorded %s after the fault, %s after the start; consumer delivered %d, redelivered %d; %s; %s",
		time.Since(faultTime).Round(time.Millisecond), time.Since(began).Round(time.Millisecond),
		last.Delivered.Stream, last.NumRedelivered, survivor.outcomes(), cancelled.outcomes())

	cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer ccancel()
	checkCases(t, cctx, kv, byProfile)
	checkCaseEvents(t, cctx, obs, byProfile)
	checkNotices(t, cctx, obs, total)
}

// checkCases asserts one case per profile, each with exactly one notice,
// from the expected mail, with the expected class, its event published.
func checkCases(t *testing.T, ctx context.Context, kv jetstream.KeyValue, byProfile map[string]genMail) {
	t.Helper()
	all := watchCases(t, ctx, kv)
	if len(all) != len(byProfile) {
		t.Errorf("%d cases, want %d", len(all), len(byProfile))
	}
	perProfile := map[string]int{}
	for _, c := range all {
		perProfile[c.ProfileID]++
		m, ok := byProfile[c.ProfileID]
		if !ok {
			t.Errorf("case %s: unknown profile %q", c.ID, c.ProfileID)
			continue
		}
		if c.ID != "p."+m.ProfileID {
			t.Errorf("case %s: key, want p.%s", c.ID, m.ProfileID)
		}
		if c.Class != m.Class {
			t.Errorf("case %s: class %s, want %s", c.ID, c.Class, m.Class)
		}
		if len(c.Notices) != 1 {
			t.Errorf("case %s: %d notices, want 1: %+v", c.ID, len(c.Notices), c.Notices)
			continue
		}
		r := c.Notices[0]
		if r.MailID != m.MailID || r.MessageID != m.MessageID || r.Change != cases.Created || r.ReceivedSeq == 0 || r.Duplicates != 0 {
			t.Errorf("case %s: notice %+v, want mail %s, Message-ID %s, created, with its received sequence, no duplicates", c.ID, r, m.MailID, m.MessageID)
		}
	}
	for p := range byProfile {
		if perProfile[p] != 1 {
			t.Errorf("profile %s has %d cases, want 1", p, perProfile[p])
		}
	}
}

// watchCases returns every case in the bucket, read through a watcher (a
// consumer, served by the stream leader) rather than with direct gets,
// which any replica may answer, so that the check sees the bucket as it
// is and not as a lagging replica last saw it.
func watchCases(t *testing.T, ctx context.Context, kv jetstream.KeyValue) []*event.Case {
	t.Helper()
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		t.Fatalf("watch the case bucket: %v", err)
	}
	defer w.Stop()
	var all []*event.Case
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				return all // the initial values are all there
			}
			var c event.Case
			if err := json.Unmarshal(e.Value(), &c); err != nil {
				t.Fatalf("case %s (revision %d) is not a case record: %v", e.Key(), e.Revision(), err)
			}
			all = append(all, &c)
		case <-ctx.Done():
			t.Fatalf("read the case bucket: %v after %d cases", ctx.Err(), len(all))
		}
	}
}

// checkCaseEvents reads the whole case stream and asserts one event per
// profile, its Nats-Msg-Id the event id case-<case>-<mail>.
func checkCaseEvents(t *testing.T, ctx context.Context, js jetstream.JetStream, byProfile map[string]genMail) {
	t.Helper()
	msgs := readStream(t, ctx, js, pipeline.StreamCases)
	if len(msgs) != len(byProfile) {
		t.Errorf("stream %s holds %d messages, want %d", pipeline.StreamCases, len(msgs), len(byProfile))
	}
	ids := map[string]int{}
	perProfile := map[string]int{}
	for _, msg := range msgs {
		ev, err := event.Parse(msg.Data)
		if err != nil {
			t.Errorf("case event %q is not an event: %v", msg.Data, err)
			continue
		}
		ids[ev.ID]++
		if h := msg.Header.Get(nats.MsgIdHdr); h != ev.ID {
			t.Errorf("case event %s: Nats-Msg-Id %q", ev.ID, h)
		}
		var ch event.CaseChanged
		if err := ev.Decode(&ch); err != nil || ch.Case == nil {
			t.Errorf("case event %s: payload: %v", ev.ID, err)
			continue
		}
		perProfile[ch.Case.ProfileID]++
		m, ok := byProfile[ch.Case.ProfileID]
		switch {
		case !ok:
			t.Errorf("case event %s: unknown profile %q", ev.ID, ch.Case.ProfileID)
		case ev.ID != event.CaseEventID("p."+m.ProfileID, m.MailID) || ch.MailID != m.MailID:
			t.Errorf("case event %s (mail %s), want id %s", ev.ID, ch.MailID, event.CaseEventID("p."+m.ProfileID, m.MailID))
		case ev.Type != event.TypeCaseClassified || ch.Change != cases.Created:
			t.Errorf("case event %s: type %s, change %s; want %s, created", ev.ID, ev.Type, ch.Change, event.TypeCaseClassified)
		case msg.Subject != event.CaseSubject(m.Class):
			t.Errorf("case event %s on %s, want %s", ev.ID, msg.Subject, event.CaseSubject(m.Class))
		}
	}
	if len(ids) != len(byProfile) {
		t.Errorf("%d distinct case event ids, want %d", len(ids), len(byProfile))
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("case event %s stored %d times", id, n)
		}
	}
	for p := range byProfile {
		if perProfile[p] != 1 {
			t.Errorf("profile %s has %d case events, want 1", p, perProfile[p])
		}
	}
}

// checkNotices asserts that every mail was announced once, none was
// ignored and nothing was dead-lettered.
func checkNotices(t *testing.T, ctx context.Context, js jetstream.JetStream, total int) {
	t.Helper()
	s, err := js.Stream(ctx, pipeline.StreamNotices)
	if err != nil {
		t.Fatalf("stream %s: %v", pipeline.StreamNotices, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(event.SubjectNotices))
	if err != nil {
		t.Fatalf("stream %s info: %v", pipeline.StreamNotices, err)
	}
	if got := info.State.Subjects[event.SubjectNoticeReceived]; got != uint64(total) {
		t.Errorf("%d mail-received events, want %d (one per mail: Submit retries must be de-duplicated)", got, total)
	}
	if got := info.State.Subjects[event.SubjectNoticeIgnored]; got != 0 {
		t.Errorf("%d mails ignored, want none", got)
	}
	for _, m := range readStream(t, ctx, js, pipeline.StreamDead) {
		var dl event.DeadLetter
		ev, err := event.Parse(m.Data)
		if err == nil {
			err = ev.Decode(&dl)
		}
		if err != nil {
			t.Errorf("dead letter on %s: %s", m.Subject, m.Data)
			continue
		}
		t.Errorf("dead letter on %s after %d deliveries (permanent %v): %s", m.Subject, dl.Deliveries, dl.Permanent, dl.Reason)
	}
}

// readStream returns every message of stream, read with an ordered
// consumer. Right after a node failure the stream may be between leaders:
// a failed read starts over, for up to 20 s.
func readStream(t *testing.T, ctx context.Context, js jetstream.JetStream, stream string) []*nats.Msg {
	t.Helper()
	var err error
	for range 40 {
		var msgs []*nats.Msg
		if msgs, err = tryReadStream(ctx, js, stream); err == nil {
			return msgs
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("read stream %s: %v", stream, err)
	return nil
}

func tryReadStream(ctx context.Context, js jetstream.JetStream, stream string) ([]*nats.Msg, error) {
	want, err := streamMsgs(ctx, js, stream)
	if err != nil || want == 0 {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(cctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("ordered consumer: %w", err)
	}
	var out []*nats.Msg
	for uint64(len(out)) < want {
		batch, err := cons.Fetch(int(want)-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, err
		}
		got := 0
		for m := range batch.Messages() {
			out = append(out, &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: slices.Clone(m.Data())})
			got++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		if got == 0 {
			return nil, fmt.Errorf("%d of %d messages, then nothing", len(out), want)
		}
	}
	return out, nil
}

func streamMsgs(ctx context.Context, js jetstream.JetStream, stream string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	return s.CachedInfo().State.Msgs, nil
}

func consumerInfo(ctx context.Context, js jetstream.JetStream) (*jetstream.ConsumerInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, pipeline.StreamNotices, stage.Name)
	if err != nil {
		return nil, err
	}
	return c.CachedInfo(), nil
}

func countKeys(ctx context.Context, kv jetstream.KeyValue) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	l, err := kv.ListKeys(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for range l.Keys() {
		n++
	}
	return n, nil
}

// streamLeader returns the index of the node leading stream (server names
// are n0, n1, ...), or -1.
func streamLeader(ctx context.Context, js jetstream.JetStream, stream string) int {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil || s.CachedInfo().Cluster == nil {
		return -1
	}
	var i int
	if _, err := fmt.Sscanf(s.CachedInfo().Cluster.Leader, "n%d", &i); err != nil {
		return -1
	}
	return i
}

// leaders describes who leads the streams and the consumer, for the log.
func leaders(ctx context.Context, js jetstream.JetStream) string {
	var parts []string
	for _, s := range []string{pipeline.StreamNotices, pipeline.StreamCases, "KV_" + pipeline.BucketCases, "OBJ_" + pipeline.BucketMail} {
		parts = append(parts, fmt.Sprintf("%s=n%d", s, streamLeader(ctx, js, s)))
	}
	if ci, err := consumerInfo(ctx, js); err == nil && ci.Cluster != nil {
		parts = append(parts, "consumer="+ci.Cluster.Leader)
	}
	if ai, err := js.AccountInfo(ctx); err == nil {
		parts = append(parts, fmt.Sprintf("api_errors=%d", ai.API.Errors))
	}
	return strings.Join(parts, " ")
}
