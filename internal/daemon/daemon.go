// Package daemon assembles `eiamtriage serve`: the NATS connection
// (embedded server or external cluster), the streams, the pipeline stages
// and the operations HTTP listener, and runs them until the context ends.
// Several daemons on the same NATS share each stage's work through its
// durable consumer.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/eiamtriage/eiamtriage/classify"
	"github.com/eiamtriage/eiamtriage/ingest/notice"
	"github.com/eiamtriage/eiamtriage/internal/broker"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
	"github.com/eiamtriage/eiamtriage/internal/triage"
)

// Connect opens the NATS the configuration names (the embedded server
// under DataDir/nats when nats.url is empty) and makes sure the streams
// and buckets exist. The caller closes the broker.
func Connect(ctx context.Context, cfg *config.Config, name string, log *zap.Logger) (*broker.Broker, error) {
	b, err := broker.Open(ctx, BrokerOptions(cfg, name), log.Named("nats"))
	if err != nil {
		return nil, err
	}
	if err := pipeline.EnsureStreams(ctx, b.JS, pipeline.StreamConfig{Replicas: cfg.NATS.Replicas}); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// BrokerOptions maps the configuration to broker options.
func BrokerOptions(cfg *config.Config, name string) broker.Options {
	o := broker.Options{
		URL:       cfg.NATS.URL,
		Listen:    cfg.NATS.Listen,
		User:      cfg.NATS.User,
		Password:  cfg.NATS.Password,
		Token:     cfg.NATS.Token,
		CredsFile: cfg.NATS.CredsFile,
		MaxMemory: int64(cfg.NATS.MaxMemory),
		MaxStore:  int64(cfg.NATS.MaxStore),
		Name:      name,
	}
	if o.URL == "" {
		o.StoreDir = filepath.Join(cfg.DataDir, "nats")
	}
	return o
}

// ClientOptions maps the configuration to the options of a command that
// talks to the daemon's NATS without running a server: the external URL,
// or the embedded server's loopback address.
func ClientOptions(cfg *config.Config, name string) broker.Options {
	o := BrokerOptions(cfg, name)
	if o.URL == "" {
		o.URL = "nats://" + cfg.NATS.Listen
		o.StoreDir = ""
	}
	return o
}

// Daemon is a running `serve`.
type Daemon struct {
	cfg     *config.Config
	log     *zap.Logger
	broker  *broker.Broker
	reg     *prometheus.Registry
	status  *pipeline.Status
	httpLn  net.Listener
	httpSrv *http.Server
}

// New connects and prepares the daemon; Run starts it. The HTTP listener
// is bound here, so an address in use is reported before anything runs.
func New(ctx context.Context, cfg *config.Config, log *zap.Logger) (*Daemon, error) {
	b, err := Connect(ctx, cfg, "eiamtriage-serve", log)
	if err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: log, broker: b, reg: prometheus.NewRegistry(), status: &pipeline.Status{}}
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.HTTP.Enabled() {
		ln, err := net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("daemon: listen for HTTP on %s (http.listen): %w; stop the other process or choose another address", cfg.HTTP.Listen, err)
		}
		d.httpLn = ln
	}
	return d, nil
}

// HTTPAddr is the address the operations listener is bound to, or "".
func (d *Daemon) HTTPAddr() string {
	if d.httpLn == nil {
		return ""
	}
	return d.httpLn.Addr().String()
}

// Run runs the stages and the HTTP listener until ctx ends, then shuts down
// in order: stop taking work, let in-flight messages finish (or leave them
// unacknowledged for redelivery), close the HTTP listener, close NATS.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.broker.Close()
	if d.httpLn != nil {
		defer d.httpLn.Close() // when Run fails before serving; harmless after
	}
	// A part that fails for good stops the others through this context.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cfg := d.cfg
	parser, err := notice.NewParser(cfg.Wording, nil)
	if err != nil {
		return err
	}
	pm := pipeline.NewMetrics(d.reg)
	stage, err := triage.New(ctx, d.broker.JS, triage.Options{
		Parser:     parser,
		Classifier: classify.New(cfg.ClassifyOptions()),
		Superusers: cfg.Superusers,
		Log:        d.log.Named(triage.StageName),
		Metrics:    triage.NewMetrics(d.reg),
	})
	if err != nil {
		return err
	}
	cc := triage.Consumer()
	cc.MaxDeliver = cfg.Pipeline.MaxDeliver
	cc.Backoff = cfg.Pipeline.Delays()
	cc.AckWait = time.Duration(cfg.Pipeline.AckWait)
	cc.Workers = cfg.Pipeline.Workers
	cc.Status = d.status

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := pipeline.Run(ctx, d.broker.JS, cc, stage.Handle, d.log.Named("pipeline"), pm); err != nil {
			errs <- fmt.Errorf("daemon: classify stage: %w", err)
		}
	}()
	if d.httpLn != nil {
		d.httpSrv = &http.Server{Handler: d.handler(), ReadHeaderTimeout: 5 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.httpSrv.Serve(d.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("daemon: HTTP on %s: %w", d.httpLn.Addr(), err)
			}
		}()
	}
	d.log.Info("serving", zap.String("nats", d.broker.Conn.ConnectedUrlRedacted()), zap.String("http", d.HTTPAddr()), zap.Bool("embedded", cfg.NATS.URL == ""))

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	d.log.Info("shutting down")
	if d.httpSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = d.httpSrv.Shutdown(sctx)
		cancel()
	}
	if runErr != nil {
		d.log.Error("stopping after a failure", zap.Error(runErr))
	}
	cancel()
	wg.Wait()
	return runErr
}

func (d *Daemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := pipeline.Ready(ctx, d.broker.JS, d.status); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{Registry: d.reg}))
	return mux
}
