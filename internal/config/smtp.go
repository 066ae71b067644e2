package config

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/mail"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// EnvSMTPPassword holds the SMTP password when smtp.password_file is empty.
const EnvSMTPPassword = "EIAMTRIAGE_SMTP_PASSWORD"

// SMTP is the relay the outbox hands every mail to (package
// actions/outbox).
//
// Password holds the resolved secret; SMTP's String and GoString print it
// as "<redacted>".
type SMTP struct {
	// Address is the relay, host:port. Empty: no relay; mail is recorded
	// in the outbox and every attempt fails temporarily until RetryFor has
	// passed (Load warns of it).
	Address string `yaml:"address"`
	// TLS is implicit (TLS from the first byte, port 465), starttls
	// (port 587) or none, which is refused unless the relay is on this
	// host (loopback).
	TLS string `yaml:"tls"`
	// CAFile holds PEM certificates to trust for the relay instead of the
	// system's (an internal CA). Empty: the system's roots.
	CAFile string `yaml:"ca_file"`
	// Username authenticates with AUTH PLAIN; its password comes from
	// PasswordFile or EIAMTRIAGE_SMTP_PASSWORD. Empty: no AUTH.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// From is the sender of every mail: "eiamtriage <triage@be.ch>". Its
	// address is the envelope sender and X-Loop, its domain that of the
	// Message-IDs.
	From string `yaml:"from"`
	// HeloName is the name the service gives in EHLO. Empty: this host's
	// name.
	HeloName string `yaml:"helo_name"`
	// Timeout bounds one SMTP transaction, the connection included.
	Timeout Duration `yaml:"timeout"`
	// RetryFor is how long a mail that fails temporarily (a 4xx answer, a
	// refused or broken connection) is retried before it is given up and
	// dead-lettered, counted from when it was recorded: a relay down over
	// a weekend must not lose a mail.
	RetryFor Duration `yaml:"retry_for"`
	// Backoff is the delay before each retry: the first before the second
	// attempt, and so on; the last repeats.
	Backoff []Duration `yaml:"backoff"`
	// Connections is how many mails are sent at once, each over a
	// connection of its own.
	Connections int `yaml:"connections"`

	// Password is the resolved secret; never in the file.
	Password string `yaml:"-"`
}

var smtpTLSModes = []string{"implicit", "starttls", "none"}

func defaultSMTP() SMTP {
	return SMTP{
		TLS:      "starttls",
		From:     "eiamtriage <triage@be.ch>",
		Timeout:  Duration(2 * time.Minute),
		RetryFor: Duration(72 * time.Hour),
		Backoff: []Duration{
			Duration(30 * time.Second), Duration(time.Minute), Duration(5 * time.Minute),
			Duration(15 * time.Minute), Duration(30 * time.Minute),
		},
		Connections: 4,
	}
}

// Delays returns Backoff as time.Durations.
func (s *SMTP) Delays() []time.Duration { return (&Pipeline{Backoff: s.Backoff}).Delays() }

// FromAddress returns the address of From ("triage@be.ch"), or "" when
// From is not valid.
func (s *SMTP) FromAddress() string {
	a, err := mail.ParseAddress(s.From)
	if err != nil {
		return ""
	}
	return a.Address
}

// Validate reports the problems of the smtp section. Password counts as
// given when set, as does its file.
func (s *SMTP) Validate() error {
	var p problems
	if s.Address != "" {
		host, port, err := net.SplitHostPort(s.Address)
		n, perr := strconv.Atoi(port)
		switch {
		case err != nil || host == "":
			p.add("smtp.address", "%q is not host:port: write the relay such as smtp.be.ch:587", s.Address)
		case perr != nil || n < 1 || n > 65535:
			p.add("smtp.address", "%q has port %q: want a number from 1 to 65535 (587 for starttls, 465 for implicit)", s.Address, port)
		}
	}
	switch {
	case !slices.Contains(smtpTLSModes, s.TLS):
		p.add("smtp.tls", "%q is not allowed: use implicit, starttls or none", s.TLS)
	case s.TLS == "none" && s.Address != "" && !isLoopback(s.Address):
		p.add("smtp.tls", "none sends mail (and any password) unencrypted to %s, which is not on this host: "+
			"use starttls or implicit; none is for a relay on loopback only", s.Address)
	}
	hasPassword := s.PasswordFile != "" || s.Password != ""
	switch {
	case s.Username != "" && !hasPassword:
		p.add("smtp.username", "%q has no password: set smtp.password_file or %s", s.Username, EnvSMTPPassword)
	case s.Username == "" && s.PasswordFile != "":
		p.add("smtp.password_file", "is set but smtp.username is empty: give the user name too, or leave both empty for no AUTH")
	case s.Username == "" && hasPassword:
		p.add("smtp.username", "is empty but %s is set: give the user name too, or unset the variable", EnvSMTPPassword)
	}
	if strings.ContainsFunc(s.Username, unicode.IsControl) {
		p.add("smtp.username", "holds a control character")
	}
	if a, err := mail.ParseAddress(s.From); err != nil || strings.ContainsFunc(s.From, unicode.IsControl) {
		p.add("smtp.from", "%+q is not an address: write it as \"eiamtriage <triage@be.ch>\" or triage@be.ch", s.From)
	} else if at := strings.LastIndexByte(a.Address, '@'); at <= 0 || !strings.Contains(a.Address[at+1:], ".") ||
		strings.ContainsFunc(a.Address, func(r rune) bool { return r <= ' ' || r > 0x7e }) {
		p.add("smtp.from", "%+q: the address must be name@domain in ASCII, with a dot in the domain (it names the Message-IDs' domain)", a.Address)
	}
	if s.HeloName != "" && strings.ContainsFunc(s.HeloName, func(r rune) bool { return r <= ' ' || r > 0x7e }) {
		p.add("smtp.helo_name", "%+q is not a host name: give this host's name as the relay knows it, or leave it empty", s.HeloName)
	}
	if s.Timeout <= 0 {
		p.add("smtp.timeout", "%s is not allowed: give a positive duration such as 2m", s.Timeout)
	}
	if s.RetryFor < s.Timeout || s.RetryFor <= 0 {
		p.add("smtp.retry_for", "%s is not allowed: give a duration longer than smtp.timeout, such as 72h (a relay down over a weekend must not lose a mail)", s.RetryFor)
	}
	if len(s.Backoff) == 0 {
		p.add("smtp.backoff", "is empty: list at least one delay, such as [30s, 1m, 5m, 15m, 30m]")
	}
	for i, d := range s.Backoff {
		if d <= 0 {
			p.add(fmt.Sprintf("smtp.backoff[%d]", i), "%s is not allowed: a delay must be positive", d)
		}
	}
	if s.Connections < 1 || s.Connections > 100 {
		p.add("smtp.connections", "%d is not allowed: use 1 to 100", s.Connections)
	}
	return p.err()
}

// secretsFromEnv takes the password from the environment when no file
// names it.
func (s *SMTP) secretsFromEnv() (warnings []string) {
	v := os.Getenv(EnvSMTPPassword)
	switch {
	case v == "":
	case s.PasswordFile != "":
		warnings = append(warnings, fmt.Sprintf("%s is set and ignored: smtp.password_file is given", EnvSMTPPassword))
	default:
		s.Password = v
	}
	return warnings
}

// secretsFromFiles reads password_file and checks that ca_file holds
// certificates. Errors name the file, never its content.
func (s *SMTP) secretsFromFiles() (warnings []string, err error) {
	var p problems
	if s.PasswordFile != "" {
		w, err := readSecret("smtp.password_file", s.PasswordFile, &s.Password)
		if w != "" {
			warnings = append(warnings, w)
		}
		p.addErr(err)
	}
	if s.CAFile != "" {
		if _, err := s.CertPool(); err != nil {
			p = append(p, &Error{Key: "smtp.ca_file", Msg: err.Error(), Err: err})
		}
	}
	return warnings, p.err()
}

// CertPool returns the certificates of CAFile, or nil (the system's
// roots) when it is empty.
func (s *SMTP) CertPool() (*x509.CertPool, error) {
	if s.CAFile == "" {
		return nil, nil
	}
	return certPool(s.CAFile)
}

// certPool reads the PEM certificates of file (smtp's or a mailbox's
// ca_file).
func certPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", file, unwrapPath(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", file)
	}
	return pool, nil
}

// String prints s with its password as "<redacted>".
func (s SMTP) String() string {
	type plain SMTP
	return fmt.Sprintf("%+v", plain(s.redacted()))
}

// GoString is String for %#v.
func (s SMTP) GoString() string {
	type plain SMTP
	return fmt.Sprintf("%#v", plain(s.redacted()))
}

func (s SMTP) redacted() SMTP {
	if s.Password != "" {
		s.Password = redacted
	}
	return s
}
