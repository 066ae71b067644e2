package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/classify"
	"github.com/eiamtriage/eiamtriage/classify/stage"
	"github.com/eiamtriage/eiamtriage/internal/broker"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
	"github.com/eiamtriage/eiamtriage/internal/service"
)

// connect opens the NATS the configuration names (the embedded server
// under data_dir/nats when nats.url is empty) and makes sure the streams
// and buckets exist. The caller closes the broker.
func connect(ctx context.Context, cfg *config.Config, name string, log *zap.Logger) (*broker.Broker, error) {
	b, err := broker.Open(ctx, broker.FromConfig(cfg, name), log.Named("nats"))
	if err != nil {
		return nil, err
	}
	if err := pipeline.EnsureStreams(ctx, b.JS, pipeline.StreamConfig{Replicas: cfg.NATS.Replicas}); err != nil {
		b.Close()
		return nil, err
	}
	if err := pipeline.EnsureOutbox(ctx, b.JS, pipeline.StreamConfig{Replicas: cfg.NATS.Replicas}); err != nil {
		b.Close()
		return nil, err
	}
	if err := pipeline.EnsureActions(ctx, b.JS, pipeline.StreamConfig{Replicas: cfg.NATS.Replicas}); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// daemon is `serve` assembled: the broker, and the service with its parts
// (the stages, the outbox, the actions; the mailbox watchers come with
// their issue) behind the operations listener.
type daemon struct {
	broker   *broker.Broker
	svc      *service.Service
	http     net.Listener
	httpFile string // where the HTTP address is recorded, removed at close
	// closeMailboxes closes the mailbox watchers' NATS connection.
	closeMailboxes func()
}

// httpAddrFile, in data_dir, holds the address the operations listener is
// bound to while serve runs (with http.listen port 0, the one it picked).
const httpAddrFile = "http-addr"

// listenHTTP binds http.listen. Only an address in use gets advice about
// the address.
func listenHTTP(cfg *config.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err == nil {
		return ln, nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		_, port, _ := net.SplitHostPort(cfg.HTTP.Listen)
		return nil, fmt.Errorf("listen for HTTP on %s (http.listen): another process listens there (see: ss -ltnp 'sport = :%s'); "+
			"stop it, or set http.listen to another address (port 0 picks a free one, recorded in %s)",
			cfg.HTTP.Listen, port, filepath.Join(cfg.DataDir, httpAddrFile))
	}
	return nil, fmt.Errorf("listen for HTTP on %s (http.listen): %w", cfg.HTTP.Listen, err)
}

// newDaemon connects and builds the parts; run starts them. The HTTP
// listener is bound here, so an address in use is reported before
// anything runs.
func newDaemon(ctx context.Context, cfg *config.Config, log *zap.Logger) (*daemon, error) {
	b, err := connect(ctx, cfg, "eiamtriage-serve", log)
	if err != nil {
		return nil, err
	}
	d := &daemon{broker: b}
	ok := false
	defer func() {
		if !ok {
			d.close()
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.HTTP.Enabled() {
		if d.http, err = listenHTTP(cfg); err != nil {
			return nil, err
		}
		d.httpFile = filepath.Join(cfg.DataDir, httpAddrFile)
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("create data_dir %s: %w", cfg.DataDir, err)
		}
		if err := os.WriteFile(d.httpFile, []byte(d.http.Addr().String()+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("record the HTTP address in %s: %w", d.httpFile, err)
		}
	}
	d.svc = service.New(log, reg, d.http)
	pm := pipeline.NewMetrics(reg)
	if cfg.NATS.Embedded() {
		// The store under data_dir: not ready while it is full, and
		// JetStream restarted once it has space again.
		d.svc.Add(service.Part{
			Name: "store",
			Run:  b.WatchStore,
			Ready: func(context.Context) error {
				if err := b.StoreHealth(); err != nil {
					return fmt.Errorf("data_dir %s: %w", cfg.DataDir, err)
				}
				return nil
			},
		})
	}

	st, err := stage.New(ctx, b.JS, stage.Options{
		Classifier: classify.New(classifyOptions(cfg)),
		Log:        log.Named(stage.Name),
		Metrics:    stage.NewMetrics(reg),
	})
	if err != nil {
		return nil, err
	}
	cc := stage.Consumer()
	cc.MaxDeliver = cfg.Pipeline.MaxDeliver
	cc.Backoff = cfg.Pipeline.Delays()
	cc.AckWait = time.Duration(cfg.Pipeline.AckWait)
	cc.Workers = cfg.Pipeline.Workers
	cc.Status = &pipeline.Status{}
	// In a backlog the cases come first: the actions stage in this
	// process waits (at most pipeline.DefaultYieldFor at a time) while
	// the classify stage has mail in hand.
	cc.First = &pipeline.Precedence{}
	d.svc.Add(service.Part{
		Name: stage.Name,
		Run: func(ctx context.Context) error {
			return pipeline.Run(ctx, b.JS, cc, wrapStageHandler(st.Handle, log), log.Named("pipeline"), pm)
		},
		Ready: func(ctx context.Context) error { return pipeline.Ready(ctx, b.JS, cc.Status) },
	})

	// The outbox: every mail the service sends, recorded, then delivered
	// by its own part with its own retry policy (smtp:). The actions
	// stage enqueues into ob; dry_run comes from the actions' section.
	obOpts, err := outbox.OptionsFrom(&cfg.SMTP)
	if err != nil {
		return nil, err
	}
	obOpts.Log = log.Named(outbox.Name)
	obOpts.DryRun = cfg.Actions.DryRun
	ob, err := outbox.Open(ctx, b.JS, obOpts)
	if err != nil {
		return nil, err
	}
	d.svc.Add(service.Part{
		Name:  outbox.Name,
		Run:   func(ctx context.Context) error { return ob.Run(ctx, pm) },
		Ready: ob.Ready,
	})
	// The actions: what each case causes, the tasks, the summaries.
	if err := d.addActions(ctx, cfg, ob, cc.First, reg, pm, log); err != nil {
		return nil, err
	}
	if d.closeMailboxes, err = addMailboxes(ctx, d.svc, cfg, reg, log); err != nil {
		return nil, err
	}
	ok = true
	return d, nil
}

// wrapStageHandler wraps the classify stage's handler; the identity but in
// a binary built with the end-to-end tests' hooks (testhooks.go).
var wrapStageHandler = func(h pipeline.Handler, _ *zap.Logger) pipeline.Handler { return h }

// httpAddr is the address the operations listener is bound to, or "".
func (d *daemon) httpAddr() string {
	if d.http == nil {
		return ""
	}
	return d.http.Addr().String()
}

// run runs the parts until ctx ends or one fails, then closes NATS.
func (d *daemon) run(ctx context.Context) error {
	defer d.close()
	return d.svc.Run(ctx)
}

func (d *daemon) close() {
	if d.closeMailboxes != nil {
		d.closeMailboxes()
	}
	if d.http != nil {
		d.http.Close()
	}
	if d.httpFile != "" {
		os.Remove(d.httpFile)
	}
	d.broker.Close()
}
