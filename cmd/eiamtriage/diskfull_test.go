package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// smallTmpfs mounts a tmpfs of size (such as "16m") on a new directory and
// unmounts it at cleanup. Mounting needs root: without it the test fails
// when CI=true and is skipped otherwise.
func smallTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		msg := "mount a " + size + " tmpfs (needs root): " + err.Error() + ": " + strings.TrimSpace(string(out))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file under dir until its file system is full and returns
// the file.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			return path
		}
	}
}

// readyz returns the status code and body of serve's /readyz.
func readyz(t *testing.T, cfg testConfig) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + cfg.httpAddr() + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestStoreFull fills the file system under data_dir (a 16 MiB tmpfs):
// /readyz says the store is full, publish says so and names data_dir
// instead of timing out, a write the server attempted meanwhile fails; once
// space is freed, /readyz is ready and publish works again, without a
// restart, and nothing taken in before was lost.
func TestStoreFull(t *testing.T) {
	dataDir := smallTmpfs(t, "16m")
	cfg := writeConfigFrom(t, map[string]string{"data_dir": dataDir})
	p := startServe(t, cfg, "serve")
	mails, _ := generateNotices(t, 3)
	before, during := writeMails(t, "a.eml", mails[:1]), writeMails(t, "b.eml", mails[1:2])
	if r := runCLI(t, "publish", "--config", cfg.Path, before); r.code != 0 {
		t.Fatalf("publish before the disk is full:\n%s", r)
	}
	nc := connectNATS(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kv, err := nc.JS.KeyValue(ctx, bucketCases)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the first case", func() (bool, string) {
		_, err := kv.Get(ctx, mails[0].key)
		return err == nil, "no case yet"
	})

	filler := fill(t, dataDir)
	waitFor(t, 10*time.Second, "/readyz to say the store is full", func() (bool, string) {
		code, body := readyz(t, cfg)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "store is full") && strings.Contains(body, dataDir), body
	})
	began := time.Now()
	r := runCLI(t, "publish", "--config", cfg.Path, during)
	if r.code == 0 || !strings.Contains(r.stderr, "store under data_dir "+dataDir+" is full") {
		t.Errorf("publish into a full store: want a non-zero exit and an error naming data_dir as full:\n%s", r)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("publish took %s to report the full store", d)
	}
	// A write the server attempts anyway (bypassing publish's check) is
	// lost to the full disk: the server does not even answer.
	ev, err := event.New(event.TypeMailReceived, "e2e", "written-while-full", time.Now(), map[string]string{"pad": strings.Repeat("x", 64<<10)})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
	if err := pipeline.Publish(wctx, nc.JS, event.SubjectNoticeIgnored, ev); err == nil {
		t.Errorf("a 64 KiB event was stored on a full disk")
	}
	wcancel()

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	waitFor(t, 30*time.Second, "/readyz ready again after space was freed", func() (bool, string) {
		code, body := readyz(t, cfg)
		return code == http.StatusOK, body
	})
	t.Logf("ready %s after space was freed", time.Since(freed).Round(10*time.Millisecond))
	waitFor(t, 30*time.Second, "publish to take mail in again", func() (bool, string) {
		r := runCLI(t, "publish", "--config", cfg.Path, during)
		return r.code == 0, r.String()
	})
	waitFor(t, 30*time.Second, "the case of the mail published after the disk was freed", func() (bool, string) {
		_, err := kv.Get(ctx, mails[1].key)
		return err == nil, "no case yet"
	})
	if _, err := kv.Get(ctx, mails[0].key); err != nil {
		t.Errorf("the case taken in before the disk filled is gone: %v", err)
	}
	// And a write the server attempts works again: the write error the
	// full disk left on the stream (it sticks until JetStream restarts)
	// was cleared by the restart serve made by itself.
	if err := pipeline.Publish(ctx, nc.JS, event.SubjectNoticeIgnored, ev); err != nil {
		t.Errorf("a write after space was freed: %v", err)
	}
	if logs := p.logs(); !strings.Contains(logs, "no space left on device") || !strings.Contains(logs, "JetStream restarted") {
		t.Errorf("serve's log shows no failed write and no restart of JetStream:\n%s", logs)
	}
}
