package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/broker"
)

// publishOneAndWaitForItsCase publishes the notice fixture name with the
// CLI and waits until `cases list --json` shows the case of its profile.
func publishOneAndWaitForItsCase(t *testing.T, cfg testConfig, name string) {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "testdata", "notices")
	g, ok := readGolden(t, dir)[name]
	if !ok || g.ProfileID == "" {
		t.Fatalf("golden.json has no notice %s with a profile id", name)
	}
	raw, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, "publish", "--config", cfg.Path, filepath.Join(dir, name)); r.code != 0 {
		t.Fatalf("publish %s:\n%s", name, r)
	}
	key := caseKey(g.ProfileID, raw)
	waitFor(t, 30*time.Second, "the case "+key, func() (bool, string) {
		r := runCLI(t, "cases", "list", "--config", cfg.Path, "--json")
		if r.code != 0 {
			return false, r.String()
		}
		list, err := parseCaseLines(r.stdout)
		if err != nil {
			return false, err.Error()
		}
		for _, c := range list {
			if c.ID == key {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d cases, none %s", len(list), key)
	})
}

// TestSecondServeOnOneDataDirRefused: a second serve on the data_dir of a
// running one exits non-zero, naming the PID of the first, and the first
// goes on serving: ready, and taking mail in.
func TestSecondServeOnOneDataDirRefused(t *testing.T) {
	cfg := writeExampleConfig(t)
	first := startServe(t, cfg, "serve-1")
	pid := strconv.Itoa(first.cmd.Process.Pid)

	second := runCLI(t, "serve", "--config", cfg.Path)
	if second.code == 0 {
		t.Fatalf("a second serve on the same data_dir started:\n%s", second)
	}
	for _, s := range []string{"PID " + pid, "ps -fp " + pid, cfg.DataDir, "data_dir"} {
		if !strings.Contains(second.stderr, s) {
			t.Errorf("the second serve's error does not say %q:\n%s", s, second)
		}
	}
	if first.exited() {
		t.Fatalf("the first serve exited: %v", first.waitErr)
	}
	first.waitReady()
	publishOneAndWaitForItsCase(t, cfg, restartFixture)
}

// TestPortZeroFoundByTheCommands: with nats.listen and http.listen on port
// 0, serve listens on free ports (not NATS's default 4222, which the test
// holds when it can) and the commands find them.
func TestPortZeroFoundByTheCommands(t *testing.T) {
	if l, err := net.Listen("tcp", "127.0.0.1:4222"); err == nil {
		defer l.Close()
	}
	cfg := writeConfigFrom(t, map[string]string{"nats.listen": "127.0.0.1:0", "http.listen": "127.0.0.1:0"})
	p := startServe(t, cfg, "serve")
	u, err := os.ReadFile(filepath.Join(cfg.DataDir, broker.ClientURLFile))
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.TrimSpace(string(u)); strings.HasSuffix(s, ":0") || strings.HasSuffix(s, ":4222") {
		t.Fatalf("serve with port 0 listens on %s", s)
	}
	if a := cfg.httpAddr(); strings.HasSuffix(a, ":0") || a == "" {
		t.Fatalf("serve with http.listen port 0 recorded %q", a)
	}
	publishOneAndWaitForItsCase(t, cfg, restartFixture)
	if r := runCLI(t, "dead", "list", "--config", cfg.Path); r.code != 0 {
		t.Errorf("dead list:\n%s", r)
	}

	// Once serve has stopped, the commands say where they looked.
	p.stop()
	r := runCLI(t, "cases", "list", "--config", cfg.Path)
	if r.code != 1 || !strings.Contains(r.stderr, filepath.Join(cfg.DataDir, broker.ClientURLFile)) || !strings.Contains(r.stderr, "port 0") {
		t.Errorf("cases list without serve:\n%s", r)
	}
}

// TestServeStartupAdvice: serve gives advice about the address only when
// the address is the problem, naming it and the key to change; never the
// port -1 the configuration refuses.
func TestServeStartupAdvice(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	addr := held.Addr().String()
	for _, tt := range []struct {
		name  string
		extra map[string]string
		says  []string
	}{
		{"nats address in use", map[string]string{"nats.listen": addr}, []string{addr, "nats.listen", "port 0", "another process listens there"}},
		{"http address in use", map[string]string{"http.listen": addr}, []string{addr, "http.listen", "port 0", "another process listens there"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeConfigFrom(t, tt.extra)
			code, _, stderr := run(t, "", "serve", "--config", cfg.Path)
			if code == 0 {
				t.Fatalf("serve started on an address in use")
			}
			for _, s := range tt.says {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
			if strings.Contains(stderr, "port -1") || strings.Contains(stderr, ":-1") {
				t.Errorf("stderr advises port -1:\n%s", stderr)
			}
		})
	}
	t.Run("data_dir not a directory", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "a-file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := writeConfigFrom(t, map[string]string{"data_dir": file})
		ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
		defer cancel()
		var out, errOut strings.Builder
		code := runMain(ctx, []string{"serve", "--config", cfg.Path}, strings.NewReader(""), &out, &errOut)
		if code == 0 || !strings.Contains(errOut.String(), file) {
			t.Fatalf("serve with a file as data_dir: exit %d\n%s", code, errOut.String())
		}
		if strings.Contains(errOut.String(), "port") {
			t.Errorf("advice about ports for a data_dir that is a file:\n%s", errOut.String())
		}
	})
}
