package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/eiamtriage/eiamtriage/ingest"
	"github.com/eiamtriage/eiamtriage/ingest/mailbox"
	"github.com/eiamtriage/eiamtriage/internal/broker"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/service"
)

// addMailboxes adds a part "mailbox <name>" for each mailbox with an
// address: its watcher, which takes the folder's mail in through an
// intake (as `publish` does), and whose readiness fails naming the
// mailbox when its server is unreachable longer than unreachable_after.
// A mailbox without an address gets none: its mail comes through publish.
// The watchers publish on a NATS connection of their own (a connection is
// one ordered byte stream: beside the stages' it halves the intake's
// throughput); the caller closes it with the returned function.
func addMailboxes(ctx context.Context, svc *service.Service, cfg *config.Config, reg prometheus.Registerer, log *zap.Logger) (closeFn func(), err error) {
	var watched []*config.Mailbox
	for i := range cfg.Mailboxes {
		if cfg.Mailboxes[i].Watched() {
			watched = append(watched, &cfg.Mailboxes[i])
		}
	}
	if len(watched) == 0 {
		return func() {}, nil
	}
	reader, err := ingest.ReaderFor(cfg)
	if err != nil {
		return nil, err
	}
	b, err := broker.Open(ctx, broker.ClientFromConfig(cfg, "eiamtriage-mailbox"), log.Named("nats"))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	intake, err := ingest.NewIntake(ctx, b.JS, reader, int64(cfg.Pipeline.MaxMailSize), nil)
	if err != nil {
		return nil, err
	}
	metrics := mailbox.NewMetrics(reg)
	holder := mailbox.ThisProcess(cfg.DataDir, time.Now())
	for _, m := range watched {
		o := mailbox.OptionsFor(cfg, m, intake, b.JS)
		o.Holder, o.Metrics, o.Log = holder, metrics, log.Named("mailbox")
		w, err := mailbox.New(o)
		if err != nil {
			return nil, err
		}
		svc.Add(service.Part{Name: "mailbox " + m.Name, Run: w.Run, Ready: w.Ready})
	}
	return b.Close, nil
}
