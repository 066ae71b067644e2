package mailbox

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/eiamtriage/eiamtriage/ingest"
	"github.com/eiamtriage/eiamtriage/internal/broker"
	"github.com/eiamtriage/eiamtriage/internal/broker/brokertest"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

const (
	testUser     = "triage@be.ch"
	testPassword = "imap-test-secret"
	noticeDir    = "../../testdata/notices"
)

// fixture reads a notice fixture.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(noticeDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

var profileRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// notice returns the notice fixture with its profile id and Message-ID
// made unique by i, so that each is a mail (and a case) of its own.
func notice(t testing.TB, i int) []byte {
	t.Helper()
	raw := fixture(t, "de-table-alt-private-bluewin.eml")
	pid := profileRE.Find(raw)
	raw = bytes.ReplaceAll(raw, pid, []byte(profileID(i)))
	raw = bytes.Replace(raw, []byte("Message-ID: <"), []byte("Message-ID: <t"+itoa(i)+"."), 1)
	return append([]byte(authResults), raw...)
}

// authResults is what the boundary server of mailbox be (authserv-id
// mx.be.ch) writes above a notice eIAM signed.
const authResults = "Authentication-Results: mx.be.ch; dkim=pass header.d=admin.ch header.s=sel1; dmarc=pass header.from=eiam.admin.ch\r\n"

func profileID(i int) string {
	s := "00000000000" + itoa(i)
	return "c1a5e000-0000-4000-8000-" + s[len(s)-12:]
}

func itoa(i int) string { return string(appendInt(nil, i)) }

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

// memServer is go-imap's in-memory server on 127.0.0.1:0 with one user
// and the folders INBOX and Processed.
type memServer struct {
	user *imapmemserver.User
	addr string
}

// newMemServer starts the server with caps (nil: IMAP4rev1 only) and,
// when wrap is not nil, every session wrapped.
func newMemServer(t *testing.T, caps imap.CapSet, wrap func(imapserver.Session) imapserver.Session) *memServer {
	t.Helper()
	return newMemServerTLS(t, caps, wrap, nil, false)
}

// newMemServerTLS is newMemServer with TLS: with tc not nil the server
// offers STARTTLS with its certificate or, with implicit, speaks TLS from
// the first byte.
func newMemServerTLS(t *testing.T, caps imap.CapSet, wrap func(imapserver.Session) imapserver.Session, tc *tls.Config, implicit bool) *memServer {
	t.Helper()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser(testUser, testPassword)
	for _, f := range []string{"INBOX", "Processed"} {
		if err := user.Create(f, nil); err != nil {
			t.Fatal(err)
		}
	}
	mem.AddUser(user)
	if caps == nil {
		caps = imap.CapSet{imap.CapIMAP4rev1: {}}
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			s := mem.NewSession()
			if wrap != nil {
				s = wrap(s)
			}
			return s, nil, nil
		},
		Caps:         caps,
		InsecureAuth: tc == nil,
		TLSConfig:    tc,
		Logger:       testLogger{t},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tc != nil && implicit {
		ln = tls.NewListener(ln, tc)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &memServer{user: user, addr: ln.Addr().String()}
}

type testLogger struct{ t *testing.T }

func (l testLogger) Printf(format string, args ...any) {} // the server logs closed connections

type literal struct{ *bytes.Reader }

func (l literal) Size() int64 { return l.Reader.Size() }

// append puts raw into folder and returns its UID.
func (s *memServer) append(t testing.TB, folder string, raw []byte) uint32 {
	t.Helper()
	data, err := s.user.Append(folder, literal{bytes.NewReader(raw)}, &imap.AppendOptions{})
	if err != nil {
		t.Fatalf("append to %s: %v", folder, err)
	}
	return uint32(data.UID)
}

// client logs in as the user, as another mail program would.
func (s *memServer) client(t testing.TB) *imapclient.Client {
	t.Helper()
	return loginClient(t, s.addr)
}

func loginClient(t testing.TB, addr string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(testUser, testPassword).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	return c
}

// folderUIDs returns the UIDs in folder and their flags.
func folderUIDs(t testing.TB, c *imapclient.Client, folder string) map[uint32][]imap.Flag {
	t.Helper()
	if _, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatalf("select %s: %v", folder, err)
	}
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		// An empty folder answers "1:*" with an error on some servers.
		var ie *imap.Error
		if !errors.As(err, &ie) {
			t.Fatalf("fetch %s: %v", folder, err)
		}
	}
	out := map[uint32][]imap.Flag{}
	for _, m := range msgs {
		out[uint32(m.UID)] = m.Flags
	}
	return out
}

// pipe is the pipeline a watcher submits into: an embedded NATS with the
// streams, and an intake reading as `serve` reads.
type pipe struct {
	b      *broker.Broker
	intake *ingest.Intake
	cfg    *config.Config
}

func newPipe(t testing.TB, maxSize int64) *pipe {
	t.Helper()
	b := brokertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pipeline.EnsureStreams(ctx, b.JS, pipeline.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]byte("data_dir: /tmp/unused\nmailboxes:\n  - name: be\n    superusers: [martina.graf@be.ch]\n    authserv_id: mx.be.ch\n"))
	if err != nil {
		t.Fatal(err)
	}
	reader, err := ingest.ReaderFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	in, err := ingest.NewIntake(ctx, b.JS, reader, maxSize, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &pipe{b: b, intake: in, cfg: cfg}
}

// received returns the mail-received events in the notices stream.
func (p *pipe) received(t testing.TB) []event.MailReceived {
	t.Helper()
	var out []event.MailReceived
	for _, ev := range readStream(t, p.b.JS, pipeline.StreamNotices, event.SubjectNoticeReceived) {
		var mr event.MailReceived
		if err := ev.Decode(&mr); err != nil {
			t.Fatal(err)
		}
		out = append(out, mr)
	}
	return out
}

// dead returns the watcher's dead letters.
func (p *pipe) dead(t testing.TB) []event.DeadLetter {
	t.Helper()
	var out []event.DeadLetter
	for _, ev := range readStream(t, p.b.JS, pipeline.StreamDead, event.DeadSubject(DeadStage)) {
		var dl event.DeadLetter
		if err := ev.Decode(&dl); err != nil {
			t.Fatal(err)
		}
		out = append(out, dl)
	}
	return out
}

// readStream returns the events on subject in stream, oldest first.
func readStream(t testing.TB, js jetstream.JetStream, stream, subject string) []event.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	n := info.State.Subjects[subject]
	if n == 0 {
		return nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	var out []event.Event
	for uint64(len(out)) < n {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("read %s: %v", subject, err)
		}
		ev, err := event.Parse(msg.Data())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// checkpoint reads the folder's checkpoint from the bucket.
func (p *pipe) checkpoint(t testing.TB, folder string) Checkpoint {
	t.Helper()
	kv, err := p.b.JS.KeyValue(context.Background(), pipeline.BucketMailboxCheckpoints)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), CheckpointKey("be", folder))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Checkpoint{}
	}
	if err != nil {
		t.Fatal(err)
	}
	var cp Checkpoint
	if err := json.Unmarshal(e.Value(), &cp); err != nil {
		t.Fatal(err)
	}
	return cp
}

// options are a watcher's options for the server at addr, password login,
// no TLS (loopback).
func (p *pipe) options(t testing.TB, addr string) Options {
	return Options{
		Mailbox: "be", Address: addr, TLS: config.TLSNone, Username: testUser, Password: testPassword,
		Folder: "INBOX", Intake: p.intake, JS: p.b.JS, Log: zaptest.NewLogger(t),
		PollInterval: time.Minute, SweepInterval: 7 * time.Hour, UnreachableAfter: 10 * time.Minute,
		CommandTimeout: 13 * time.Second, BackoffMin: 2 * time.Second, Retry: []time.Duration{3 * time.Second},
		Holder: Holder{Host: "test", Dir: t.TempDir(), PID: 1},
		Rand:   func() float64 { return 0 },
	}
}

// start runs a watcher until the test ends.
func start(t testing.TB, o Options) *Watcher {
	t.Helper()
	w, _ := startStoppable(t, o)
	return w
}

// startStoppable runs a watcher until stop is called or the test ends.
func startStoppable(t testing.TB, o Options) (*Watcher, func()) {
	t.Helper()
	w, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("Run did not return within 20s of its context's end")
			}
		})
	}
	t.Cleanup(stop)
	return w, stop
}

// waitUntil polls cond until it holds, failing after timeout with the
// state it describes.
func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// proxy forwards TCP connections to a server; it can freeze (stop
// forwarding, as a hung middlebox does) and filter the server's lines.
type proxy struct {
	addr    string
	target  string
	frozen  atomic.Bool
	conns   atomic.Int32
	filter  func(line []byte) []byte // nil: forward as is
	mu      sync.Mutex
	release chan struct{} // closed when unfrozen
}

func newProxy(t *testing.T, target string, filter func([]byte) []byte) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), target: target, filter: filter, release: make(chan struct{})}
	close(p.release)
	var wg sync.WaitGroup
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range open {
			c.Close()
		}
		p.mu.Unlock()
		p.unfreeze()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.conns.Add(1)
			p.mu.Lock()
			open = append(open, c, s)
			p.mu.Unlock()
			wg.Go(func() { p.pump(s, c, p.filter); c.Close(); s.Close() })
			wg.Go(func() { p.pump(c, s, nil); c.Close(); s.Close() })
		}
	})
	return p
}

func (p *proxy) pump(from, to net.Conn, filter func([]byte) []byte) {
	r := bufio.NewReader(from)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			p.wait()
			if filter != nil {
				line = filter(line)
			}
			if _, werr := to.Write(line); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			return
		}
	}
}

// wait blocks while the proxy is frozen.
func (p *proxy) wait() {
	p.mu.Lock()
	ch := p.release
	p.mu.Unlock()
	<-ch
}

func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.frozen.Swap(true) {
		p.release = make(chan struct{})
	}
}

func (p *proxy) unfreeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen.Swap(false) {
		close(p.release)
	}
}
