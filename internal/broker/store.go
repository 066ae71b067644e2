package broker

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
)

// A full disk under the embedded server's store, as probed with
// nats-server 2.15 on a full tmpfs: JetStream stays enabled and keeps
// answering account info, but a message it cannot write gets no answer at
// all (the publisher sees a timeout), and the write error sticks to the
// stream's block: after space is freed its writes keep failing until
// JetStream restarts. So the broker watches the store itself: it reports a
// full store (StoreHealth, for /readyz) and, once there is space again,
// restarts JetStream in the server (WatchStore), which reopens the streams
// from disk; nothing acknowledged is lost.

// ErrStoreFull is returned by StoreHealth and CheckStoreSpace for a store
// whose file system is full.
var ErrStoreFull = errors.New("the JetStream store is full")

// MinStoreFree is the free space under which a store counts as full.
const MinStoreFree = 1 << 20

// DefaultStoreCheckInterval is how often WatchStore looks at the store.
const DefaultStoreCheckInterval = 2 * time.Second

// CheckStoreSpace reports ErrStoreFull when the file system of dir (or
// of its nearest existing parent) has less than MinStoreFree free for an
// unprivileged writer. It is what a command on the daemon's host can check
// itself: a full embedded store answers publishes with nothing but
// timeouts.
func CheckStoreSpace(dir string) error {
	free, err := freeBytes(dir)
	if err != nil {
		return nil // unknown: let the write say
	}
	if free < MinStoreFree {
		return fmt.Errorf("broker: %w: %s has %s free on its file system (less than %s); "+
			"free space there: the daemon takes mail in again by itself", ErrStoreFull, dir, bytesText(free), bytesText(MinStoreFree))
	}
	return nil
}

func freeBytes(dir string) (uint64, error) {
	for {
		var st syscall.Statfs_t
		err := syscall.Statfs(dir, &st)
		if err == nil {
			return st.Bavail * uint64(st.Bsize), nil
		}
		parent := filepath.Dir(dir)
		if !errors.Is(err, syscall.ENOENT) || parent == dir {
			return 0, err
		}
		dir = parent
	}
}

func bytesText(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// storeState is what the broker knows of its embedded store.
type storeState struct {
	dir      string // the JetStream store directory
	jsConfig server.JetStreamConfig
	interval time.Duration
	// writeFailed is set when the server logged a write that failed for
	// lack of space (the stream's writes then fail until a restart).
	writeFailed atomic.Bool
}

// noteServerError records what a server error line says of the store.
func (st *storeState) noteServerError(msg string) {
	if st != nil && (strings.Contains(msg, "no space left") || strings.Contains(msg, "out of resources") ||
		strings.Contains(msg, "resource limits exceeded")) {
		st.writeFailed.Store(true)
	}
}

// StoreHealth reports whether the embedded server's store can take
// writes: ErrStoreFull when its file system is full or a write failed for
// lack of space and JetStream has not been restarted since, another error
// when JetStream is off. Nil for a broker connected to a URL (the external
// server answers for its own store).
func (b *Broker) StoreHealth() error {
	st := b.store
	if st == nil {
		return nil
	}
	if err := CheckStoreSpace(st.dir); err != nil {
		return err
	}
	if st.writeFailed.Load() {
		return fmt.Errorf("broker: %w: a write to %s failed for lack of space; JetStream restarts by itself once there is space", ErrStoreFull, st.dir)
	}
	if !b.srv.JetStreamEnabled() {
		return fmt.Errorf("broker: JetStream of the embedded server is disabled (store %s); it restarts by itself once the store can be written", st.dir)
	}
	return nil
}

// WatchStore watches the embedded server's store until ctx ends and
// restarts JetStream when a write failed for lack of space (or JetStream
// turned itself off) and there is space again. It returns nil when ctx
// ends; for a broker connected to a URL it only waits.
func (b *Broker) WatchStore(ctx context.Context) error {
	st := b.store
	if st == nil {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(st.interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if !st.writeFailed.Load() && b.srv.JetStreamEnabled() {
			continue
		}
		free, err := freeBytes(st.dir)
		if err != nil || free < 2*MinStoreFree {
			continue // still full: StoreHealth says so
		}
		if err := b.restartJetStream(); err != nil {
			if err.Error() != lastErr {
				b.log.Error("restart JetStream after the store had space again", zap.Error(err))
				lastErr = err.Error()
			}
			continue
		}
		lastErr = ""
	}
}

// restartJetStream shuts JetStream down and starts it again on the same
// store, which clears the write errors the full disk left.
func (b *Broker) restartJetStream() error {
	st := b.store
	b.log.Warn("the JetStream store has space again; restarting JetStream", zap.String("store", st.dir))
	st.writeFailed.Store(false) // a failure from now on is a new one
	if b.srv.JetStreamEnabled() {
		if err := b.srv.ShutdownJetStream(); err != nil {
			return fmt.Errorf("broker: shut JetStream down: %w", err)
		}
	}
	cfg := st.jsConfig
	if err := b.srv.EnableJetStream(&cfg); err != nil {
		return fmt.Errorf("broker: start JetStream again on %s: %w", st.dir, err)
	}
	b.log.Info("JetStream restarted", zap.String("store", st.dir))
	return nil
}
