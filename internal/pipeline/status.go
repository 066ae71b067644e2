package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Status reports whether a Run is consuming. Give Run a *Status through
// ConsumerConfig.Status and ask it from a readiness probe (see Ready). The
// zero value is ready to use and reads "not running"; a nil *Status reads
// the same.
type Status struct {
	mu      sync.Mutex
	stage   string
	running bool
	err     error
	since   time.Time
	workers int
	stuck   *atomic.Int64
}

// errNotStarted is the reason of a Status no Run has touched yet.
var errNotStarted = errors.New("not started")

// Running reports whether the consumer is consuming right now.
func (s *Status) Running() bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

// Err returns why the consumer is not running (nil while it runs).
func (s *Status) Err() error {
	if s == nil {
		return errNotStarted
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return nil
	}
	if s.err == nil {
		return errNotStarted
	}
	return s.err
}

// Stage returns the stage name Run gave the status ("" before Run).
func (s *Status) Stage() string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stage
}

// Since returns when the status last changed.
func (s *Status) Since() time.Time {
	if s == nil {
		return time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.since
}

// Stuck returns how many of the consumer's workers are held by handlers
// that ignored their deadline and were abandoned, and how many workers it
// has.
func (s *Status) Stuck() (stuck, workers int) {
	if s == nil {
		return 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stuck != nil {
		stuck = int(s.stuck.Load())
	}
	return stuck, s.workers
}

func (s *Status) setWorkers(n int, stuck *atomic.Int64) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.workers, s.stuck = n, stuck
}

func (s *Status) set(stage string, running bool, err error, now time.Time) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stage, s.running, s.err, s.since = stage, running, err, now
}

// Ready reports whether JetStream answers (an account info round trip
// within ctx) and every given consumer is running. The error names what is
// not ready; nil means ready. It is meant for a /readyz handler.
func Ready(ctx context.Context, js jetstream.JetStream, consumers ...*Status) error {
	if _, err := js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("pipeline: not ready: NATS JetStream does not answer: %w", err)
	}
	var errs []error
	for i, s := range consumers {
		name := s.Stage()
		if name == "" {
			name = fmt.Sprintf("#%d", i)
		}
		if !s.Running() {
			errs = append(errs, fmt.Errorf("pipeline: not ready: consumer of stage %s is not running: %w", name, s.Err()))
			continue
		}
		if stuck, workers := s.Stuck(); workers > 0 && stuck >= workers {
			errs = append(errs, fmt.Errorf("pipeline: not ready: every worker (%d) of stage %s is held by a handler that ignored its deadline "+
				"(their messages are dead-lettered); restart the service to free them", workers, name))
		}
	}
	return errors.Join(errs...)
}
