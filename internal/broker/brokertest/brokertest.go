// Package brokertest starts real NATS JetStream servers for tests: one
// embedded server on a random loopback port, or a JetStream cluster of
// embedded servers on 127.0.0.1 connected by routes. Everything started is
// stopped by t.Cleanup.
package brokertest

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/broker"
	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// Start runs an embedded JetStream server on 127.0.0.1 with a random port
// and its store in t.TempDir, connects to it and returns the Broker. Close
// runs at cleanup.
func Start(t testing.TB) *broker.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := broker.Open(ctx, broker.Options{
		Listen:   "127.0.0.1:-1",
		StoreDir: t.TempDir(),
		Name:     "brokertest",
	}, logger(t))
	if err != nil {
		t.Fatalf("brokertest: start embedded NATS: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// Cluster is a JetStream cluster of embedded servers, each with its own
// in-process client connection.
type Cluster struct {
	// Nodes are the cluster's brokers, one per server.
	Nodes []*broker.Broker
	// URLs are the nodes' client URLs.
	URLs []string
}

// Servers returns the cluster's servers.
func (c *Cluster) Servers() []*server.Server {
	s := make([]*server.Server, len(c.Nodes))
	for i, n := range c.Nodes {
		s[i] = n.Server()
	}
	return s
}

// ClientURL returns the nodes' client URLs comma-separated, as
// broker.Options.URL and nats.Connect accept them.
func (c *Cluster) ClientURL() string { return strings.Join(c.URLs, ",") }

// Connect opens a client connection to the cluster through its URLs, the
// way a daemon configured with a URL connects. Close runs at cleanup.
func (c *Cluster) Connect(t testing.TB) *broker.Broker {
	t.Helper()
	b, err := broker.Open(context.Background(), broker.Options{URL: c.ClientURL(), Name: "brokertest-client"}, logger(t))
	if err != nil {
		t.Fatalf("brokertest: connect to cluster %s: %v", c.ClientURL(), err)
	}
	t.Cleanup(b.Close)
	return b
}

// StartCluster runs an n-node JetStream cluster on 127.0.0.1 (random client
// ports, free route ports, stores in t.TempDir) and waits until a JetStream
// meta leader is elected and every node is current, so that R3 streams can
// be created right away. Servers stop at cleanup.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("brokertest: a cluster needs at least one node, got %d", n)
	}
	ports := freePorts(t, n)
	routes := make([]string, n)
	for i, p := range ports {
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", p)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &Cluster{}
	for i := range n {
		b, err := broker.Open(ctx, broker.Options{
			Listen:     "127.0.0.1:-1",
			StoreDir:   filepath.Join(dir, fmt.Sprintf("n%d", i)),
			Name:       fmt.Sprintf("brokertest-n%d", i),
			ServerName: fmt.Sprintf("n%d", i),
			Cluster: &broker.ClusterOptions{
				Name:   "brokertest",
				Listen: fmt.Sprintf("127.0.0.1:%d", ports[i]),
				Routes: routes,
			},
		}, logger(t).Named(fmt.Sprintf("n%d", i)))
		if err != nil {
			t.Fatalf("brokertest: start cluster node %d: %v", i, err)
		}
		t.Cleanup(b.Close)
		c.Nodes = append(c.Nodes, b)
		c.URLs = append(c.URLs, b.ClientURL())
	}
	waitMetaLeader(t, c, 30*time.Second)
	return c
}

func waitMetaLeader(t testing.TB, c *Cluster, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		leader, current := false, true
		for _, s := range c.Servers() {
			if s.JetStreamIsLeader() {
				leader = true
			}
			if !s.JetStreamIsCurrent() {
				current = false
			}
		}
		if leader && current {
			// The meta layer is up; make sure a client sees JetStream too.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := c.Nodes[0].JS.AccountInfo(ctx)
			cancel()
			if err == nil {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("brokertest: no JetStream meta leader among %d nodes after %s", len(c.Nodes), timeout)
}

// freePorts returns n distinct TCP ports that were free on 127.0.0.1 a
// moment ago. Route ports must be known before the nodes start, so they
// cannot be -1.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("brokertest: find a free port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// logger returns a test logger at info level: nats-server's debug lines
// would drown the output.
func logger(t testing.TB) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
}
