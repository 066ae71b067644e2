package config

import (
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// EnvIMAPPasswordPrefix starts the name of the environment variable that
// holds a mailbox's IMAP password when it has no password_file:
// EIAMTRIAGE_IMAP_PASSWORD_BE for mailbox be, EIAMTRIAGE_IMAP_PASSWORD_TI_2
// for ti-2 (see EnvIMAPPassword).
const EnvIMAPPasswordPrefix = "EIAMTRIAGE_IMAP_PASSWORD_"

// EnvIMAPPassword returns the environment variable that holds the IMAP
// password of the mailbox named name: the prefix, then the name in upper
// case with '-' as '_'.
func EnvIMAPPassword(name string) string {
	return EnvIMAPPasswordPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// What the daemon does with a mail in the folder once the broker has
// acknowledged its mail-received event (After, AfterOther).
const (
	AfterKeep = "keep" // leave it as it is
	AfterSeen = "seen" // set \Seen
	AfterMove = "move" // move it to MoveTo
)

// The values of TLS.
const (
	TLSImplicit = "implicit" // TLS from the first byte (port 993)
	TLSStartTLS = "starttls" // plain, then STARTTLS (port 143)
	TLSNone     = "none"     // no TLS: a server on this host only
)

// The values of OAuth2.Mechanism.
const (
	MechanismXOAuth2     = "xoauth2"     // Microsoft 365, Gmail
	MechanismOAuthBearer = "oauthbearer" // RFC 7628 (Gmail, Dovecot)
)

// IMAP says where a mailbox is and how the daemon reads it. The mailbox is
// watched only when Address is set.
//
// Password holds the resolved secret; Mailbox's String and GoString print
// it as "<redacted>".
type IMAP struct {
	// Address is the IMAP server, host:port. Empty: the mailbox is not
	// watched (mail comes in through `eiamtriage publish`).
	Address string `yaml:"address"`
	// TLS is implicit (the default), starttls, or none; none only for a
	// server on this host.
	TLS string `yaml:"tls"`
	// CAFile holds PEM certificates to trust for the IMAP server instead
	// of the system's roots (a server with a certificate of an internal
	// CA). Empty: the system's roots.
	CAFile string `yaml:"ca_file"`
	// Username is the login name.
	Username string `yaml:"username"`
	// PasswordFile holds the password (a trailing newline is dropped);
	// without it, and without OAuth2, the environment variable
	// EnvIMAPPassword(name) is used.
	PasswordFile string `yaml:"password_file"`
	// OAuth2 logs in with an access token instead of a password.
	OAuth2 OAuth2 `yaml:"oauth2"`
	// Folder is the folder the notices arrive in.
	Folder string `yaml:"folder"`
	// After is what happens to a notice (a mail that becomes a case) once
	// it is taken in: keep (the default), seen, or move to MoveTo.
	After string `yaml:"after"`
	// AfterOther is the same for every other mail (not a notice, or a
	// notice from an untrusted sender): keep by default, so that mail
	// that is none of the service's business is left to the people who
	// read the mailbox.
	AfterOther string `yaml:"after_other"`
	// MoveTo is the folder mail is moved to with after (or after_other)
	// move. It must exist.
	MoveTo string `yaml:"move_to"`
	// PollInterval is how often a server without IDLE is asked for new
	// mail, and how often an idle connection is proved alive (NOOP).
	PollInterval Duration `yaml:"poll_interval"`
	// SweepInterval is how often the folder is searched for mail above
	// the checkpoint whatever IDLE said, to catch what it missed.
	SweepInterval Duration `yaml:"sweep_interval"`
	// UnreachableAfter is how long the server may be unreachable (or
	// silent) before /readyz fails naming the mailbox.
	UnreachableAfter Duration `yaml:"unreachable_after"`

	// Password is the resolved password; never in the file.
	Password string `yaml:"-"`
	// RootCAs holds the certificates of CAFile once loaded (nil: the
	// system's roots).
	RootCAs *x509.CertPool `yaml:"-"`
}

// OAuth2 is a login with an OAuth 2.0 access token (SASL XOAUTH2 or
// OAUTHBEARER). The token is read anew before every login, and before it
// expires when its expiry is known.
type OAuth2 struct {
	// Mechanism is xoauth2 (the default; Microsoft 365 offers nothing
	// else) or oauthbearer.
	Mechanism string `yaml:"mechanism"`
	// TokenFile holds the access token (kept fresh by another program).
	TokenFile string `yaml:"token_file"`
	// TokenCommand prints the access token on its standard output: the
	// program and its arguments, run without a shell.
	TokenCommand []string `yaml:"token_command"`
}

// Enabled reports whether the mailbox logs in with a token.
func (o *OAuth2) Enabled() bool { return o.TokenFile != "" || len(o.TokenCommand) > 0 }

// Watched reports whether the daemon watches the mailbox (it has an
// address).
func (m *Mailbox) Watched() bool { return m.Address != "" }

// The defaults of a watched mailbox's IMAP keys.
const (
	DefaultFolder           = "INBOX"
	DefaultPollInterval     = Duration(time.Minute)
	DefaultSweepInterval    = Duration(15 * time.Minute)
	DefaultUnreachableAfter = Duration(10 * time.Minute)
)

// imapDefaults fills the IMAP keys of mailbox i that the file did not give.
func imapDefaults(m *Mailbox, i int, chk *checker) {
	key := func(k string) bool { return chk.present(fmt.Sprintf("mailboxes[%d].%s", i, k)) }
	if !key("tls") {
		m.TLS = TLSImplicit
	}
	if !key("folder") {
		m.Folder = DefaultFolder
	}
	if !key("after") {
		m.After = AfterKeep
	}
	if !key("after_other") {
		m.AfterOther = AfterKeep
	}
	if !key("poll_interval") {
		m.PollInterval = DefaultPollInterval
	}
	if !key("sweep_interval") {
		m.SweepInterval = DefaultSweepInterval
	}
	if !key("unreachable_after") {
		m.UnreachableAfter = DefaultUnreachableAfter
	}
	if m.OAuth2.Enabled() && !key("oauth2.mechanism") {
		m.OAuth2.Mechanism = MechanismXOAuth2
	}
	if len(m.OAuth2.TokenCommand) == 0 {
		m.OAuth2.TokenCommand = nil
	}
}

// DefaultIMAP returns the IMAP keys of a mailbox that gives none: not
// watched, the other keys at their defaults.
func DefaultIMAP() IMAP {
	return IMAP{
		TLS: TLSImplicit, Folder: DefaultFolder, After: AfterKeep, AfterOther: AfterKeep,
		PollInterval: DefaultPollInterval, SweepInterval: DefaultSweepInterval, UnreachableAfter: DefaultUnreachableAfter,
	}
}

// validateIMAP reports the problems of one mailbox's IMAP keys; key is
// "mailboxes[i]".
func validateIMAP(p *problems, key string, m *Mailbox) {
	if !m.Watched() {
		for _, k := range []struct {
			name string
			set  bool
		}{
			{"username", m.Username != ""}, {"password_file", m.PasswordFile != ""}, {"oauth2", m.OAuth2.Enabled()}, {"ca_file", m.CAFile != ""},
		} {
			if k.set {
				p.add(key+"."+k.name, "is set but address is empty: give the IMAP server as host:port (such as imap.be.ch:993), "+
					"or remove the IMAP keys of a mailbox whose mail comes in through `eiamtriage publish` only")
			}
		}
	}
	if !m.Watched() {
		// A Config built in code leaves the keys of a mailbox that is not
		// watched at zero: only values given are checked.
		d, c := DefaultIMAP(), *m
		for _, f := range []struct{ v, d *string }{{&c.TLS, &d.TLS}, {&c.Folder, &d.Folder}, {&c.After, &d.After}, {&c.AfterOther, &d.AfterOther}} {
			if *f.v == "" {
				*f.v = *f.d
			}
		}
		for _, f := range []struct{ v, d *Duration }{{&c.PollInterval, &d.PollInterval}, {&c.SweepInterval, &d.SweepInterval}, {&c.UnreachableAfter, &d.UnreachableAfter}} {
			if *f.v == 0 {
				*f.v = *f.d
			}
		}
		m = &c
	}
	switch m.TLS {
	case TLSImplicit, TLSStartTLS, TLSNone:
	default:
		p.add(key+".tls", "%q is not allowed: use implicit (TLS from the start, port 993), starttls (port 143) or none (a server on this host only)", m.TLS)
	}
	if m.CAFile != "" && m.TLS == TLSNone {
		p.add(key+".ca_file", "is set but tls is none: a CA is for implicit or starttls; remove ca_file or choose one of them")
	}
	if m.Watched() {
		host, port, err := net.SplitHostPort(m.Address)
		n, perr := strconv.Atoi(port)
		switch {
		case err != nil || host == "":
			p.add(key+".address", "%q is not host:port: write the IMAP server as imap.be.ch:993", m.Address)
		case perr != nil || n < 1 || n > 65535:
			p.add(key+".address", "%q has port %q: want a number from 1 to 65535 (993 for implicit TLS, 143 for starttls)", m.Address, port)
		case m.TLS == TLSNone && !isLoopback(m.Address):
			p.add(key+".tls", "none sends the password and the mail unencrypted, allowed only for a server on this host (127.0.0.1, ::1, localhost), and %s is not: use implicit or starttls", m.Address)
		}
		if m.Username == "" {
			p.add(key+".username", "is empty: give the login name of mailbox %s on %s", m.Name, m.Address)
		}
		hasPassword := m.PasswordFile != "" || m.Password != ""
		switch {
		case m.OAuth2.Enabled() && m.PasswordFile != "":
			p.add(key+".password_file", "and oauth2 are both set: log in with one, a password or an OAuth 2.0 token")
		case !m.OAuth2.Enabled() && !hasPassword:
			p.add(key+".password_file", "is empty and %s is not set: mailbox %s needs a password (a file holding it, or the variable), or oauth2 with a token", EnvIMAPPassword(m.Name), m.Name)
		}
	}
	if m.OAuth2.Enabled() || m.OAuth2.Mechanism != "" {
		switch m.OAuth2.Mechanism {
		case MechanismXOAuth2, MechanismOAuthBearer:
		default:
			p.add(key+".oauth2.mechanism", "%q is not allowed: use xoauth2 (Microsoft 365, Gmail) or oauthbearer", m.OAuth2.Mechanism)
		}
		switch {
		case m.OAuth2.TokenFile != "" && len(m.OAuth2.TokenCommand) > 0:
			p.add(key+".oauth2", "has both token_file and token_command: give one")
		case !m.OAuth2.Enabled():
			p.add(key+".oauth2", "has no token: give token_file (a file another program keeps fresh) or token_command (a program that prints the token)")
		case len(m.OAuth2.TokenCommand) > 0 && strings.TrimSpace(m.OAuth2.TokenCommand[0]) == "":
			p.add(key+".oauth2.token_command[0]", "is empty: give the program to run, such as /usr/local/bin/m365-token")
		}
	}
	if m.Folder == "" || strings.ContainsFunc(m.Folder, isControl) {
		p.add(key+".folder", "%+q is not a folder name: give the folder the notices arrive in, such as INBOX", m.Folder)
	}
	moves := false
	for _, a := range []struct{ key, v string }{{"after", m.After}, {"after_other", m.AfterOther}} {
		switch a.v {
		case AfterKeep, AfterSeen:
		case AfterMove:
			moves = true
		default:
			p.add(key+"."+a.key, "%q is not allowed: use keep, seen (mark it read) or move (to move_to)", a.v)
		}
	}
	switch {
	case moves && m.MoveTo == "":
		p.add(key+".move_to", "is empty but mail is to be moved (after or after_other: move): name the folder, such as Processed")
	case !moves && m.MoveTo != "":
		p.add(key+".move_to", "is set but neither after nor after_other is move: remove it, or set after: move")
	case m.MoveTo != "" && m.MoveTo == m.Folder:
		p.add(key+".move_to", "%q is the watched folder itself: name another folder, such as Processed", m.MoveTo)
	case strings.ContainsFunc(m.MoveTo, isControl):
		p.add(key+".move_to", "%+q is not a folder name", m.MoveTo)
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{{"poll_interval", m.PollInterval}, {"sweep_interval", m.SweepInterval}, {"unreachable_after", m.UnreachableAfter}} {
		if d.v <= 0 {
			p.add(key+"."+d.key, "%s is not allowed: give a positive duration such as 1m", d.v)
		}
	}
	if m.PollInterval > 0 && m.UnreachableAfter > 0 && m.UnreachableAfter <= m.PollInterval {
		p.add(key+".unreachable_after", "%s is not longer than poll_interval %s: an idle connection is proved alive only every poll_interval, so /readyz would fail between two proofs; make it a few times longer", m.UnreachableAfter, m.PollInterval)
	}
}

func isControl(r rune) bool { return r < ' ' || r == 0x7f }

// imapSecretsFromEnv takes the password of each watched mailbox that has
// neither a password_file nor oauth2 from the environment.
func imapSecretsFromEnv(ms []Mailbox) (warnings []string) {
	for i := range ms {
		m := &ms[i]
		env := EnvIMAPPassword(m.Name)
		v := os.Getenv(env)
		switch {
		case v == "":
		case m.PasswordFile != "":
			warnings = append(warnings, fmt.Sprintf("%s is set and ignored: mailbox %s has a password_file", env, m.Name))
		case m.OAuth2.Enabled():
			warnings = append(warnings, fmt.Sprintf("%s is set and ignored: mailbox %s logs in with oauth2", env, m.Name))
		case m.Watched():
			m.Password = v
		}
	}
	return warnings
}

// imapSecretsFromFiles reads each mailbox's password_file and ca_file and
// checks that its token_file is there (its content changes; it is read at
// each login).
func imapSecretsFromFiles(ms []Mailbox) (warnings []string, err error) {
	var p problems
	for i := range ms {
		m := &ms[i]
		key := fmt.Sprintf("mailboxes[%d]", i)
		if m.PasswordFile != "" {
			w, err := readSecret(key+".password_file", m.PasswordFile, &m.Password)
			if w != "" {
				warnings = append(warnings, w)
			}
			p.addErr(err)
		}
		if m.CAFile != "" {
			pool, err := certPool(m.CAFile)
			if err != nil {
				p = append(p, &Error{Key: key + ".ca_file", Msg: err.Error(), Err: err})
			}
			m.RootCAs = pool
		}
		if f := m.OAuth2.TokenFile; f != "" {
			fi, err := os.Stat(f)
			switch {
			case err != nil:
				p = append(p, &Error{Key: key + ".oauth2.token_file", Msg: fmt.Sprintf("cannot read %s: %v", f, unwrapPath(err)), Err: err})
			case fi.IsDir():
				p.add(key+".oauth2.token_file", "%s is a directory, not a file holding the token", f)
			default:
				if w := worldReadable(key+".oauth2.token_file", f, fi); w != "" {
					warnings = append(warnings, w)
				}
			}
		}
	}
	return warnings, p.err()
}

// imapPaths returns the mailboxes' file paths that LoadFile resolves
// against the configuration's directory.
func imapPaths(ms []Mailbox) []*string {
	var ps []*string
	for i := range ms {
		ps = append(ps, &ms[i].PasswordFile, &ms[i].OAuth2.TokenFile, &ms[i].CAFile)
	}
	return ps
}

// resolvePath makes a relative path absolute against dir.
func resolvePath(p *string, dir string) {
	if *p != "" && !filepath.IsAbs(*p) {
		*p = filepath.Join(dir, *p)
	}
}

// String prints m with its password as "<redacted>", so that %v and %+v
// of a Config never show it.
func (m Mailbox) String() string {
	type plain Mailbox // without the methods, against recursion
	return fmt.Sprintf("%+v", plain(m.redacted()))
}

// GoString is String for %#v.
func (m Mailbox) GoString() string {
	type plain Mailbox
	return fmt.Sprintf("%#v", plain(m.redacted()))
}

func (m Mailbox) redacted() Mailbox {
	if m.Password != "" {
		m.Password = redacted
	}
	return m
}
