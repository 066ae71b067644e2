//go:build testhooks

package main

// Hooks for the end-to-end tests, compiled only with -tags testhooks (the
// tests' TestMain builds the binary so; a release build has none of this).
// Each is inert unless its environment variable is set:
//
//	EIAMTRIAGE_TESTHOOK_LOG=FILE    append "<stream seq> <delivery> <source>" to FILE
//	                                each time the classify handler is entered
//	EIAMTRIAGE_TESTHOOK_BLOCK=TEXT  the handler of a mail whose source contains TEXT
//	                                blocks forever and ignores its ctx: a mail whose
//	                                reading never ends
//	EIAMTRIAGE_TESTHOOK_DELAY=DUR   every handler waits DUR first (honouring its ctx):
//	                                a slow stage, so that a test can stop it mid-batch

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

func init() {
	logPath := os.Getenv("EIAMTRIAGE_TESTHOOK_LOG")
	block := os.Getenv("EIAMTRIAGE_TESTHOOK_BLOCK")
	delay, _ := time.ParseDuration(os.Getenv("EIAMTRIAGE_TESTHOOK_DELAY"))
	if logPath == "" && block == "" && delay == 0 {
		return
	}
	var mu sync.Mutex
	wrapStageHandler = func(h pipeline.Handler, log *zap.Logger) pipeline.Handler {
		log.Warn("test hooks active", zap.String("log", logPath), zap.String("block", block), zap.Duration("delay", delay))
		return func(ctx context.Context, m pipeline.Msg) error {
			var mr event.MailReceived
			_, _ = event.ParseInto(m.Data, &mr)
			if logPath != "" {
				mu.Lock()
				f, err := os.OpenFile(logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
				if err == nil {
					fmt.Fprintf(f, "%d %d %s\n", m.Sequence, m.NumDelivered, strings.ReplaceAll(mr.Source, " ", "_"))
					f.Close()
				}
				mu.Unlock()
			}
			if block != "" && strings.Contains(mr.Source, block) {
				select {} // never returns, whatever ctx says
			}
			if delay > 0 {
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				}
			}
			return h(ctx, m)
		}
	}
}
