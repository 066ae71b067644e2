// Package broker connects eiamtriage to NATS JetStream: by default it runs an
// embedded nats-server with JetStream on disk, listening on loopback so that
// other eiamtriage commands and the standard NATS tools can connect to it;
// given a URL it connects to an external NATS deployment instead.
//
// The Broker owns what it opened: Close drains the connection and, for an
// embedded server, shuts the server down and waits for it.
package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eiamtriage/eiamtriage/internal/config"
)

// Defaults applied by Open to zero Options fields.
const (
	DefaultListen     = "127.0.0.1:4222"
	DefaultMaxMemory  = 64 << 20 // 64 MiB: eiamtriage's streams use file storage
	DefaultMaxStore   = 8 << 30  // 8 GiB
	DefaultName       = "eiamtriage"
	DefaultServerName = "eiamtriage"

	readyTimeout = 10 * time.Second
	drainTimeout = 10 * time.Second
)

// Options says where NATS is. The zero value is invalid only for lack of a
// StoreDir: with StoreDir set it runs an embedded server on DefaultListen.
type Options struct {
	// URL of an external NATS server or cluster (comma-separated URLs are
	// accepted). Empty means: run an embedded server.
	URL string

	// Listen is the embedded server's client address, host:port. Default
	// DefaultListen; a port of 0 (or -1) lets the server pick a free port,
	// which it records in StateDir (ClientURLFile) for the other commands.
	// Keep it on loopback unless the server must be reached from other
	// hosts, and then set User/Password or Token.
	Listen string
	// StoreDir is the embedded server's JetStream directory. Required when
	// URL is empty.
	StoreDir string
	// StateDir is where the embedded server keeps its lock (LockFile: one
	// server per store) and its client URL (ClientURLFile). Default
	// StoreDir; FromConfig sets the configuration's data_dir.
	StateDir string

	// Credentials, at most one kind. With URL they authenticate this
	// client; with the embedded server they are also required of every
	// client that connects to it. CredsFile works with URL only.
	User, Password string
	Token          string
	CredsFile      string

	// MaxMemory and MaxStore bound the embedded server's JetStream memory
	// and disk use in bytes. Defaults DefaultMaxMemory and DefaultMaxStore.
	MaxMemory, MaxStore int64
	// StoreCheckInterval is how often WatchStore looks at a full store
	// (default DefaultStoreCheckInterval).
	StoreCheckInterval time.Duration

	// Name is the client connection name, as shown by `nats server report
	// connections`. Default DefaultName.
	Name string
	// ServerName names the embedded server. Default DefaultServerName; it
	// must be unique within a cluster.
	ServerName string

	// Cluster, when not nil, makes the embedded server a node of a
	// JetStream cluster (three nodes for R3 streams).
	Cluster *ClusterOptions

	// resolveErr is why ClientFromConfig could not find the server's
	// address; Open returns it.
	resolveErr error
}

// ClusterOptions configures the embedded server's cluster routes.
type ClusterOptions struct {
	// Name of the cluster, the same on every node.
	Name string
	// Listen is this node's route address, host:port (port -1: random).
	Listen string
	// Routes are the other nodes' route URLs, e.g. "nats://127.0.0.1:6223".
	Routes []string
}

// ErrAddrInUse is returned by Open when the embedded server's listen
// address is taken by another process.
var ErrAddrInUse = errors.New("address in use")

// Broker is an open NATS connection with its JetStream context and, when
// embedded, the server it runs. Conn and JS are safe for concurrent use and
// stay valid until Close.
type Broker struct {
	Conn *nats.Conn
	JS   jetstream.JetStream

	srv       *server.Server
	url       string
	log       *zap.Logger
	closed    chan struct{}
	closeOnce sync.Once

	// The embedded server's state directory and the lock on it, held
	// until Close; what it knows of its store.
	stateDir string
	lock     *os.File
	store    *storeState
}

// Open starts the embedded server (when opts.URL is empty) or connects to
// opts.URL, and returns a Broker the caller must Close. ctx bounds the wait
// for the embedded server to accept connections (at most 10 s in any case);
// connecting to a URL is bounded by the client's own 2 s dial timeout per
// server. The connection lives until Close. The connection
// reconnects forever (MaxReconnects -1). Open never logs credentials.
func Open(ctx context.Context, opts Options, log *zap.Logger) (*Broker, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if opts.Name == "" {
		opts.Name = DefaultName
	}
	if opts.resolveErr != nil {
		return nil, opts.resolveErr
	}
	if err := checkCredentials(opts); err != nil {
		return nil, err
	}
	if opts.URL != "" {
		return connectURL(opts, log)
	}
	return openEmbedded(ctx, opts, log)
}

func checkCredentials(opts Options) error {
	kinds := 0
	if opts.User != "" || opts.Password != "" {
		kinds++
		if opts.User == "" || opts.Password == "" {
			return errors.New("broker: a user needs a password and a password a user; set both or neither")
		}
	}
	if opts.Token != "" {
		kinds++
	}
	if opts.CredsFile != "" {
		kinds++
		if opts.URL == "" {
			return errors.New("broker: a creds file authenticates to an external server only; set the URL or use user/password or a token for the embedded server")
		}
	}
	if kinds > 1 {
		return errors.New("broker: several kinds of credentials are set; use only one of user/password, token or creds file")
	}
	return nil
}

func connectURL(opts Options, log *zap.Logger) (*Broker, error) {
	b := &Broker{url: opts.URL, log: log, closed: make(chan struct{})}
	no := b.natsOptions(opts)
	switch {
	case opts.User != "":
		no = append(no, nats.UserInfo(opts.User, opts.Password))
	case opts.Token != "":
		no = append(no, nats.Token(opts.Token))
	case opts.CredsFile != "":
		no = append(no, nats.UserCredentials(opts.CredsFile))
	}
	nc, err := nats.Connect(opts.URL, no...)
	if err != nil {
		return nil, fmt.Errorf("broker: connect to NATS at %s: %w; check the URL, that the server runs and the credentials", redactURLs(opts.URL), err)
	}
	if err := b.finish(nc); err != nil {
		return nil, err
	}
	log.Info("connected to NATS", zap.String("url", nc.ConnectedUrlRedacted()), zap.String("server", nc.ConnectedServerName()))
	return b, nil
}

func openEmbedded(ctx context.Context, opts Options, log *zap.Logger) (*Broker, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("broker: the embedded NATS server needs a JetStream store directory; set the store directory or give the URL of an external NATS server")
	}
	if opts.Listen == "" {
		opts.Listen = DefaultListen
	}
	host, port, err := splitHostPort(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("broker: embedded listen address: %w", err)
	}
	if port == 0 {
		port = server.RANDOM_PORT // nats-server reads 0 as its default, 4222
	}
	if opts.Cluster != nil && opts.ServerName == "" {
		return nil, errors.New("broker: each node of an embedded cluster needs its own server name; set the server name")
	}
	if opts.ServerName == "" {
		opts.ServerName = DefaultServerName
	}
	if opts.MaxMemory == 0 {
		opts.MaxMemory = DefaultMaxMemory
	}
	if opts.MaxStore == 0 {
		opts.MaxStore = DefaultMaxStore
	}
	so := &server.Options{
		ServerName:         opts.ServerName,
		Host:               host,
		Port:               port,
		JetStream:          true,
		StoreDir:           opts.StoreDir,
		JetStreamMaxMemory: opts.MaxMemory,
		JetStreamMaxStore:  opts.MaxStore,
		NoSigs:             true,
		Username:           opts.User,
		Password:           opts.Password,
		Authorization:      opts.Token,
	}
	if c := opts.Cluster; c != nil {
		if c.Name == "" {
			return nil, errors.New("broker: embedded cluster needs a name; set the cluster name, the same on every node")
		}
		ch, cp, err := splitHostPort(c.Listen)
		if err != nil {
			return nil, fmt.Errorf("broker: embedded cluster listen address: %w", err)
		}
		so.Cluster = server.ClusterOpts{Name: c.Name, Host: ch, Port: cp}
		for _, r := range c.Routes {
			u, err := url.Parse(r)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("broker: cluster route %q is not a URL like nats://host:port", r)
			}
			so.Routes = append(so.Routes, u)
		}
	}
	if opts.StateDir == "" {
		opts.StateDir = opts.StoreDir
	}
	// One server per store: two on one JetStream directory disagree and
	// corrupt it. The lock comes first, before any port is bound.
	lock, err := lockStateDir(opts.StateDir)
	if err != nil {
		return nil, err
	}
	fail := func(srv *server.Server, err error) (*Broker, error) {
		if srv != nil {
			srv.Shutdown()
			srv.WaitForShutdown()
		}
		lock.Close()
		return nil, err
	}
	srv, err := server.NewServer(so)
	if err != nil {
		return fail(nil, fmt.Errorf("broker: configure embedded NATS server on %s with store %s: %w", opts.Listen, opts.StoreDir, err))
	}
	if opts.StoreCheckInterval <= 0 {
		opts.StoreCheckInterval = DefaultStoreCheckInterval
	}
	store := &storeState{
		dir:      opts.StoreDir,
		jsConfig: server.JetStreamConfig{StoreDir: opts.StoreDir, MaxMemory: opts.MaxMemory, MaxStore: opts.MaxStore},
		interval: opts.StoreCheckInterval,
	}
	sl := &serverLogger{log: log.Named("nats-server"), store: store}
	srv.SetLoggerV2(sl, false, false, false)
	srv.Start()
	if err := waitReady(ctx, srv, sl); err != nil {
		if strings.Contains(err.Error(), "address already in use") {
			return fail(srv, fmt.Errorf("broker: the embedded NATS server cannot listen on %s: %w: another process listens there "+
				"(see: ss -ltnp 'sport = :%d'); stop it, or set another listen address (nats.listen; "+
				"port 0 picks a free one, which the other commands find in %s)",
				opts.Listen, ErrAddrInUse, port, filepath.Join(opts.StateDir, ClientURLFile)))
		}
		return fail(srv, fmt.Errorf("broker: embedded NATS server on %s (store %s) did not start: %w", opts.Listen, opts.StoreDir, err))
	}

	b := &Broker{srv: srv, url: srv.ClientURL(), log: log, closed: make(chan struct{}), stateDir: opts.StateDir, lock: lock, store: store}
	no := append(b.natsOptions(opts), nats.InProcessServer(srv))
	switch {
	case opts.User != "":
		no = append(no, nats.UserInfo(opts.User, opts.Password))
	case opts.Token != "":
		no = append(no, nats.Token(opts.Token))
	}
	nc, err := nats.Connect(srv.ClientURL(), no...)
	if err != nil {
		return fail(srv, fmt.Errorf("broker: connect to the embedded NATS server on %s: %w", b.url, err))
	}
	if err := b.finish(nc); err != nil {
		return fail(srv, err)
	}
	if err := writeClientURL(opts.StateDir, b.url); err != nil {
		nc.Close()
		return fail(srv, err)
	}
	log.Info("embedded NATS server running", zap.String("url", b.url), zap.String("server", opts.ServerName), zap.String("store", opts.StoreDir))
	return b, nil
}

// waitReady waits until srv accepts connections, failing early when the
// server reported a fatal error (such as an address in use) or ctx ends.
func waitReady(ctx context.Context, srv *server.Server, sl *serverLogger) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		if msg := sl.fatal.Load(); msg != nil {
			return errors.New(*msg)
		}
		if srv.ReadyForConnections(100 * time.Millisecond) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready for connections after %s", readyTimeout)
		}
	}
}

func (b *Broker) natsOptions(opts Options) []nats.Option {
	log := b.log
	return []nats.Option{
		nats.Name(opts.Name),
		nats.MaxReconnects(-1),
		nats.DrainTimeout(drainTimeout),
		nats.ClosedHandler(func(*nats.Conn) { close(b.closed) }),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err == nil {
				return // closed on purpose
			}
			log.Warn("NATS connection lost; reconnecting", zap.Error(err))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("NATS connection re-established", zap.String("url", nc.ConnectedUrlRedacted()))
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			f := []zap.Field{zap.Error(err)}
			if sub != nil {
				f = append(f, zap.String("subject", sub.Subject))
			}
			log.Warn("NATS asynchronous error", f...)
		}),
	}
}

func (b *Broker) finish(nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("broker: JetStream context on %s: %w", nc.ConnectedUrlRedacted(), err)
	}
	b.Conn, b.JS = nc, js
	return nil
}

// ClientURL returns the address other commands and the nats CLI should
// connect to: the embedded server's client URL, or the URL Open was given
// (as given, credentials included if the URL held any).
func (b *Broker) ClientURL() string { return b.url }

// Server returns the embedded server, or nil when connected to a URL.
func (b *Broker) Server() *server.Server { return b.srv }

// Close drains the connection (pending publishes are flushed, subscriptions
// finish their buffered messages, up to 10 s) and then, for an embedded
// server, shuts the server down and waits until it has stopped. Consumers
// (pipeline.Run) should have returned before Close. Close is idempotent.
func (b *Broker) Close() {
	b.closeOnce.Do(func() {
		if b.Conn != nil {
			if err := b.Conn.Drain(); err != nil {
				b.Conn.Close()
			}
			select {
			case <-b.closed:
			case <-time.After(drainTimeout + time.Second):
				b.log.Warn("NATS connection did not drain in time; closing it", zap.Duration("timeout", drainTimeout))
				b.Conn.Close()
			}
		}
		if b.srv != nil {
			b.srv.Shutdown()
			b.srv.WaitForShutdown()
			b.log.Info("embedded NATS server stopped", zap.String("url", b.url))
			if err := os.Remove(filepath.Join(b.stateDir, ClientURLFile)); err != nil {
				b.log.Warn("remove the client URL file", zap.Error(err))
			}
			b.lock.Close() // releases the lock: the file stays
		}
	})
}

func splitHostPort(hp string) (string, int, error) {
	host, ps, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port: %w", hp, err)
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("%q: port %q is not a number from 0 to 65535 (0: a free port)", hp, ps)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// redactURLs hides the passwords of comma-separated URLs for logs and
// errors.
func redactURLs(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			parts[i] = u.Redacted()
			if _, ok := u.User.Password(); !ok {
				// A token or bare user name in the user-info part: hide it all.
				u.User = url.User("xxxxx")
				parts[i] = u.String()
			}
		}
	}
	return strings.Join(parts, ",")
}

// serverLogger routes nats-server's log lines to zap. Notices go to debug
// (the server is chatty at start-up); a fatal error is logged and recorded
// instead of exiting the process, so that Open can report it.
type serverLogger struct {
	log   *zap.Logger
	fatal atomic.Pointer[string]
	store *storeState // told of errors that say the store is full
}

func (l *serverLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.store.noteServerError(msg)
	l.log.Warn(msg)
}
func (l *serverLogger) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.store.noteServerError(msg)
	l.log.Error(msg)
}
func (l *serverLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Tracef(string, ...any)          {}
func (l *serverLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	l.fatal.CompareAndSwap(nil, &msg)
}

// FromConfig maps the configuration to the options of the daemon's own
// connection: the external URL, or the embedded server under
// data_dir/nats. name is the client connection name.
func FromConfig(cfg *config.Config, name string) Options {
	o := Options{
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
		o.StateDir = cfg.DataDir
	}
	return o
}

// ClientFromConfig maps the configuration to the options of a command
// that talks to the daemon's NATS without running a server: the external
// URL, or the embedded server's address. With a listen port of 0 that is
// the URL the running server recorded in data_dir (ClientURLFile); when it
// cannot be read, Open returns why.
func ClientFromConfig(cfg *config.Config, name string) Options {
	o := FromConfig(cfg, name)
	if o.URL != "" {
		return o
	}
	o.URL = "nats://" + cfg.NATS.Listen
	o.StoreDir, o.StateDir = "", ""
	if _, port, err := net.SplitHostPort(cfg.NATS.Listen); err == nil && port == "0" {
		u, err := readClientURL(cfg.DataDir)
		if err != nil {
			o.resolveErr = fmt.Errorf("broker: nats.listen %s has port 0, a free port the embedded server picks when `eiamtriage serve` starts and records: %w", cfg.NATS.Listen, err)
		}
		o.URL = u
	}
	return o
}
