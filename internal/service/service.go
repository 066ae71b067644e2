// Package service runs the parts of `eiamtriage serve` (the pipeline's
// stages and the mailbox watchers) side by side, each with its own
// readiness, behind one operations HTTP listener: /healthz, /readyz and
// /metrics. It knows nothing of what the parts do; the command wires them.
package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// Part is one long-running part of the service.
type Part struct {
	// Name names the part in /readyz and the log ("classify",
	// "mailbox be").
	Name string
	// Run runs the part until ctx ends and returns nil then. An error
	// stops the whole service (the other parts' ctx ends too): a part
	// that can recover from a failure retries by itself and reports
	// through Ready instead.
	Run func(ctx context.Context) error
	// Ready reports whether the part works right now (nil: yes); the
	// error says why not, in words an operator acts on. A nil Ready is
	// ready while Run runs.
	Ready func(ctx context.Context) error
}

// Service runs parts. Build it with New, add parts with Add, then Run it
// once.
type Service struct {
	log   *zap.Logger
	reg   *prometheus.Registry
	ln    net.Listener
	parts []Part

	mu      sync.Mutex
	running map[string]bool
}

// New returns a service whose operations listener serves on ln (nil: no
// HTTP listener) the metrics of reg. The service closes ln.
func New(log *zap.Logger, reg *prometheus.Registry, ln net.Listener) *Service {
	if log == nil {
		log = zap.NewNop()
	}
	return &Service{log: log, reg: reg, ln: ln, running: map[string]bool{}}
}

// Add adds a part; call it before Run.
func (s *Service) Add(p Part) { s.parts = append(s.parts, p) }

// Run runs every part and the HTTP listener until ctx ends or a part
// fails, then ends the others and waits for them. It returns the first
// part's failure, or nil when ctx ended.
func (s *Service) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range s.parts {
		g.Go(func() error {
			s.setRunning(p.Name, true)
			defer s.setRunning(p.Name, false)
			if err := p.Run(gctx); err != nil {
				return fmt.Errorf("service: %s: %w", p.Name, err)
			}
			return nil
		})
	}
	var srv *http.Server
	if s.ln != nil {
		srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
		g.Go(func() error {
			if err := srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("service: HTTP on %s: %w", s.ln.Addr(), err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
			return nil
		})
	}
	return g.Wait()
}

func (s *Service) setRunning(name string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running[name] = on
}

// Ready reports every part that is not ready, one line each ("mailbox be:
// ..."), or nil when all are.
func (s *Service) Ready(ctx context.Context) error {
	var bad []string
	for _, p := range s.parts {
		s.mu.Lock()
		on := s.running[p.Name]
		s.mu.Unlock()
		switch {
		case !on:
			bad = append(bad, p.Name+": not running")
		case p.Ready != nil:
			if err := p.Ready(ctx); err != nil {
				bad = append(bad, p.Name+": "+err.Error())
			}
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return errors.New(strings.Join(bad, "\n"))
}

// Handler serves /healthz (the process answers), /readyz (every part
// ready, else 503 naming those that are not) and /metrics.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := s.Ready(ctx); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if s.reg != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	}
	return mux
}
