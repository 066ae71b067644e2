package config

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/cron"
)

// Escalation says where a wrong-person case is forwarded at once.
type Escalation struct {
	// To are the addresses of federal support (SpiGes).
	To []string `yaml:"to"`
}

// Summaries say when the superusers' triage summaries go out.
type Summaries struct {
	// Schedule is a five-field cron schedule (minute hour day-of-month
	// month day-of-week) in TimeZone.
	Schedule string `yaml:"schedule"`
	// TimeZone is an IANA time zone name, such as Europe/Zurich.
	TimeZone string `yaml:"time_zone"`
}

// Spec returns the parsed schedule and its time zone (Validate has
// checked both).
func (s *Summaries) Spec() (cron.Spec, *time.Location, error) {
	spec, err := cron.Parse(s.Schedule)
	if err != nil {
		return cron.Spec{}, nil, err
	}
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		return cron.Spec{}, nil, fmt.Errorf("config: summaries.time_zone %q: %w", s.TimeZone, err)
	}
	return spec, loc, nil
}

// Actions tunes what the cases cause.
type Actions struct {
	// DryRun records and renders every action and sends no mail.
	DryRun bool `yaml:"dry_run"`
	// Caps bound the actions per mailbox and hour; past a cap the rest is
	// held until `eiamtriage actions release`.
	Caps Caps `yaml:"caps"`
	// Templates is a directory whose files replace the built-in mail
	// templates of the same name ("" : the built-in ones only).
	Templates string `yaml:"templates"`
	// PortalURL is the address of the eIAM delegation portal, written
	// into every task ("" : the tasks name the portal without a link).
	PortalURL string `yaml:"portal_url"`
	// MaxDeliver and Backoff are the actions stage's own retry policy.
	MaxDeliver int        `yaml:"max_deliver"`
	Backoff    []Duration `yaml:"backoff"`
}

// Caps are the most actions of each kind per mailbox and clock hour.
type Caps struct {
	UserMail   int `yaml:"user_mail"`
	Escalation int `yaml:"escalation"`
	Deactivate int `yaml:"deactivate"`
}

// The values of a mailbox's user_mail.
const (
	UserMailSend  = "send"
	UserMailDraft = "draft"
)

// Languages are the languages of the service's mail.
var Languages = []string{"de", "fr", "it", "en"}

func defaultEscalation() Escalation { return Escalation{To: []string{"spiges@bfs.admin.ch"}} }

func defaultSummaries() Summaries {
	return Summaries{Schedule: "30 7 * * *", TimeZone: "Europe/Zurich"}
}

func defaultActions() Actions {
	return Actions{
		Caps:       Caps{UserMail: 10, Escalation: 5, Deactivate: 10},
		MaxDeliver: 10,
		Backoff: []Duration{
			Duration(time.Second), Duration(5 * time.Second), Duration(30 * time.Second),
			Duration(2 * time.Minute), Duration(10 * time.Minute),
		},
	}
}

// mailboxActionDefaults fills a mailbox's action keys left out.
func mailboxActionDefaults(m *Mailbox) {
	if m.UserMail == "" {
		m.UserMail = UserMailSend
	}
	if m.Language == "" {
		m.Language = "de"
	}
}

// Delays returns Backoff as time.Durations.
func (a *Actions) Delays() []time.Duration { return (&Pipeline{Backoff: a.Backoff}).Delays() }

// validateActions reports the problems of the escalation, summaries and
// actions sections and of each mailbox's action keys.
func validateActions(c *Config) error {
	var p problems
	if len(c.Escalation.To) == 0 {
		p.add("escalation.to", "is empty: give the address of federal support, such as spiges@bfs.admin.ch; a wrong person's access must reach them at once")
	}
	for i, a := range c.Escalation.To {
		if !isPlainAddress(a) {
			p.add(fmt.Sprintf("escalation.to[%d]", i), "%+q is not an e-mail address: write it as name@example.ch, in ASCII, without a display name", a)
		}
	}
	if _, err := cron.Parse(c.Summaries.Schedule); err != nil {
		p.add("summaries.schedule", "%s", strings.TrimPrefix(err.Error(), "cron: "))
	}
	if c.Summaries.TimeZone == "" {
		p.add("summaries.time_zone", "is empty: give an IANA time zone such as Europe/Zurich")
	} else if _, err := time.LoadLocation(c.Summaries.TimeZone); err != nil {
		p.add("summaries.time_zone", "%q is not a time zone: give an IANA name such as Europe/Zurich", c.Summaries.TimeZone)
	}
	a := &c.Actions
	for key, n := range map[string]int{"user_mail": a.Caps.UserMail, "escalation": a.Caps.Escalation, "deactivate": a.Caps.Deactivate} {
		if n < 1 {
			p.add("actions.caps."+key, "%d is not allowed: give the most actions of this kind per mailbox and hour, 1 or more", n)
		}
	}
	if a.Templates != "" {
		if st, err := os.Stat(a.Templates); err != nil || !st.IsDir() {
			p.add("actions.templates", "%q is not a directory: give the directory of your templates, or \"\" for the built-in ones", a.Templates)
		}
	}
	if a.PortalURL != "" && !strings.HasPrefix(a.PortalURL, "https://") {
		p.add("actions.portal_url", "%q: give the portal's https:// address, or \"\"", a.PortalURL)
	}
	if a.MaxDeliver < 1 {
		p.add("actions.max_deliver", "%d is not allowed: use 1 or more", a.MaxDeliver)
	}
	if len(a.Backoff) == 0 {
		p.add("actions.backoff", "is empty: list at least one delay, such as [1s, 5s, 30s, 2m, 10m]")
	}
	for i, d := range a.Backoff {
		if d <= 0 {
			p.add(fmt.Sprintf("actions.backoff[%d]", i), "%s is not allowed: a delay must be positive", d)
		}
	}
	for i, m := range c.Mailboxes {
		key := fmt.Sprintf("mailboxes[%d]", i)
		if m.UserMail != UserMailSend && m.UserMail != UserMailDraft {
			p.add(key+".user_mail", "%q is not allowed: use send (mail the user) or draft (a draft to the superusers instead)", m.UserMail)
		}
		if !slices.Contains(Languages, m.Language) {
			p.add(key+".language", "%q is not allowed: use de, fr, it or en", m.Language)
		}
	}
	return p.err()
}
