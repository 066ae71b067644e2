package mailbox

import (
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/testcert"
)

// TestTLS takes a notice in over implicit TLS and over STARTTLS from a
// server whose certificate the configured CA signed, and refuses a server
// it cannot trust, or one without STARTTLS, with an error that says so
// (and never falls back to plain text).
func TestTLS(t *testing.T) {
	serverTLS, roots := testcert.New(t)
	for _, tc := range []struct {
		name     string
		mode     string
		implicit bool
	}{
		{"implicit", config.TLSImplicit, true},
		{"starttls", config.TLSStartTLS, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newMemServerTLS(t, allCaps, nil, serverTLS, tc.implicit)
			p := newPipe(t, 0)
			srv.append(t, "INBOX", notice(t, 1))
			o := p.options(t, srv.addr)
			o.TLS, o.TLSConfig = tc.mode, &tls.Config{RootCAs: roots}
			w := start(t, o)
			waitReceived(t, p, 1)
			waitCheckpoint(t, p, 1)
			if s := w.Status(); !s.Connected || s.LoginFailures != 0 {
				t.Errorf("status %+v, want connected without login failures", s)
			}
		})
		t.Run(tc.name+" certificate not trusted", func(t *testing.T) {
			srv := newMemServerTLS(t, allCaps, nil, serverTLS, tc.implicit)
			p := newPipe(t, 0)
			srv.append(t, "INBOX", notice(t, 1))
			o := p.options(t, srv.addr)
			o.TLS = tc.mode // the system's roots: the test CA is not among them
			w := start(t, o)
			var msg string
			waitUntil(t, 10*time.Second, "the untrusted certificate reported", func() (bool, string) {
				s := w.Status()
				if s.LastErr != nil {
					msg = s.LastErr.Error()
				}
				return s.LastErr != nil, fmt.Sprintf("%+v", s)
			})
			t.Logf("error: %s", msg)
			for _, want := range []string{"mailbox be", srv.addr, "certificate", "ca_file"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not name %q", msg, want)
				}
			}
			if s := w.Status(); s.Connected || s.Submitted != 0 {
				t.Errorf("status %+v: connected or mail taken in through a server it cannot trust", s)
			}
			if got := p.received(t); len(got) != 0 {
				t.Errorf("%d mails taken in through a server it cannot trust", len(got))
			}
		})
	}
	t.Run("starttls without STARTTLS", func(t *testing.T) {
		srv := newMemServer(t, allCaps, nil) // no TLS at all
		p := newPipe(t, 0)
		o := p.options(t, srv.addr)
		o.TLS = config.TLSStartTLS
		w := start(t, o)
		waitUntil(t, 10*time.Second, "the refusal reported", func() (bool, string) {
			s := w.Status()
			return s.LastErr != nil && strings.Contains(s.LastErr.Error(), "STARTTLS"), fmt.Sprintf("%+v", s)
		})
		if s := w.Status(); s.Connected {
			t.Errorf("status %+v: connected without TLS though starttls was asked for", s)
		}
	})
	t.Run("ca_file reaches the watcher", func(t *testing.T) {
		cfg := config.Default()
		m := &config.Mailbox{Name: "be", IMAP: config.IMAP{Address: "imap.be.ch:993", TLS: config.TLSImplicit, RootCAs: roots}}
		if o := OptionsFor(&cfg, m, nil, nil); o.TLSConfig == nil || !o.TLSConfig.RootCAs.Equal(roots) {
			t.Errorf("OptionsFor: TLSConfig %+v, want the mailbox's RootCAs", o.TLSConfig)
		}
		m.RootCAs = nil
		if o := OptionsFor(&cfg, m, nil, nil); o.TLSConfig != nil {
			t.Errorf("OptionsFor without ca_file: TLSConfig %+v, want nil (the system's roots)", o.TLSConfig)
		}
	})
}
