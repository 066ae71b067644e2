package broker_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap/zaptest"

	"github.com/eiamtriage/eiamtriage/internal/broker"
	"github.com/eiamtriage/eiamtriage/internal/config"
)

func openEmbedded(t *testing.T, opts broker.Options) (*broker.Broker, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := broker.Open(ctx, opts, zaptest.NewLogger(t))
	if err == nil {
		t.Cleanup(b.Close)
	}
	return b, err
}

// TestOneServerPerStore: a second embedded server on the same state
// directory is refused, naming the PID that holds it and how to find it,
// while the first goes on serving; once the first closes, the directory
// can be opened again.
func TestOneServerPerStore(t *testing.T) {
	dir := t.TempDir()
	opts := broker.Options{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats"), StateDir: dir}
	first, err := openEmbedded(t, opts)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := os.ReadFile(filepath.Join(dir, broker.LockFile))
	if err != nil || strings.TrimSpace(string(pid)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("lock file holds %q (%v), want this process's PID %d", pid, err, os.Getpid())
	}

	_, err = openEmbedded(t, opts)
	if !errors.Is(err, broker.ErrStoreInUse) {
		t.Fatalf("second Open on the same data directory: %v, want ErrStoreInUse", err)
	}
	for _, s := range []string{"PID " + strconv.Itoa(os.Getpid()), "ps -fp " + strconv.Itoa(os.Getpid()), dir, "data_dir"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	// The refused one touched nothing of the first.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := first.JS.AccountInfo(ctx); err != nil {
		t.Fatalf("the first server after the refusal: %v", err)
	}
	if u, err := os.ReadFile(filepath.Join(dir, broker.ClientURLFile)); err != nil || strings.TrimSpace(string(u)) != first.ClientURL() {
		t.Fatalf("client URL file %q (%v), want the first server's %s", u, err, first.ClientURL())
	}

	first.Close()
	if _, err := os.Stat(filepath.Join(dir, broker.ClientURLFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the client URL file outlived the server: %v", err)
	}
	again, err := openEmbedded(t, opts)
	if err != nil {
		t.Fatalf("Open after the first closed: %v", err)
	}
	again.Close()
}

// TestPortZeroPicksAFreePort: listen port 0 is a free port the server
// picks (not nats-server's default 4222, which the test holds when it can),
// recorded for the other commands: ClientFromConfig finds it and
// connects. Without a running server it says where it looked.
func TestPortZeroPicksAFreePort(t *testing.T) {
	if l, err := net.Listen("tcp", "127.0.0.1:4222"); err == nil {
		defer l.Close() // a server binding 4222 for port 0 now fails
	}
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.NATS.Listen = "127.0.0.1:0"
	b, err := openEmbedded(t, broker.FromConfig(&cfg, "serve"))
	if err != nil {
		t.Fatalf("Open with port 0: %v", err)
	}
	_, port, err := net.SplitHostPort(strings.TrimPrefix(b.ClientURL(), "nats://"))
	if err != nil || port == "0" || port == "4222" {
		t.Fatalf("embedded server on %s: want a picked port", b.ClientURL())
	}
	opts := broker.ClientFromConfig(&cfg, "client")
	if opts.URL != b.ClientURL() {
		t.Fatalf("ClientFromConfig URL %q, want the server's %q", opts.URL, b.ClientURL())
	}
	c, err := openEmbedded(t, opts)
	if err != nil {
		t.Fatalf("client by the recorded URL: %v", err)
	}
	if err := c.Conn.Publish("x", nil); err != nil || c.Conn.Status() != nats.CONNECTED {
		t.Fatalf("client: %v, status %v", err, c.Conn.Status())
	}
	c.Close()
	b.Close()

	_, err = openEmbedded(t, broker.ClientFromConfig(&cfg, "client"))
	if err == nil {
		t.Fatal("a client found a server after it stopped")
	}
	for _, s := range []string{"port 0", filepath.Join(dir, broker.ClientURLFile), "eiamtriage serve"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
}

// TestStartFailureAdvice: an address in use is reported with the address
// and the advice (port 0, where the other commands then look, never the
// -1 the configuration refuses); a failure that has nothing to do with the
// address gets no advice about ports.
func TestStartFailureAdvice(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	dir := t.TempDir()
	_, err = openEmbedded(t, broker.Options{Listen: addr, StoreDir: filepath.Join(dir, "nats"), StateDir: dir})
	if !errors.Is(err, broker.ErrAddrInUse) {
		t.Fatalf("Open on an address in use: %v, want ErrAddrInUse", err)
	}
	for _, s := range []string{addr, "nats.listen", "port 0", filepath.Join(dir, broker.ClientURLFile)} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	if strings.Contains(err.Error(), "port -1") || strings.Contains(err.Error(), ":-1") {
		t.Errorf("error %q advises port -1, which the configuration refuses", err)
	}
	// The failed start released the lock.
	if b, err := openEmbedded(t, broker.Options{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats"), StateDir: dir}); err != nil {
		t.Fatalf("Open after a failed start on the same directory: %v", err)
	} else {
		b.Close()
	}

	// A data directory that cannot be created: no word about ports.
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = openEmbedded(t, broker.Options{Listen: "127.0.0.1:0", StoreDir: filepath.Join(file, "nats"), StateDir: file})
	if err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("Open with a file as data directory: %v", err)
	}
	if strings.Contains(err.Error(), "port") || errors.Is(err, broker.ErrAddrInUse) {
		t.Errorf("error %q gives advice about ports for a failure that has nothing to do with them", err)
	}
}
