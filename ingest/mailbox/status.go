package mailbox

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// State is what a watcher is doing.
type State string

// The states of a watcher.
const (
	StateStarting   State = "starting"
	StateStandby    State = "standby"    // another daemon holds the mailbox
	StateConnecting State = "connecting" // dialling, logging in, selecting
	StateSyncing    State = "syncing"    // taking in mail
	StateIdle       State = "idle"       // waiting for new mail (IDLE or poll)
	StateBackoff    State = "backoff"    // waiting to reconnect after a failure
	StateStopped    State = "stopped"
)

// Snapshot is a watcher's status at one moment.
type Snapshot struct {
	Mailbox string
	State   State
	// Holder is the daemon that holds the mailbox when State is standby.
	Holder Holder
	// LeaseHeld is true while this daemon watches the mailbox.
	LeaseHeld bool
	// Connected is true from a successful SELECT until the connection
	// fails.
	Connected bool
	// Idle is true when the server has IDLE (else the folder is polled);
	// Idling while an IDLE command runs.
	Idle, Idling bool
	// Started is when Run began; LastAlive when the server last answered
	// (greeting, a command, IDLE); LastFetch when a round of taking in
	// last completed; LastIdleWake when IDLE last reported new mail.
	Started, LastAlive, LastFetch, LastIdleWake time.Time
	// Watching is when this daemon took the mailbox (its lease).
	Watching time.Time
	// Backlog is how many messages above the checkpoint the folder held
	// at the last search.
	Backlog int
	// Checkpoint is the folder's checkpoint as last written or read.
	Checkpoint Checkpoint
	// TokenExpiry is when the OAuth token expires, zero when unknown.
	TokenExpiry time.Time
	// LastErr is the last failure, nil after a successful round.
	LastErr error
	// Counters since the start.
	LoginFailures, Reconnects                 int
	Submitted, Duplicates, DeadLetters, Retry int
}

// status is the watcher's shared state, read by Ready and the metrics.
type status struct {
	mu sync.Mutex
	s  Snapshot
}

func (st *status) update(f func(s *Snapshot)) {
	st.mu.Lock()
	defer st.mu.Unlock()
	f(&st.s)
}

func (st *status) snapshot() Snapshot {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.s
}

// ready reports whether the mailbox is being watched: nil while this
// daemon watches it and the server answered within unreachable, or while
// another daemon holds it (standby); else why not (the service names the
// part, "mailbox <name>", before it).
func (s Snapshot) ready(now time.Time, address string, unreachable time.Duration) error {
	switch s.State {
	case StateStandby:
		return nil
	case StateStopped:
		return errors.New("not watched: the watcher stopped")
	}
	since := s.LastAlive
	if since.Before(s.Watching) {
		since = s.Watching // a grace period after taking the mailbox
	}
	if since.IsZero() {
		since = s.Started
	}
	if silent := now.Sub(since); silent > unreachable {
		why := "never answered"
		if !s.LastAlive.IsZero() && !s.LastAlive.Before(s.Watching) {
			why = "has not answered since " + s.LastAlive.UTC().Format(time.RFC3339)
		}
		msg := fmt.Sprintf("the IMAP server %s %s (%s, longer than unreachable_after %s); state %s", address, why,
			silent.Round(time.Second), unreachable, s.State)
		if s.LastErr != nil {
			return fmt.Errorf("%s; last error: %w", msg, s.LastErr)
		}
		return fmt.Errorf("%s", msg)
	}
	return nil
}

// Metrics exports every watcher's status to Prometheus, labelled by
// mailbox; it reads the statuses when scraped. Create one per registry
// with NewMetrics and hand it to each watcher (Options.Metrics).
type Metrics struct {
	mu       sync.Mutex
	watchers []*Watcher
	clock    Clock
}

// NewMetrics returns the metrics, registered with reg when not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{clock: SystemClock{}}
	if reg != nil {
		reg.MustRegister(m)
	}
	return m
}

func (m *Metrics) add(w *Watcher) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.watchers = append(m.watchers, w)
}

var (
	descConnected = prometheus.NewDesc("eiamtriage_mailbox_connected",
		"1 while the mailbox's IMAP connection is up (logged in, folder selected), else 0.", []string{"mailbox"}, nil)
	descLease = prometheus.NewDesc("eiamtriage_mailbox_lease_held",
		"1 while this daemon watches the mailbox, 0 while another does (standby) or none.", []string{"mailbox"}, nil)
	descLastAlive = prometheus.NewDesc("eiamtriage_mailbox_last_alive_timestamp_seconds",
		"When the IMAP server last answered (Unix time; 0: never).", []string{"mailbox"}, nil)
	descLastFetch = prometheus.NewDesc("eiamtriage_mailbox_last_fetch_timestamp_seconds",
		"When a round of taking in mail last completed (Unix time; 0: never).", []string{"mailbox"}, nil)
	descLastWake = prometheus.NewDesc("eiamtriage_mailbox_last_idle_wakeup_timestamp_seconds",
		"When IDLE last announced new mail (Unix time; 0: never).", []string{"mailbox"}, nil)
	descBacklog = prometheus.NewDesc("eiamtriage_mailbox_backlog",
		"Messages in the folder above the checkpoint at the last search.", []string{"mailbox"}, nil)
	descLoginFailures = prometheus.NewDesc("eiamtriage_mailbox_login_failures_total",
		"Logins the IMAP server refused.", []string{"mailbox"}, nil)
	descReconnects = prometheus.NewDesc("eiamtriage_mailbox_reconnects_total",
		"Connections that failed or were closed and are made again.", []string{"mailbox"}, nil)
	descMails = prometheus.NewDesc("eiamtriage_mailbox_mails_total",
		"Mails of the mailbox by outcome: submitted (announced), duplicate (announced before), dead (dead-lettered), retry (to be fetched or submitted again).", []string{"mailbox", "outcome"}, nil)
	descTokenExpiry = prometheus.NewDesc("eiamtriage_mailbox_oauth_token_expiry_seconds",
		"Seconds until the mailbox's OAuth token expires (negative: expired); absent when unknown.", []string{"mailbox"}, nil)
)

// Describe sends the metrics' descriptions.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnected, descLease, descLastAlive, descLastFetch, descLastWake, descBacklog, descLoginFailures, descReconnects, descMails, descTokenExpiry} {
		ch <- d
	}
}

// Collect sends each watcher's current values.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	ws := append([]*Watcher(nil), m.watchers...)
	m.mu.Unlock()
	now := m.clock.Now()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	unix := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixNano()) / 1e9
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	for _, w := range ws {
		s := w.Status()
		name := s.Mailbox
		gauge(descConnected, b2f(s.Connected), name)
		gauge(descLease, b2f(s.LeaseHeld), name)
		gauge(descLastAlive, unix(s.LastAlive), name)
		gauge(descLastFetch, unix(s.LastFetch), name)
		gauge(descLastWake, unix(s.LastIdleWake), name)
		gauge(descBacklog, float64(s.Backlog), name)
		counter(descLoginFailures, s.LoginFailures, name)
		counter(descReconnects, s.Reconnects, name)
		counter(descMails, s.Submitted, name, "submitted")
		counter(descMails, s.Duplicates, name, "duplicate")
		counter(descMails, s.DeadLetters, name, "dead")
		counter(descMails, s.Retry, name, "retry")
		if !s.TokenExpiry.IsZero() {
			gauge(descTokenExpiry, s.TokenExpiry.Sub(now).Seconds(), name)
		}
	}
}
