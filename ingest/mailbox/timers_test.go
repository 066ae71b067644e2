package mailbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"

	"github.com/eiamtriage/eiamtriage/internal/pipeline"
	"github.com/eiamtriage/eiamtriage/internal/service"
)

// TestWatchdogReconnects: IDLE behind a path that stops forwarding never
// returns by itself. The watchdog ends IDLE every poll interval; DONE
// unanswered, the command timer closes the connection, and the watcher
// reconnects after its backoff and takes in what arrived.
func TestWatchdogReconnects(t *testing.T) {
	srv := newMemServer(t, allCaps, nil)
	px := newProxy(t, srv.addr, nil)
	p := newPipe(t, 0)
	fc := newFakeClock()
	o := p.options(t, px.addr)
	o.Clock = fc
	w := start(t, o)
	waitUntil(t, 10*time.Second, "IDLE running", func() (bool, string) { s := w.Status(); return s.Idling, fmt.Sprintf("%+v", s) })
	fc.waitTimer(t, o.PollInterval)

	px.freeze()
	fc.Advance(o.PollInterval) // the watchdog: DONE, which the frozen path never answers
	fc.waitTimer(t, o.CommandTimeout)
	fc.Advance(o.CommandTimeout)
	waitUntil(t, 10*time.Second, "the connection closed and a backoff", func() (bool, string) {
		s := w.Status()
		return s.State == StateBackoff && !s.Connected, fmt.Sprintf("%+v", s)
	})
	if err := w.Status().LastErr; err == nil || !strings.Contains(err.Error(), "no answer from "+px.addr+" within 13s (command DONE (end of IDLE))") {
		t.Errorf("last error %v, want the unanswered DONE named", err)
	}
	px.unfreeze()
	srv.append(t, "INBOX", notice(t, 1))
	fc.waitTimer(t, o.BackoffMin/2) // attempt 0, jitter 0: half the minimum
	fc.Advance(o.BackoffMin / 2)
	waitReceived(t, p, 1)
	if n := px.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (the first closed by the watchdog)", n)
	}
	if s := w.Status(); s.Reconnects != 1 {
		t.Errorf("reconnects %d, want 1", s.Reconnects)
	}
}

// capsWithout removes a capability from the server's capability lines.
func capsWithout(c string) func([]byte) []byte {
	return func(line []byte) []byte {
		if bytes.HasPrefix(line, []byte("* CAPABILITY")) || bytes.Contains(line, []byte("[CAPABILITY")) {
			return bytes.ReplaceAll(line, []byte(" "+c), nil)
		}
		return line
	}
}

// TestPollWithoutIdle: a server without IDLE is searched every poll
// interval.
func TestPollWithoutIdle(t *testing.T) {
	srv := newMemServer(t, allCaps, nil)
	px := newProxy(t, srv.addr, capsWithout("IDLE"))
	p := newPipe(t, 0)
	fc := newFakeClock()
	o := p.options(t, px.addr)
	o.Clock = fc
	w := start(t, o)
	waitUntil(t, 10*time.Second, "polling", func() (bool, string) {
		s := w.Status()
		return s.State == StateIdle && s.Connected && !s.Idle, fmt.Sprintf("%+v", s)
	})
	fc.waitTimer(t, o.PollInterval)
	srv.append(t, "INBOX", notice(t, 1))
	fc.Advance(o.PollInterval)
	waitReceived(t, p, 1)
	if s := w.Status(); s.Idling || s.LastIdleWake.IsZero() == false {
		t.Errorf("status %+v: a poll is no IDLE", s)
	}
}

// TestSweepCatchesWhatIdleMissed: a mail whose EXISTS never reached the
// watcher (dropped on the way) is found by the sweep.
func TestSweepCatchesWhatIdleMissed(t *testing.T) {
	srv := newMemServer(t, allCaps, nil)
	dropExists := func(line []byte) []byte {
		if bytes.HasPrefix(line, []byte("* ")) && bytes.HasSuffix(line, []byte(" EXISTS\r\n")) {
			return nil
		}
		return line
	}
	px := newProxy(t, srv.addr, dropExists)
	p := newPipe(t, 0)
	fc := newFakeClock()
	o := p.options(t, px.addr)
	o.Clock, o.PollInterval, o.SweepInterval, o.UnreachableAfter = fc, 10*time.Hour, 7*time.Hour, 20*time.Hour
	w := start(t, o)
	waitUntil(t, 10*time.Second, "IDLE running", func() (bool, string) { s := w.Status(); return s.Idling, fmt.Sprintf("%+v", s) })
	fc.waitTimer(t, o.SweepInterval)
	srv.append(t, "INBOX", notice(t, 1))
	fc.Advance(o.SweepInterval)
	waitReceived(t, p, 1)
	if s := w.Status(); !s.LastIdleWake.IsZero() {
		t.Errorf("IDLE woke (%v), but its EXISTS was dropped: the sweep must have found the mail", s.LastIdleWake)
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		n    int
		rnd  float64
		want time.Duration
	}{
		{0, 0, 500 * time.Millisecond}, {0, 0.999999, 999999500 * time.Nanosecond},
		{1, 0, time.Second}, {3, 0.5, 6 * time.Second}, {9, 0, 150 * time.Second}, {40, 0, 150 * time.Second},
	} {
		if got := backoff(tc.n, time.Second, 5*time.Minute, func() float64 { return tc.rnd }); got != tc.want {
			t.Errorf("backoff(%d, rnd %v) = %s, want %s", tc.n, tc.rnd, got, tc.want)
		}
	}
}

// TestBackoffGrowsAndReadyFails: a server that refuses connections is
// tried again after 1.5s, 3s, 6s, then every 7.5s (2s doubling to at most
// 10s, jittered into the upper half); once it has been unreachable longer
// than unreachable_after, Ready fails naming the mailbox and the reason.
func TestBackoffGrowsAndReadyFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	p := newPipe(t, 0)
	fc := newFakeClock()
	o := p.options(t, addr)
	o.Clock, o.BackoffMin, o.BackoffMax = fc, 2*time.Second, 10*time.Second
	o.Rand = func() float64 { return 0.5 }
	// Run as serve runs it: a part of the service, whose /readyz names it.
	w, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	svc := service.New(nil, nil, nil)
	svc.Add(service.Part{Name: "mailbox be", Run: w.Run, Ready: w.Ready})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-ran })
	for _, d := range []time.Duration{1500 * time.Millisecond, 3 * time.Second, 6 * time.Second, 7500 * time.Millisecond, 7500 * time.Millisecond} {
		fc.waitTimer(t, d)
		if err := w.Ready(context.Background()); err != nil {
			t.Fatalf("Ready within unreachable_after: %v", err)
		}
		fc.Advance(d)
	}
	fc.waitTimer(t, 7500*time.Millisecond)
	if s := w.Status(); s.Reconnects != 6 || s.State != StateBackoff {
		t.Errorf("status %+v: want 6 reconnects, in backoff", s)
	}
	fc.Advance(o.UnreachableAfter)
	rec := httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "mailbox be: the IMAP server "+addr+" never answered") {
		t.Errorf("/readyz: %d %s; want 503 naming the mailbox", rec.Code, rec.Body)
	}
	err = w.Ready(context.Background())
	for _, want := range []string{"the IMAP server " + addr + " never answered", "longer than unreachable_after 10m", "connection refused"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Ready = %v, want it to say %q", err, want)
		}
	}
}

// leaseRevision reads the revision of the mailbox's lease.
func leaseRevision(t *testing.T, p *pipe) (uint64, Holder) {
	t.Helper()
	kv, err := p.b.JS.KeyValue(context.Background(), pipeline.BucketMailboxLeases)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), "be")
	if err != nil {
		return 0, Holder{}
	}
	var h Holder
	if err := json.Unmarshal(e.Value(), &h); err != nil {
		t.Fatal(err)
	}
	return e.Revision(), h
}

// TestLease: the lease is renewed every third of its TTL; a second
// watcher stands by (and counts as ready) while the first holds it, and
// takes over when the first stops; a lease left by a dead process of the
// same daemon is taken over at once.
func TestLease(t *testing.T) {
	srv := newMemServer(t, allCaps, nil)
	p := newPipe(t, 0)
	fc := newFakeClock()
	oa := p.options(t, srv.addr)
	oa.Clock, oa.Holder = fc, Holder{Host: "a", Dir: "/a", PID: 1}
	a, stopA := startStoppable(t, oa)
	waitUntil(t, 10*time.Second, "a watching", func() (bool, string) { s := a.Status(); return s.LeaseHeld && s.Connected, fmt.Sprintf("%+v", s) })
	rev, holder := leaseRevision(t, p)
	if holder.Host != "a" {
		t.Fatalf("lease holder %+v, want a", holder)
	}
	fc.waitTimer(t, pipeline.MailboxLeaseTTL/3)
	fc.Advance(pipeline.MailboxLeaseTTL / 3)
	waitUntil(t, 10*time.Second, "the lease renewed", func() (bool, string) {
		r, _ := leaseRevision(t, p)
		return r > rev, fmt.Sprintf("revision %d, was %d", r, rev)
	})

	ob := p.options(t, srv.addr)
	ob.Holder, ob.LeaseTTL = Holder{Host: "b", Dir: "/b", PID: 2}, 600*time.Millisecond // retries every 200ms
	b := start(t, ob)
	waitUntil(t, 10*time.Second, "b standing by", func() (bool, string) { s := b.Status(); return s.State == StateStandby, fmt.Sprintf("%+v", s) })
	if s := b.Status(); s.Holder.Host != "a" || s.Connected {
		t.Errorf("standby status %+v: want holder a, not connected", s)
	}
	if err := b.Ready(context.Background()); err != nil {
		t.Errorf("a standby is ready: %v", err)
	}
	stopA()
	waitUntil(t, 10*time.Second, "b taking over", func() (bool, string) { s := b.Status(); return s.LeaseHeld && s.Connected, fmt.Sprintf("%+v", s) })
	srv.append(t, "INBOX", notice(t, 1))
	waitReceived(t, p, 1)

	t.Run("a dead process of the same daemon", func(t *testing.T) {
		p := newPipe(t, 0)
		cmd := exec.Command("true")
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		me := Holder{Host: "host", Dir: "/data", PID: 4242}
		dead := me
		dead.PID = cmd.Process.Pid // exited and reaped
		kv, err := p.b.JS.KeyValue(context.Background(), pipeline.BucketMailboxLeases)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(dead)
		if _, err := kv.Create(context.Background(), "be", data); err != nil {
			t.Fatal(err)
		}
		o := p.options(t, srv.addr)
		o.Holder = me
		w := start(t, o)
		waitUntil(t, 5*time.Second, "the lease taken over", func() (bool, string) { s := w.Status(); return s.LeaseHeld, fmt.Sprintf("%+v", s) })
	})
}

// saslSession logs in with an OAuth token: XOAUTH2 or OAUTHBEARER, a
// token of good accepted. It forwards Move (the server advertises MOVE).
type saslSession struct {
	imapserver.Session
	mu     *sync.Mutex
	tokens *[]string // every token offered
	good   map[string]bool
}

func (s *saslSession) AuthenticateMechanisms() []string { return []string{"XOAUTH2", "OAUTHBEARER"} }

func (s *saslSession) Authenticate(mech string) (sasl.Server, error) {
	check := func(tok string) error {
		s.mu.Lock()
		*s.tokens = append(*s.tokens, tok)
		ok := s.good[tok]
		s.mu.Unlock()
		if !ok {
			return errors.New("invalid token")
		}
		return s.Session.Login(testUser, testPassword)
	}
	switch mech {
	case "XOAUTH2":
		return &xoauth2Server{check: check}, nil
	case "OAUTHBEARER":
		return sasl.NewOAuthBearerServer(func(o sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
			if err := check(o.Token); err != nil {
				return &sasl.OAuthBearerError{Status: "invalid_token"}
			}
			return nil
		}), nil
	}
	return nil, errors.New("no such mechanism")
}

func (s *saslSession) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	return s.Session.(imapserver.SessionMove).Move(w, numSet, dest)
}

// xoauth2Server is the server side of XOAUTH2: a failure is a JSON
// challenge, then NO after the client's empty answer.
type xoauth2Server struct {
	check  func(string) error
	failed error
}

func (s *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if s.failed != nil {
		return nil, true, s.failed
	}
	parts := strings.Split(string(resp), "\x01")
	if len(parts) < 2 || !strings.HasPrefix(parts[1], "auth=Bearer ") {
		return nil, true, errors.New("malformed XOAUTH2 response")
	}
	if err := s.check(strings.TrimPrefix(parts[1], "auth=Bearer ")); err != nil {
		s.failed = err
		return []byte(`{"status":"401","schemes":"bearer"}`), false, nil
	}
	return nil, true, nil
}

// TestOAuthLoginAndRefresh: a refused token counts as a login failure
// and the watcher dials again; a token's expiry is shown, and before it
// the watcher logs in again with a fresh token; both mechanisms.
func TestOAuthLoginAndRefresh(t *testing.T) {
	for _, mech := range []string{"xoauth2", "oauthbearer"} {
		t.Run(mech, func(t *testing.T) {
			var mu sync.Mutex
			var offered []string
			srv := newMemServer(t, allCaps, func(s imapserver.Session) imapserver.Session {
				return &saslSession{Session: s, mu: &mu, tokens: &offered, good: map[string]bool{"good-1": true, "good-2": true}}
			})
			p := newPipe(t, 0)
			fc := newFakeClock()
			o := p.options(t, srv.addr)
			o.Clock, o.Password, o.Mechanism = fc, "", mech
			calls := 0
			o.Token = TokenSourceFunc(func(context.Context) (Token, error) {
				calls++
				switch calls {
				case 1:
					return Token{Value: "bad"}, nil
				default:
					return Token{Value: fmt.Sprintf("good-%d", calls-1), Expiry: fc.Now().Add(time.Hour)}, nil
				}
			})
			o.Metrics = NewMetrics(nil)
			o.Metrics.clock = fc
			w := start(t, o)
			waitUntil(t, 10*time.Second, "the refused login", func() (bool, string) { s := w.Status(); return s.LoginFailures == 1, fmt.Sprintf("%+v", s) })
			if err := w.Status().LastErr; err == nil || !strings.Contains(err.Error(), "refused the login") || strings.Contains(err.Error(), "bad") {
				t.Errorf("last error %v: want the refusal, without the token", err)
			}
			fc.waitTimer(t, o.BackoffMin/2)
			fc.Advance(o.BackoffMin / 2)
			waitUntil(t, 10*time.Second, "logged in with good-1", func() (bool, string) { s := w.Status(); return s.Connected, fmt.Sprintf("%+v", s) })
			if exp := w.Status().TokenExpiry; !exp.Equal(fc.Now().Add(time.Hour)) {
				t.Errorf("token expiry %v, want in an hour", exp)
			}
			fc.waitTimer(t, time.Hour-tokenMargin)
			fc.Advance(time.Hour - tokenMargin)
			waitUntil(t, 10*time.Second, "logged in again with good-2", func() (bool, string) {
				mu.Lock()
				defer mu.Unlock()
				return len(offered) == 3 && w.Status().Connected, fmt.Sprint(offered)
			})
			mu.Lock()
			if fmt.Sprint(offered) != "[bad good-1 good-2]" {
				t.Errorf("tokens offered %v", offered)
			}
			mu.Unlock()
			if s := w.Status(); s.Reconnects != 1 || s.LoginFailures != 1 {
				t.Errorf("status %+v: want 1 reconnect (the refusal; the refresh is none), 1 login failure", s)
			}
		})
	}
}

// failFetch leaves UID skip out of the first times FETCH answers that
// should hold it, as a server that drops a message without an error.
type failFetch struct {
	imapserver.Session
	skip  imap.UID
	times *int
	mu    *sync.Mutex
}

func (s *failFetch) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	if set, ok := numSet.(imap.UIDSet); ok && set.Contains(s.skip) {
		s.mu.Lock()
		drop := *s.times > 0
		*s.times--
		s.mu.Unlock()
		if drop {
			uids, _ := set.Nums()
			var rest imap.UIDSet
			for _, u := range uids {
				if u != s.skip {
					rest.AddNum(u)
				}
			}
			if len(rest) == 0 {
				return nil
			}
			numSet = rest
		}
	}
	return s.Session.Fetch(w, numSet, options)
}

func (s *failFetch) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	return s.Session.(imapserver.SessionMove).Move(w, numSet, dest)
}

// TestShortFetch: a UID the server leaves out of its answer holds the
// checkpoint back (the mails behind it are taken in meanwhile) and is
// fetched again after the retry delay; one left out every time becomes a
// dead letter after MaxAttempts, and the checkpoint passes it.
func TestShortFetch(t *testing.T) {
	for _, tc := range []struct {
		name  string
		times int
	}{{"once", 1}, {"always", 1 << 30}} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			times := tc.times
			srv := newMemServer(t, allCaps, func(s imapserver.Session) imapserver.Session {
				return &failFetch{Session: s, skip: 2, times: &times, mu: &mu}
			})
			p := newPipe(t, 0)
			for i := 1; i <= 3; i++ {
				srv.append(t, "INBOX", notice(t, i))
			}
			fc := newFakeClock()
			o := p.options(t, srv.addr)
			o.Clock, o.MaxAttempts = fc, 2
			w := start(t, o)
			waitReceived(t, p, 2)
			waitCheckpoint(t, p, 1)
			if s := w.Status(); s.Retry != 1 {
				t.Errorf("retries %d, want 1", s.Retry)
			}
			fc.waitTimer(t, o.Retry[0])
			fc.Advance(o.Retry[0])
			waitCheckpoint(t, p, 3)
			got := p.received(t)
			dls := p.dead(t)
			if tc.times == 1 {
				if len(got) != 3 || len(dls) != 0 {
					t.Errorf("%d events, %d dead letters; want 3 and 0", len(got), len(dls))
				}
				return
			}
			if len(got) != 2 || len(dls) != 1 || !strings.Contains(dls[0].Reason, "UID 2") || !strings.Contains(dls[0].Reason, "2 attempts to take the mail in failed") {
				t.Errorf("%d events, dead letters %+v; want 2 events and a dead letter for UID 2", len(got), dls)
			}
		})
	}
}
