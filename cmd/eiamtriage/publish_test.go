package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

var summaryRE = regexp.MustCompile(`published (\d+) mail\(s\), (\d+) already taken in, (\d+) failed, (\d+) not tried`)

// TestPublishStopsWhenServeDies kills serve while publish is in the middle
// of 2000 files: publish stops within seconds with an error that says the
// connection is gone, and its summary counts every file (published,
// already taken in, failed, not tried).
func TestPublishStopsWhenServeDies(t *testing.T) {
	const total = 2000
	cfg := writeExampleConfig(t)
	serve := startServe(t, cfg, "serve")
	mails, _ := generateNotices(t, total)
	dir := writeMails(t, "notice-first.eml", mails)
	nc := connectNATS(t, cfg)

	// publish's standard output is a pipe the test does not read until
	// serve is dead: once the pipe is full (about 800 lines), publish
	// blocks, so it cannot finish before the kill.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "publish", "--config", cfg.Path, dir)
	cmd.Env = cleanEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "publish to be in the middle of its files", func() (bool, string) {
		n, err := subjectCount(ctx, nc.JS, streamNotices, "eiam.notice.received")
		return err == nil && n >= 300, fmt.Sprintf("%d mails taken in (%v)", n, err)
	})
	nc.Close()
	serve.kill()
	killed := time.Now()

	stdout, _ := io.ReadAll(out)
	err = cmd.Wait()
	took := time.Since(killed)
	t.Logf("publish ended %s after serve was killed:\n%s", took.Round(10*time.Millisecond), stderr.String())
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Fatalf("publish: %v, want exit 1", err)
	}
	if took > reconnectPatience+10*time.Second {
		t.Errorf("publish took %s after the kill, want about %s", took, reconnectPatience)
	}
	if !bytes.Contains(stderr.Bytes(), []byte("stopped: lost the connection to NATS")) {
		t.Errorf("stderr does not say the connection is gone:\n%s", stderr.String())
	}
	m := summaryRE.FindSubmatch(stderr.Bytes())
	if m == nil {
		t.Fatalf("no summary on stderr:\n%s", stderr.String())
	}
	var c [4]int
	for i := range c {
		c[i], _ = strconv.Atoi(string(m[i+1]))
	}
	published, dup, failed, notTried := c[0], c[1], c[2], c[3]
	if published+dup+failed+notTried != total {
		t.Errorf("summary counts %d+%d+%d+%d files, want all %d", published, dup, failed, notTried, total)
	}
	if published < 300 || notTried == 0 || failed > 1 || dup != 0 {
		t.Errorf("summary: %d published, %d already taken in, %d failed, %d not tried; want at least 300 published, at most the one in flight failed, some not tried",
			published, dup, failed, notTried)
	}
	if lines := bytes.Count(stdout, []byte("\n")); lines != published {
		t.Errorf("%d lines on stdout, want one per published mail (%d)", lines, published)
	}
}
