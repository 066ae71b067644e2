package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-smtp"
)

// The demo's parts inside the process: an IMAP server holding the
// superuser's mailbox (go-imap's in-memory server) and an SMTP server that
// keeps what the service sends. Both listen on loopback only.

// demoIMAP is the in-memory IMAP server with one user and the folders
// INBOX and Verarbeitet.
type demoIMAP struct {
	srv  *imapserver.Server
	user *imapmemserver.User
	ln   net.Listener
}

func startDemoIMAP(username, password string) (*demoIMAP, error) {
	mem := imapmemserver.New()
	user := imapmemserver.NewUser(username, password)
	for _, f := range []string{"INBOX", "Verarbeitet"} {
		if err := user.Create(f, nil); err != nil {
			return nil, fmt.Errorf("demo: create the IMAP folder %s: %w", f, err)
		}
	}
	mem.AddUser(user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIdle: {}, imap.CapMove: {}, imap.CapUIDPlus: {}},
		InsecureAuth: true, // loopback only
		Logger:       discardLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: listen for IMAP on loopback: %w", err)
	}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	return &demoIMAP{srv: srv, user: user, ln: ln}, nil
}

func (s *demoIMAP) addr() string { return s.ln.Addr().String() }

// deliver puts a mail into INBOX, as the mail server delivers it.
func (s *demoIMAP) deliver(raw []byte) error {
	_, err := s.user.Append("INBOX", memLiteral{bytes.NewReader(raw)}, &imap.AppendOptions{})
	return err
}

func (s *demoIMAP) close() { s.srv.Close() }

type memLiteral struct{ *bytes.Reader }

func (l memLiteral) Size() int64 { return l.Reader.Size() }

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// sentMail is a mail the demo's SMTP server accepted.
type sentMail struct {
	From string
	To   []string
	Raw  []byte
}

// demoSMTP accepts every mail and keeps it; received is told of each.
type demoSMTP struct {
	srv      *smtp.Server
	ln       net.Listener
	mu       sync.Mutex
	mails    []sentMail
	received func(sentMail)
}

func startDemoSMTP(received func(sentMail)) (*demoSMTP, error) {
	s := &demoSMTP{received: received}
	s.srv = smtp.NewServer(s)
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.MaxMessageBytes = 64 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: listen for SMTP on loopback: %w", err)
	}
	s.ln = ln
	go s.srv.Serve(ln) //nolint:errcheck // ends with Close
	return s, nil
}

func (s *demoSMTP) addr() string { return s.ln.Addr().String() }

func (s *demoSMTP) close() { s.srv.Close() }

func (s *demoSMTP) sent() []sentMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sentMail(nil), s.mails...)
}

// NewSession is go-smtp's Backend.
func (s *demoSMTP) NewSession(*smtp.Conn) (smtp.Session, error) { return &demoSession{srv: s}, nil }

type demoSession struct {
	srv  *demoSMTP
	from string
	to   []string
}

func (ss *demoSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

func (ss *demoSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *demoSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "read error"}
	}
	if len(ss.to) == 0 {
		return errors.New("no recipient")
	}
	m := sentMail{From: ss.from, To: append([]string(nil), ss.to...), Raw: raw}
	ss.srv.mu.Lock()
	ss.srv.mails = append(ss.srv.mails, m)
	ss.srv.mu.Unlock()
	if ss.srv.received != nil {
		ss.srv.received(m)
	}
	return nil
}

func (ss *demoSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *demoSession) Logout() error { return nil }
