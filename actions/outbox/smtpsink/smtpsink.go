// Package smtpsink is an SMTP server on loopback for tests (go-smtp's
// server side): it keeps every message it received, with its envelope and
// raw bytes, and answers as the test scripts it, per message: 421 for a
// while, 550, accept. It speaks plain SMTP, STARTTLS or implicit TLS with
// a certificate the test makes (testcert.New), and AUTH PLAIN when given
// accounts.
package smtpsink

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configure a Sink. The zero value accepts every message over
// plain SMTP without AUTH.
type Options struct {
	// Addr is the listen address (default 127.0.0.1:0); give a former
	// sink's Addr to come back on the same port.
	Addr string
	// TLS, when not nil, offers STARTTLS with its certificate; with
	// Implicit the sink speaks TLS from the first byte instead.
	TLS      *tls.Config
	Implicit bool
	// Users, when not empty, are the AUTH PLAIN accounts (user to
	// password), and a client must authenticate before MAIL.
	Users map[string]string
	// Answer decides the answer to the end of each message's data; nil
	// or a nil answer accepts it with a queue id. Try.N counts the
	// messages the sink received, from 1. Answer may block (a test holds
	// a message there to stop the client in the middle).
	Answer func(Try) *smtp.SMTPError
	// Rcpt, when not nil, answers each RCPT (nil: accept).
	Rcpt func(to string) *smtp.SMTPError
}

// Try is one message's data as the sink received it, before its answer.
type Try struct {
	N        int
	From     string
	To       []string
	Raw      []byte
	User     string // the AUTH user, "" without AUTH
	TLS      bool   // the session was encrypted
	Received time.Time
}

// Message is a received message with the answer the sink gave to it.
type Message struct {
	Try
	// Code is the answer to the end of its data: 250 when accepted.
	Code int
	// QueueID is the queue id of an accepted message.
	QueueID string
}

// Sink is a running SMTP server. Start it with Start; it stops at the
// test's cleanup (or Close).
type Sink struct {
	opts Options
	srv  *smtp.Server
	ln   net.Listener
	addr string

	mu       sync.Mutex
	n        int
	messages []Message
	changed  chan struct{} // closed and replaced on every new message
	closed   bool
}

// Start runs a sink on loopback until the test ends.
func Start(t testing.TB, opts Options) *Sink {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("smtpsink: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// New runs a sink; the caller closes it.
func New(opts Options) (*Sink, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	// The port of a sink just closed may still be held for a moment.
	for i := 0; ; i++ {
		ln, err = net.Listen("tcp", addr)
		if err == nil || i >= 50 || opts.Addr == "" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s := &Sink{opts: opts, ln: ln, addr: ln.Addr().String(), changed: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, tlsOn := c.TLSConnectionState()
		return &session{sink: s, conn: c, tls: tlsOn}, nil
	}))
	srv.Domain = "sink.test"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	srv.MaxLineLength = 4000 // longer than SMTP allows: the test sees what a client sends
	if opts.TLS != nil && !opts.Implicit {
		srv.TLSConfig = opts.TLS
	}
	if opts.Implicit {
		if opts.TLS == nil {
			ln.Close()
			return nil, errors.New("implicit TLS needs Options.TLS")
		}
		ln = tls.NewListener(ln, opts.TLS)
	}
	s.srv = srv
	go srv.Serve(ln)
	return s, nil
}

// Addr is the sink's host:port.
func (s *Sink) Addr() string { return s.addr }

// Close stops the sink: it refuses connections from then on.
func (s *Sink) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.srv.Close()
}

// Messages returns every message the sink received, in order, with the
// answer it gave (a message whose Answer still blocks is not in it yet).
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Accepted returns the messages the sink accepted (250).
func (s *Sink) Accepted() []Message {
	var out []Message
	for _, m := range s.Messages() {
		if m.Code == 250 {
			out = append(out, m)
		}
	}
	return out
}

// Wait waits until cond holds for the received messages, or fails the
// test after timeout, saying what it waited for.
func (s *Sink) Wait(t testing.TB, timeout time.Duration, what string, cond func([]Message) bool) []Message {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		msgs := append([]Message(nil), s.messages...)
		ch := s.changed
		s.mu.Unlock()
		if cond(msgs) {
			return msgs
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("smtpsink: after %s still waiting for %s; received %d message(s)", timeout, what, len(msgs))
			return nil
		}
	}
}

func (s *Sink) next() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return s.n
}

func (s *Sink) record(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, m)
	close(s.changed)
	s.changed = make(chan struct{})
}

// Reply builds an answer: Reply(421, "try later"), Reply(550, "no such
// user"). The enhanced code is derived from the code's class.
func Reply(code int, text string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0}, Message: text}
}

// Script answers the n-th message with answers[n-1] and accepts every one
// after the list (a nil entry accepts too).
func Script(answers ...*smtp.SMTPError) func(Try) *smtp.SMTPError {
	return func(t Try) *smtp.SMTPError {
		if t.N <= len(answers) {
			return answers[t.N-1]
		}
		return nil
	}
}

type session struct {
	sink *Sink
	conn *smtp.Conn
	tls  bool
	user string
	from string
	to   []string
}

func (ss *session) AuthMechanisms() []string {
	if len(ss.sink.opts.Users) == 0 {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnsupported
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if want, ok := ss.sink.opts.Users[username]; !ok || want != password || (identity != "" && identity != username) {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "authentication failed"}
		}
		ss.user = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if len(ss.sink.opts.Users) > 0 && ss.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if f := ss.sink.opts.Rcpt; f != nil {
		if e := f(to); e != nil {
			return e
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, tlsOn := ss.conn.TLSConnectionState()
	try := Try{
		N: ss.sink.next(), From: ss.from, To: append([]string(nil), ss.to...), Raw: raw,
		User: ss.user, TLS: tlsOn || ss.tls, Received: time.Now(),
	}
	var answer *smtp.SMTPError
	if f := ss.sink.opts.Answer; f != nil {
		answer = f(try)
	}
	m := Message{Try: try, Code: 250}
	if answer != nil && answer.Code != 250 {
		m.Code = answer.Code
		ss.sink.record(m)
		return answer
	}
	m.QueueID = fmt.Sprintf("SINK%06d", try.N)
	ss.sink.record(m)
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Ok: queued as " + m.QueueID}
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

// Header returns the first value of header field k of a raw message ("" when
// it has none), unfolded.
func Header(raw []byte, k string) string {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(raw)
	}
	lines := bytes.Split(raw[:end], []byte("\r\n"))
	for i := 0; i < len(lines); i++ {
		name, v, ok := bytes.Cut(lines[i], []byte(":"))
		if !ok || !bytes.EqualFold(bytes.TrimSpace(name), []byte(k)) {
			continue
		}
		val := append([]byte(nil), bytes.TrimSpace(v)...)
		for i+1 < len(lines) && len(lines[i+1]) > 0 && (lines[i+1][0] == ' ' || lines[i+1][0] == '\t') {
			i++
			val = append(append(val, ' '), bytes.TrimSpace(lines[i])...)
		}
		return string(val)
	}
	return ""
}

// Attachment returns the first attachment of a raw mail (a part with
// Content-Disposition: attachment): its media type and its content with
// the transfer encoding undone, so that a test compares it with the
// original byte for byte.
func Attachment(raw []byte) (mediaType string, content []byte, err error) {
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		return "", nil, fmt.Errorf("smtpsink: read mail: %w", err)
	}
	found := false
	err = e.Walk(func(_ []int, part *message.Entity, err error) error {
		if err != nil || found {
			return err
		}
		disp, _, _ := part.Header.ContentDisposition()
		if disp != "attachment" {
			return nil
		}
		mediaType, _, _ = part.Header.ContentType()
		content, err = io.ReadAll(part.Body)
		found = true
		return err
	})
	if err == nil && !found {
		err = errors.New("smtpsink: the mail has no attachment")
	}
	return mediaType, content, err
}
