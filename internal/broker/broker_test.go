package broker_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/broker"
	"github.com/eiamtriage/eiamtriage/internal/broker/brokertest"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap/zaptest"
)

func TestEmbeddedAcceptsOtherClients(t *testing.T) {
	b := brokertest.Start(t)
	if !strings.HasPrefix(b.ClientURL(), "nats://127.0.0.1:") {
		t.Fatalf("ClientURL = %q", b.ClientURL())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.JS.AccountInfo(ctx); err != nil {
		t.Fatalf("JetStream on the embedded server: %v", err)
	}
	// Another process would connect over TCP with ClientURL.
	nc, err := nats.Connect(b.ClientURL())
	if err != nil {
		t.Fatalf("TCP connect to %s: %v", b.ClientURL(), err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("hello")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := b.Conn.Publish("hello", []byte("world")); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(5 * time.Second); err != nil || string(m.Data) != "world" {
		t.Fatalf("message across clients: %v %v", m, err)
	}
}

func TestEmbeddedWithCredentials(t *testing.T) {
	b, err := broker.Open(context.Background(), broker.Options{
		Listen: "127.0.0.1:-1", StoreDir: t.TempDir(), User: "eiam", Password: "s3cret",
	}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := nats.Connect(b.ClientURL()); err == nil {
		t.Fatal("anonymous client connected to a server with a password")
	}
	nc, err := nats.Connect(b.ClientURL(), nats.UserInfo("eiam", "s3cret"))
	if err != nil {
		t.Fatalf("client with the password: %v", err)
	}
	nc.Close()

	// And as a URL client.
	c, err := broker.Open(context.Background(), broker.Options{URL: b.ClientURL(), User: "eiam", Password: "s3cret"}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("Open by URL: %v", err)
	}
	c.Close()
	c.Close() // idempotent
	if _, err := broker.Open(context.Background(), broker.Options{URL: b.ClientURL(), User: "eiam", Password: "wrong"}, zaptest.NewLogger(t)); err == nil || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("wrong password: err = %v (must fail and not show the password)", err)
	}
}

func TestEmbeddedPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	start := time.Now()
	_, err = broker.Open(context.Background(), broker.Options{Listen: addr, StoreDir: t.TempDir()}, zaptest.NewLogger(t))
	if err == nil {
		t.Fatal("Open succeeded on an address in use")
	}
	if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "listen address") {
		t.Errorf("error %q should name %s and what to change", err, addr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s to report the address in use", d)
	}
}

func TestOpenValidates(t *testing.T) {
	tests := []struct {
		name string
		opts broker.Options
		want string
	}{
		{"no store dir", broker.Options{}, "store directory"},
		{"two kinds of credentials", broker.Options{StoreDir: "x", Token: "t", User: "u", Password: "p"}, "only one"},
		{"user without password", broker.Options{StoreDir: "x", User: "u"}, "password"},
		{"creds file embedded", broker.Options{StoreDir: "x", CredsFile: "/x.creds"}, "external"},
		{"bad listen", broker.Options{StoreDir: "x", Listen: "localhost"}, "host:port"},
		{"cluster without name", broker.Options{StoreDir: "x", ServerName: "n1", Cluster: &broker.ClusterOptions{Listen: "127.0.0.1:-1"}}, "cluster needs a name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := broker.Open(context.Background(), tt.opts, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "broker: ") {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestCluster(t *testing.T) {
	c := brokertest.StartCluster(t, 3)
	if len(c.Servers()) != 3 || len(strings.Split(c.ClientURL(), ",")) != 3 {
		t.Fatalf("cluster %+v", c)
	}
	for _, s := range c.Servers() {
		if n := s.NumRoutes(); n < 2 {
			t.Errorf("server %s has %d routes", s.Name(), n)
		}
	}
}
