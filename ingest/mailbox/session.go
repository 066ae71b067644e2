package mailbox

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"go.uber.org/zap"

	"github.com/eiamtriage/eiamtriage/internal/config"
)

// conn is one IMAP connection of the watcher.
type conn struct {
	w    *Watcher
	c    *imapclient.Client
	caps imap.CapSet
	// wake receives a value when the server announces new messages
	// (EXISTS), from go-imap's reader goroutine, without blocking it.
	wake chan struct{}
	// expired names the command whose guard closed the connection.
	expired atomic.Pointer[string]
	// noUIDPlusLogged: the missing UIDPLUS was said once.
	noUIDPlusLogged bool
	// stop unregisters the close at the end of the context.
	stop func() bool
}

// errReauth ends a session so that the next logs in with a fresh token.
var errReauth = errors.New("mailbox: the OAuth token is about to expire: logging in again with a fresh one")

// tokenMargin is how long before its expiry a token is replaced.
const tokenMargin = 5 * time.Minute

// guard closes the connection (through closeFn) when the command named
// what has not returned within the command timeout: go-imap's calls take
// no context and some wait for ever. The returned function ends the guard
// and waits for it.
func (cn *conn) guard(what string, closeFn func()) (done func()) {
	t := cn.w.clock.NewTimer(cn.w.o.CommandTimeout)
	stop, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case <-t.C():
			cn.expired.Store(&what)
			closeFn()
		case <-stop:
			t.Stop()
		}
	}()
	return func() { close(stop); <-exited }
}

// do runs the command f under a guard; on success the server counts as
// alive.
func (cn *conn) do(what string, f func() error) error {
	done := cn.guard(what, func() { cn.c.Close() })
	err := f()
	done()
	if err != nil {
		return cn.explain(what, err)
	}
	cn.w.alive()
	return nil
}

// explain says that a failure was the guard's, when it was.
func (cn *conn) explain(what string, err error) error {
	if p := cn.expired.Load(); p != nil {
		return fmt.Errorf("mailbox %s: %s: no answer from %s within %s (command %s): connection closed: %w",
			cn.w.o.Mailbox, what, cn.w.o.Address, cn.w.o.CommandTimeout, *p, err)
	}
	return fmt.Errorf("mailbox %s: %s: %w%s", cn.w.o.Mailbox, what, err, certAdvice(err))
}

// certAdvice says what to do about a server certificate the watcher
// cannot verify ("" for any other error).
func certAdvice(err error) string {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	switch {
	case errors.As(err, &unknown):
		return " (if the server's certificate comes from an internal CA, give that CA's certificate in the mailbox's ca_file)"
	case errors.As(err, &host):
		return " (the certificate does not name this host: give the address by the name the certificate has)"
	}
	return ""
}

func (w *Watcher) alive() {
	now := w.clock.Now()
	w.status.update(func(s *Snapshot) { s.LastAlive = now })
}

// dial connects, logs in and selects the folder.
func (w *Watcher) dial(ctx context.Context) (*conn, error) {
	o := &w.o
	cn := &conn{w: w, wake: make(chan struct{}, 1)}
	host, portStr, err := net.SplitHostPort(o.Address)
	if err != nil {
		return nil, fmt.Errorf("mailbox %s: address %q: %w", o.Mailbox, o.Address, err)
	}
	port, _ := strconv.Atoi(portStr)
	dctx, cancel := context.WithTimeout(ctx, o.CommandTimeout)
	defer cancel()
	raw, err := (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext(dctx, "tcp", o.Address)
	if err != nil {
		return nil, fmt.Errorf("mailbox %s: connect to %s: %w", o.Mailbox, o.Address, err)
	}
	tcfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.TLSConfig != nil {
		tcfg = o.TLSConfig.Clone()
	}
	if tcfg.ServerName == "" {
		tcfg.ServerName = host
	}
	opts := &imapclient.Options{
		TLSConfig: tcfg,
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case cn.wake <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	switch o.TLS {
	case config.TLSImplicit:
		tcfg.NextProtos = []string{"imap"}
		tc := tls.Client(raw, tcfg)
		if err := tc.HandshakeContext(dctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("mailbox %s: TLS with %s: %w%s", o.Mailbox, o.Address, err, certAdvice(err))
		}
		cn.c = imapclient.New(tc, opts)
	case config.TLSStartTLS:
		done := cn.guard("STARTTLS", func() { raw.Close() })
		c, err := imapclient.NewStartTLS(raw, opts)
		done()
		if err != nil {
			raw.Close()
			return nil, cn.explain("STARTTLS with "+o.Address, err)
		}
		cn.c = c
	default:
		cn.c = imapclient.New(raw, opts)
	}
	cn.stop = context.AfterFunc(ctx, func() { cn.c.Close() })
	ok := false
	defer func() {
		if !ok {
			cn.stop()
			cn.c.Close()
		}
	}()
	if err := cn.do("greeting", cn.c.WaitGreeting); err != nil {
		return nil, err
	}
	if err := w.login(ctx, cn, host, port); err != nil {
		return nil, err
	}
	cn.caps = cn.c.Caps()
	ok = true
	return cn, nil
}

// login logs in with the password or the token.
func (w *Watcher) login(ctx context.Context, cn *conn, host string, port int) error {
	o := &w.o
	var err error
	var failure func() string
	if o.Token == nil {
		err = cn.do("LOGIN", func() error { return cn.c.Login(o.Username, o.Password).Wait() })
	} else {
		tok, terr := o.Token.Token(ctx)
		if terr != nil {
			return fmt.Errorf("mailbox %s: get an OAuth token: %w", o.Mailbox, terr)
		}
		w.status.update(func(s *Snapshot) { s.TokenExpiry = tok.Expiry })
		var sc sasl.Client
		if o.Mechanism == config.MechanismOAuthBearer {
			ob := &oauthBearer{user: o.Username, token: tok.Value, host: host, port: port}
			sc, failure = ob, func() string { return ob.failure }
		} else {
			xo := &xoauth2{user: o.Username, token: tok.Value}
			sc, failure = xo, func() string { return xo.failure }
		}
		err = cn.do("AUTHENTICATE "+strings.ToUpper(o.Mechanism), func() error { return cn.c.Authenticate(sc) })
	}
	if err == nil {
		return nil
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		w.status.update(func(s *Snapshot) { s.LoginFailures++ })
		why := ""
		if failure != nil && failure() != "" {
			why = " (" + failure() + ")"
		}
		return fmt.Errorf("mailbox %s: the server %s refused the login%s: %s %s: check the username, and the password or token of the mailbox",
			o.Mailbox, o.Address, why, ie.Code, strconv.QuoteToASCII(ie.Text))
	}
	return err
}

// session runs one connection: log in, select, take in what is there,
// then wait for more (IDLE, or poll) until the connection fails or ctx
// ends. progressed reports whether it got as far as taking in.
func (w *Watcher) session(ctx context.Context, cps *checkpoints) (progressed bool, err error) {
	w.status.update(func(s *Snapshot) { s.State = StateConnecting })
	cn, err := w.dial(ctx)
	if err != nil {
		return false, err
	}
	defer cn.stop()
	defer cn.c.Close()

	var sel *imap.SelectData
	if err := cn.do("SELECT "+strconv.Quote(w.o.Folder), func() (err error) {
		sel, err = cn.c.Select(w.o.Folder, nil).Wait()
		return err
	}); err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) {
			return false, fmt.Errorf("mailbox %s: the server %s cannot open folder %q: %s %s: check folder", w.o.Mailbox, w.o.Address, w.o.Folder, ie.Code, strconv.QuoteToASCII(ie.Text))
		}
		return false, err
	}
	if err := w.resync(ctx, cps, sel.UIDValidity); err != nil {
		return false, err
	}
	idle := cn.caps.Has(imap.CapIdle)
	w.status.update(func(s *Snapshot) { s.Connected, s.Idle, s.LastErr = true, idle, nil })
	w.log.Info("connected", zap.Bool("idle", idle), zap.Bool("move", cn.caps.Has(imap.CapMove)), zap.Bool("uidplus", cn.caps.Has(imap.CapUIDPlus)),
		zap.Uint32("uidvalidity", sel.UIDValidity), zap.Uint32("checkpoint", w.cp.UID))

	var refresh <-chan time.Time
	if exp := w.Status().TokenExpiry; !exp.IsZero() {
		t := w.clock.NewTimer(max(exp.Sub(w.clock.Now())-tokenMargin, w.o.PollInterval))
		defer t.Stop()
		refresh = t.C()
	}
	for {
		sweepAt := w.clock.Now().Add(w.o.SweepInterval)
		w.status.update(func(s *Snapshot) { s.State = StateSyncing })
		if err := w.catchUp(ctx, cn, cps); err != nil {
			return progressed, err
		}
		progressed = true
		now := w.clock.Now()
		w.status.update(func(s *Snapshot) { s.LastFetch, s.State, s.LastErr = now, StateIdle, nil })
		for again := false; !again; {
			var err error
			again, err = w.wait(ctx, cn, idle, sweepAt, refresh)
			if err != nil {
				return progressed, err
			}
		}
	}
}

// resync checks the folder's UIDVALIDITY against the checkpoint: when it
// changed (or the mailbox now points to another server or account) the
// folder is read again from the start; the mails taken in already are
// recognised by their ids, not taken twice.
func (w *Watcher) resync(ctx context.Context, cps *checkpoints, uidValidity uint32) error {
	if w.cp.UIDValidity == uidValidity && w.cp.Address == w.o.Address && w.cp.Username == w.o.Username {
		return nil
	}
	if w.cp.UIDValidity != 0 {
		w.log.Warn("the folder's UIDVALIDITY or server changed: reading the folder again from the start; mails already taken in are recognised, not taken twice",
			zap.Uint32("old_uidvalidity", w.cp.UIDValidity), zap.Uint32("uidvalidity", uidValidity), zap.Uint32("old_checkpoint", w.cp.UID))
	}
	cp := Checkpoint{UIDValidity: uidValidity, Address: w.o.Address, Username: w.o.Username, At: w.clock.Now().UTC()}
	if err := cps.save(ctx, cp); err != nil {
		return fmt.Errorf("mailbox %s: %w", w.o.Mailbox, err)
	}
	w.cp, w.above = cp, map[uint32]*uidState{}
	w.status.update(func(s *Snapshot) { s.Checkpoint = cp })
	return nil
}

// wait waits for a reason to search the folder again: new mail announced
// during IDLE, the poll interval (without IDLE), the sweep, a retry due.
// An idle connection is proved alive every poll interval with NOOP. again
// is true when the folder is to be searched; a token about to expire ends
// the session (errReauth).
func (w *Watcher) wait(ctx context.Context, cn *conn, idle bool, sweepAt time.Time, refresh <-chan time.Time) (again bool, err error) {
	now := w.clock.Now()
	poll := w.clock.NewTimer(w.o.PollInterval)
	defer poll.Stop()
	sweep := w.clock.NewTimer(max(sweepAt.Sub(now), 0))
	defer sweep.Stop()
	var retry <-chan time.Time
	if at, ok := w.nextRetry(); ok {
		t := w.clock.NewTimer(max(at.Sub(now), 0))
		defer t.Stop()
		retry = t.C()
	}
	var cmd *imapclient.IdleCommand
	if idle {
		// Mail announced since the last search: no need to idle.
		select {
		case <-cn.wake:
			return true, nil
		default:
		}
		if err := cn.do("IDLE", func() (err error) {
			cmd, err = cn.c.Idle()
			return err
		}); err != nil {
			return false, err
		}
		w.status.update(func(s *Snapshot) { s.Idling = true })
		defer w.status.update(func(s *Snapshot) { s.Idling = false })
	}
	woken, watchdog := false, false
	select {
	case <-ctx.Done():
	case <-cn.c.Closed():
	case <-cn.wake:
		woken = true
		if idle {
			now := w.clock.Now()
			w.status.update(func(s *Snapshot) { s.LastIdleWake = now })
		}
	case <-poll.C():
		watchdog = idle
		again = !idle
	case <-sweep.C():
		again = true
	case <-retry:
		again = true
	case <-refresh:
		err = errReauth
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if cmd != nil {
		if derr := cn.do("DONE (end of IDLE)", func() error {
			if err := cmd.Close(); err != nil {
				return err
			}
			return cmd.Wait()
		}); derr != nil {
			return false, derr
		}
	}
	select {
	case <-cn.c.Closed():
		return false, fmt.Errorf("mailbox %s: the server %s closed the connection", w.o.Mailbox, w.o.Address)
	default:
	}
	if err != nil {
		return false, err
	}
	if watchdog {
		if err := cn.do("NOOP (is the server still there?)", func() error { return cn.c.Noop().Wait() }); err != nil {
			return false, err
		}
		select {
		case <-cn.wake:
			woken = true
		default:
		}
	}
	return again || woken, nil
}
