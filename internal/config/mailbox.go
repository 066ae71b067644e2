package config

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Mailbox is one canton's mailbox: where its notices arrive, who its
// superusers are and how the sender of a mail is authenticated
// (docs/NOTICE.md section 5). Its name marks everything that came through
// it: events, cases, metrics and logs.
type Mailbox struct {
	// Name is [a-z0-9-]+, unique among the mailboxes.
	Name string `yaml:"name"`
	// Superusers are the cantonal superusers who receive this mailbox's
	// notices. Only a notice one of them forwarded is acted on; their
	// addresses compare without regard to ASCII letter case.
	Superusers []string `yaml:"superusers"`
	// AuthservID lists the authserv-ids of the organisation's boundary
	// mail servers: only their topmost Authentication-Results header
	// counts (one id, or a list).
	AuthservID Strings `yaml:"authserv_id"`
	// Microsoft365 says the boundary server is Microsoft 365 (Exchange
	// Online), which writes its Authentication-Results header without an
	// authserv-id: the topmost such header counts.
	Microsoft365 bool `yaml:"microsoft365"`
	// VerifyDKIM makes the service verify DKIM signatures itself (DNS
	// lookups) when no counted Authentication-Results header exists.
	VerifyDKIM bool `yaml:"verify_dkim"`
	// Authentication is "on" (the default) or "off". Off acts on any
	// notice whose From names an eIAM sender, forged or not: for tests
	// and demonstrations only.
	Authentication string `yaml:"authentication"`

	// The IMAP keys (imap.go): where the mailbox is and how it is read.
	// A mailbox without an Address is not watched: its mail comes in
	// through `eiamtriage publish` only.
	IMAP `yaml:",inline"`
	// What the cases of this mailbox cause (actions.go): UserMail is
	// "send" (mail the user of a private-email case) or "draft" (a draft
	// to the superusers instead); Language is the language of the mail to
	// its superusers (de, fr, it, en).
	UserMail string `yaml:"user_mail"`
	Language string `yaml:"language"`
}

// AuthenticationOff is the Authentication value that switches sender
// authentication off.
const AuthenticationOff = "off"

// AuthenticationOff reports whether the mailbox acts on notices without
// authenticating their sender.
func (m *Mailbox) AuthenticationIsOff() bool { return m.Authentication == AuthenticationOff }

var mailboxName = regexp.MustCompile(`^[a-z0-9-]+$`)

// validateMailboxes reports each mailbox's problems and repeated names.
func validateMailboxes(ms []Mailbox) error {
	var p problems
	if len(ms) == 0 {
		p.add("mailboxes", "is empty: list each canton's mailbox, such as\n"+
			"  mailboxes:\n    - name: be\n      superusers: [martina.graf@be.ch]\n      authserv_id: mx.be.ch")
	}
	seen := map[string]int{}
	for i, m := range ms {
		key := fmt.Sprintf("mailboxes[%d]", i)
		switch {
		case m.Name == "":
			p.add(key+".name", "is empty: name the mailbox with lower-case letters, digits and '-', such as be")
		case !mailboxName.MatchString(m.Name) || len(m.Name) > 64:
			p.add(key+".name", "%q is not allowed: use lower-case letters a-z, digits and '-' (at most 64), such as be or ti-2", m.Name)
		default:
			if j, dup := seen[m.Name]; dup {
				p.add(key+".name", "%q is already the name of mailboxes[%d]: each mailbox needs a name of its own", m.Name, j)
			}
			seen[m.Name] = i
		}
		for j, a := range m.Superusers {
			if !isPlainAddress(a) {
				p.add(fmt.Sprintf("%s.superusers[%d]", key, j), "%+q is not an e-mail address: write it as name@example.ch, in ASCII, without a display name", a)
			}
		}
		for j, id := range m.AuthservID {
			if id == "" || strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == ';' }) {
				p.add(fmt.Sprintf("%s.authserv_id[%d]", key, j), "%+q is not an authserv-id: give the host name your boundary mail server writes first in its Authentication-Results header, such as mx.be.ch", id)
			}
		}
		switch m.Authentication {
		case "on", AuthenticationOff:
		default:
			p.add(key+".authentication", "%q is not allowed: use on (the default) or off", m.Authentication)
		}
		if m.Authentication == "on" && len(m.AuthservID) == 0 && !m.Microsoft365 && !m.VerifyDKIM {
			p.add(key+".authserv_id", "is empty: name the authserv-id of mailbox %s's boundary mail server (the first word of its Authentication-Results header), "+
				"or set microsoft365: true when it is Microsoft 365, or verify_dkim: true; without one no notice can be authenticated "+
				"(authentication: off switches the check off, for tests only)", m.Name)
		}
		validateIMAP(&p, key, &m)
	}
	return p.err()
}

// mailboxWarnings says in words nobody can miss which mailboxes act on
// unauthenticated mail.
func mailboxWarnings(ms []Mailbox) []string {
	var w []string
	for _, m := range ms {
		if m.AuthenticationIsOff() {
			w = append(w, fmt.Sprintf("SENDER AUTHENTICATION IS OFF for mailbox %s (authentication: off): any mail whose From names an eIAM sender is acted on, "+
				"so a forged notice causes deactivations and escalations; use this for tests only", m.Name))
		}
	}
	return w
}

// isPlainAddress reports whether s is local@domain in printable ASCII,
// with one '@' and a dot in the domain.
func isPlainAddress(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at != strings.LastIndexByte(s, '@') || !strings.Contains(s[at+1:], ".") || strings.HasSuffix(s, ".") {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune("<>,;:\"()[]\\", r) })
}

// Mailbox returns the mailbox named name. With name empty it returns the
// only mailbox when there is exactly one; otherwise the error lists the
// names to choose from.
func (c *Config) Mailbox(name string) (*Mailbox, error) {
	names := make([]string, len(c.Mailboxes))
	for i := range c.Mailboxes {
		if c.Mailboxes[i].Name == name || (name == "" && len(c.Mailboxes) == 1) {
			return &c.Mailboxes[i], nil
		}
		names[i] = c.Mailboxes[i].Name
	}
	if name == "" {
		return nil, fmt.Errorf("config: %d mailboxes are configured: say which with --mailbox (%s)", len(c.Mailboxes), strings.Join(names, ", "))
	}
	return nil, fmt.Errorf("config: no mailbox %q: the configured mailboxes are %s", name, strings.Join(names, ", "))
}

// Strings is a list of strings that may be written as one string.
type Strings []string

// UnmarshalYAML takes a scalar as a list of one.
func (s *Strings) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = Strings{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}
