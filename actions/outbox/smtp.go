package outbox

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// attempt is the outcome of one SMTP transaction.
type attempt struct {
	// accepted: the relay answered 250 to the end of the data; reply is
	// its answer.
	accepted bool
	// permanent: the relay refused the mail for good (5xx to MAIL, RCPT or
	// DATA). Neither permanent nor accepted nor unknown: a temporary
	// failure, retried.
	permanent bool
	// unknown: the end of the data was sent and no answer came.
	unknown bool
	// began: beforeData ran and succeeded (the attempt is marked).
	began bool
	// reply is the relay's answer or the error, for the ledger; code is
	// the same in short, without the relay's text (which may name a
	// recipient), for logs and dead letters.
	reply, code string
}

// phase names the step of a transaction an error happened in.
type phase string

const (
	phaseSession phase = "session" // connect, TLS, greeting, EHLO, AUTH
	phaseMail    phase = "MAIL"
	phaseRcpt    phase = "RCPT"
	phaseData    phase = "DATA"
	phaseBody    phase = "body" // writing the data, before its end
	phaseEnd     phase = "end of data"
)

// send runs one SMTP transaction for raw from the envelope sender to rcpts.
// beforeData is called after every recipient was accepted and before the
// DATA command; its error aborts the transaction (temporary). ctx bounds
// the whole transaction, together with r.Timeout: its end closes the
// connection.
func (r Relay) send(ctx context.Context, from string, rcpts []string, raw []byte, beforeData func() error) (a attempt) {
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	fail := func(p phase, err error) attempt {
		a.reply, a.code = describe(p, err), short(p, err)
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code >= 500 && p != phaseSession && p != phaseBody {
			a.permanent = true
		}
		return a
	}
	c, conn, err := r.dial(ctx)
	if err != nil {
		return fail(phaseSession, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer c.Close()

	if r.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", r.Username, r.Password)); err != nil {
			return fail(phaseSession, fmt.Errorf("AUTH PLAIN as %s: %w", r.Username, err))
		}
	}
	if err := c.Mail(from, nil); err != nil {
		return fail(phaseMail, err)
	}
	for _, to := range rcpts {
		if err := c.Rcpt(to, nil); err != nil {
			return fail(phaseRcpt, err)
		}
	}
	if err := beforeData(); err != nil {
		return fail(phaseSession, fmt.Errorf("not sent: the attempt could not be recorded: %w", err))
	}
	a.began = true
	w, err := c.Data()
	if err != nil {
		return fail(phaseData, err)
	}
	if _, err := w.Write(raw); err != nil {
		return fail(phaseBody, err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			return fail(phaseEnd, err)
		}
		// The end of the data may have reached the relay: nobody knows
		// whether it took the mail.
		a.unknown = true
		a.reply, a.code = describe(phaseEnd, err), short(phaseEnd, err)
		if ctx.Err() != nil {
			a.reply = describe(phaseEnd, fmt.Errorf("%w (%w)", err, context.Cause(ctx)))
		}
		return a
	}
	a.accepted = true
	a.reply, a.code = resp.StatusText, "250"
	_ = c.Quit()
	return a
}

// dial connects and says EHLO, with TLS as r.TLS says.
func (r Relay) dial(ctx context.Context) (*smtp.Client, net.Conn, error) {
	if r.Address == "" {
		return nil, nil, ErrNoRelay
	}
	host, _, err := net.SplitHostPort(r.Address)
	if err != nil {
		return nil, nil, fmt.Errorf("relay address %q: %w", r.Address, err)
	}
	tcfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if r.TLSConfig != nil {
		tcfg = r.TLSConfig.Clone()
	}
	if tcfg.ServerName == "" {
		tcfg.ServerName = host
	}
	d := net.Dialer{Timeout: r.Timeout}
	conn, err := d.DialContext(ctx, "tcp", r.Address)
	if err != nil {
		return nil, nil, err
	}
	if r.TLS == TLSImplicit {
		tc := tls.Client(conn, tcfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("TLS with %s: %w", r.Address, err)
		}
		conn = tc
	}
	// go-smtp sets and clears its own deadlines per command; closing the
	// connection when ctx ends is what bounds a hung relay.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var c *smtp.Client
	if r.TLS == TLSStartTLS {
		// The EHLO before STARTTLS says "localhost" (go-smtp has no other
		// way); the one after it says HeloName.
		if c, err = smtp.NewClientStartTLS(conn, tcfg); err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("STARTTLS with %s: %w", r.Address, err)
		}
	} else {
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout, c.SubmissionTimeout = r.Timeout, r.Timeout
	if err := c.Hello(r.heloName()); err != nil {
		c.Close()
		return nil, nil, err
	}
	if r.TLS == TLSStartTLS {
		if _, ok := c.TLSConnectionState(); !ok {
			c.Close()
			return nil, nil, fmt.Errorf("STARTTLS with %s did not start TLS", r.Address)
		}
	}
	return c, conn, nil
}

func (r Relay) heloName() string {
	if r.HeloName != "" {
		return r.HeloName
	}
	if h, err := os.Hostname(); err == nil && h != "" && !strings.ContainsAny(h, " \r\n") {
		return h
	}
	return "localhost"
}

// describe words an error of phase p for the ledger: the relay's answer as
// "550 5.1.1 <text>", or the connection error.
func describe(p phase, err error) string {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		code := ""
		if se.EnhancedCode != (smtp.EnhancedCode{}) && se.EnhancedCode != smtp.NoEnhancedCode {
			code = fmt.Sprintf(" %d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
		}
		return fmt.Sprintf("%s: %d%s %s", p, se.Code, code, oneLine(se.Message))
	}
	return fmt.Sprintf("%s: %s", p, oneLine(err.Error()))
}

// short is describe without the relay's text: "RCPT: 550 5.1.1".
func short(p phase, err error) string {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		code := ""
		if se.EnhancedCode != (smtp.EnhancedCode{}) && se.EnhancedCode != smtp.NoEnhancedCode {
			code = fmt.Sprintf(" %d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
		}
		return fmt.Sprintf("%s: %d%s", p, se.Code, code)
	}
	return describe(p, err) // a connection error: no words of the relay
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
	const max = 500
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}

// queueID takes the queue id out of a relay's 250 answer ("2.0.0 Ok:
// queued as 4XyZ1" from Postfix); the whole answer when it names none.
func queueID(reply string) string {
	reply = oneLine(reply)
	if i := strings.Index(strings.ToLower(reply), "queued as "); i >= 0 {
		if f := strings.Fields(reply[i+len("queued as "):]); len(f) > 0 {
			return strings.Trim(f[0], "<>.,;")
		}
	}
	return reply
}
