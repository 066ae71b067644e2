package service

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// waitFor polls cond until it holds or the test's bound passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// blockUntilDone is a part that runs until its ctx ends.
func blockUntilDone(started chan<- string, name string) func(context.Context) error {
	return func(ctx context.Context) error {
		started <- name
		<-ctx.Done()
		return nil
	}
}

func TestReadinessNamesEachPart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s := New(nil, reg, ln)
	started := make(chan string, 2)
	mailboxErr := errors.New("unreachable for 5m: dial tcp: connection refused")
	ready := make(chan error, 1)
	ready <- mailboxErr
	var current error
	s.Add(Part{Name: "classify", Run: blockUntilDone(started, "classify")})
	s.Add(Part{Name: "mailbox be", Run: blockUntilDone(started, "mailbox be"), Ready: func(context.Context) error {
		select {
		case current = <-ready:
		default:
		}
		return current
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-started
	<-started
	addr := ln.Addr().String()
	if code, body := get(t, addr, "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	code, body := get(t, addr, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "mailbox be: unreachable for 5m") || strings.Contains(body, "classify") {
		t.Errorf("/readyz = %d %q, want 503 naming mailbox be alone", code, body)
	}
	ready <- nil
	if code, body := get(t, addr, "/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz after recovery = %d %q", code, body)
	}
	if code, _ := get(t, addr, "/metrics"); code != 200 {
		t.Errorf("/metrics = %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its ctx ended")
	}
}

func TestAFailingPartStopsTheOthers(t *testing.T) {
	s := New(nil, nil, nil)
	started := make(chan string, 1)
	s.Add(Part{Name: "classify", Run: blockUntilDone(started, "classify")})
	s.Add(Part{Name: "mailbox be", Run: func(ctx context.Context) error {
		<-started // fail once the other runs
		return errors.New("the lease bucket is gone")
	}})
	err := s.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "service: mailbox be: the lease bucket is gone") {
		t.Fatalf("Run = %v, want the failing part's error with its name", err)
	}
	waitFor(t, "every part to have stopped", func() bool {
		return s.Ready(context.Background()) != nil
	})
	if err := s.Ready(context.Background()); !strings.Contains(err.Error(), "classify: not running") {
		t.Errorf("Ready after the stop = %v, want classify not running", err)
	}
}
