package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eiamtriage/eiamtriage/internal/broker"
	"github.com/eiamtriage/eiamtriage/internal/config"
)

// Bounds of the waits of the end-to-end tests. They are generous: they
// only bound a test that would otherwise hang, they measure nothing.
const (
	readyTimeout = 20 * time.Second // serve's /readyz answering 200
	stopTimeout  = 10 * time.Second // exit after SIGTERM, before SIGKILL
	cliTimeout   = 30 * time.Second // one CLI subprocess
	pollInterval = 50 * time.Millisecond
)

// repoRoot returns the module's root directory (the tests run in
// cmd/eiamtriage).
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatalf("repository root: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s has no go.mod: %v", root, err)
	}
	return root
}

// freeAddrs returns n distinct free loopback addresses host:port: it
// listens on port 0 n times and closes the listeners only when all are
// chosen. Another process may take a port before serve binds it; that is
// the price of giving serve a fixed address in its configuration.
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	addrs := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

// testConfig is a configuration file written for one test.
type testConfig struct {
	Path       string // the file
	DataDir    string // data_dir
	NATSListen string // nats.listen
	HTTPListen string // http.listen
}

// writeExampleConfig writes deploy/eiamtriage.example.yaml with exactly
// three values changed, textually: data_dir (a fresh t.TempDir()),
// nats.listen and http.listen (free loopback ports). The test fails if one
// of the replacements did not happen, and if the result, loaded, differs
// from the example in anything but those three values.
func writeExampleConfig(t *testing.T) testConfig {
	t.Helper()
	return deriveExampleConfig(t, nil)
}

// writeConfigFrom is writeExampleConfig with more values changed: extra
// maps dotted keys to their YAML values and may override nats.listen,
// http.listen and data_dir too. With extra values the loaded result is not
// compared with the example.
func writeConfigFrom(t *testing.T, extra map[string]string) testConfig {
	t.Helper()
	return deriveExampleConfig(t, extra)
}

func deriveExampleConfig(t *testing.T, extra map[string]string) testConfig {
	t.Helper()
	example := filepath.Join(repoRoot(t), "deploy", "eiamtriage.example.yaml")
	raw, err := os.ReadFile(example)
	if err != nil {
		t.Fatalf("read the example configuration: %v", err)
	}
	addrs := freeAddrs(t, 2)
	tc := testConfig{
		Path:       filepath.Join(t.TempDir(), "eiamtriage.yaml"),
		DataDir:    t.TempDir(),
		NATSListen: addrs[0],
		HTTPListen: addrs[1],
	}
	if v, ok := extra["data_dir"]; ok {
		tc.DataDir = v
	}
	if v, ok := extra["nats.listen"]; ok {
		tc.NATSListen = v
	}
	if v, ok := extra["http.listen"]; ok {
		tc.HTTPListen = v
	}
	values := map[string]string{
		"data_dir":    strconv.Quote(tc.DataDir),
		"nats.listen": tc.NATSListen,
		"http.listen": tc.HTTPListen,
	}
	for k, v := range extra {
		if k != "data_dir" {
			values[k] = v
		}
	}
	out, err := replaceConfigValues(string(raw), values)
	if err != nil {
		t.Fatalf("derive a configuration from %s: %v", example, err)
	}
	if err := os.WriteFile(tc.Path, []byte(out), 0o600); err != nil {
		t.Fatalf("write the configuration: %v", err)
	}

	// The derived file is the example but for the three values.
	want, err := config.LoadFile(example)
	if err != nil {
		t.Fatalf("the example configuration %s does not load: %v", example, err)
	}
	got, err := config.LoadFile(tc.Path)
	if err != nil {
		t.Fatalf("the derived configuration does not load: %v\n%s", err, out)
	}
	if got.DataDir != tc.DataDir || got.NATS.Listen != tc.NATSListen || got.HTTP.Listen != tc.HTTPListen {
		t.Fatalf("derived configuration: data_dir %q, nats.listen %q, http.listen %q; want %q, %q, %q",
			got.DataDir, got.NATS.Listen, got.HTTP.Listen, tc.DataDir, tc.NATSListen, tc.HTTPListen)
	}
	if len(extra) > 0 {
		return tc
	}
	want.DataDir, want.NATS.Listen, want.HTTP.Listen = got.DataDir, got.NATS.Listen, got.HTTP.Listen
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the derived configuration differs from the example in more than data_dir, nats.listen and http.listen:\n got %+v\nwant %+v", got, want)
	}
	return tc
}

// configKeyLine matches a "key: value" line, its indentation apart.
var configKeyLine = regexp.MustCompile(`^( *)([A-Za-z_][A-Za-z0-9_]*):(?:[ \t]+(.*))?$`)

// replaceConfigValues replaces the values of the keys named by dotted
// paths ("data_dir", "nats.listen": top-level keys and keys of a top-level
// section) in YAML text, leaving every other byte as it is. Comments are
// not keys. Each path must occur exactly once.
func replaceConfigValues(text string, values map[string]string) (string, error) {
	lines := strings.Split(text, "\n")
	count := map[string]int{}
	section, childIndent := "", -1
	for i, line := range lines {
		m := configKeyLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		indent, key := len(m[1]), m[2]
		var path string
		switch {
		case indent == 0:
			section, childIndent, path = key, -1, key
		case childIndent == -1 || indent == childIndent:
			childIndent, path = indent, section+"."+key
		default:
			continue // deeper: not a key this function replaces
		}
		v, ok := values[path]
		if !ok {
			continue
		}
		count[path]++
		lines[i] = m[1] + key + ": " + v
	}
	var missing []string
	for path := range values {
		if count[path] != 1 {
			missing = append(missing, fmt.Sprintf("%s (found %d times)", path, count[path]))
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("not replaced exactly once: %s", strings.Join(missing, ", "))
	}
	return strings.Join(lines, "\n"), nil
}

// serveProc is a running `eiamtriage serve` subprocess.
type serveProc struct {
	t       *testing.T
	name    string
	cfg     testConfig
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error         // the result of Wait, once done is closed
}

// startServe starts `eiamtriage serve --config cfg.Path` with its standard
// output and error in a file, and waits until its /readyz answers 200. At
// cleanup it stops the process with SIGTERM (SIGKILL after stopTimeout),
// fails the test if it did not exit cleanly, and prints its output if the
// test failed.
func startServe(t *testing.T, cfg testConfig, name string) *serveProc {
	t.Helper()
	return startServeEnv(t, cfg, name, nil)
}

// startServeEnv is startServe with more environment variables (the test
// hooks' of testhooks.go).
func startServeEnv(t *testing.T, cfg testConfig, name string, env []string) *serveProc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("create the log file of %s: %v", name, err)
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(binPath, "serve", "--config", cfg.Path)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(cleanEnv(), env...)
	p := &serveProc{t: t, name: name, cfg: cfg, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	// Cleanups run last in, first out: the process stops before its log
	// is printed and before its data directory is removed.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("output of %s (%s):\n%s", p.name, strings.Join(p.cmd.Args, " "), p.logs())
		}
	})
	t.Cleanup(p.stop)
	p.waitReady()
	return p
}

// httpAddr is the address serve's operations listener is bound to: the
// configured one, or with port 0 the one serve recorded in data_dir ("" as
// long as it has not).
func (c testConfig) httpAddr() string {
	if !strings.HasSuffix(c.HTTPListen, ":0") {
		return c.HTTPListen
	}
	b, err := os.ReadFile(filepath.Join(c.DataDir, httpAddrFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// cleanEnv is the test's environment without the NATS secrets the
// configuration would otherwise pick up.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, config.EnvNATSPassword+"=") || strings.HasPrefix(kv, config.EnvNATSToken+"=") ||
			strings.HasPrefix(kv, config.EnvSMTPPassword+"=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// logs returns what the process wrote so far.
func (p *serveProc) logs() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", p.logPath, err)
	}
	return string(b)
}

// exited reports whether the process has exited.
func (p *serveProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitReady waits until GET /readyz answers 200, failing the test when
// the process exits first or readyTimeout passes.
func (p *serveProc) waitReady() {
	p.t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	last := "no answer yet"
	for {
		if p.exited() {
			p.t.Fatalf("%s exited before it was ready: %v", p.name, p.waitErr)
		}
		url := "http://" + p.cfg.httpAddr() + "/readyz"
		resp, err := client.Get(url)
		if err == nil {
			body, _ := readAllLimited(resp)
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(body))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: %s did not answer 200 within %s; last: %s", p.name, url, readyTimeout, last)
		}
		time.Sleep(pollInterval)
	}
}

func readAllLimited(resp *http.Response) (string, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return string(b), err
}

// kill ends the process with SIGKILL, as a crash or the OOM killer would,
// and waits for it.
func (p *serveProc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil && !p.exited() {
		p.t.Fatalf("kill %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		p.t.Fatalf("%s did not exit after SIGKILL within %s", p.name, stopTimeout)
	}
}

// stop ends the process with SIGTERM, as systemd would, and waits for it;
// SIGKILL after stopTimeout. A process that needed SIGKILL, or exited
// other than with 0, fails the test. A process that has exited already
// (killed by the test) is left alone.
func (p *serveProc) stop() {
	if p.exited() {
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !p.exited() {
		p.t.Errorf("send SIGTERM to %s: %v", p.name, err)
	}
	select {
	case <-p.done:
		if p.waitErr != nil {
			p.t.Errorf("%s did not exit cleanly after SIGTERM: %v", p.name, p.waitErr)
		}
	case <-time.After(stopTimeout):
		p.t.Errorf("%s did not exit within %s of SIGTERM; killing it", p.name, stopTimeout)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// cliResult is what one run of the binary produced.
type cliResult struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r cliResult) String() string {
	return fmt.Sprintf("eiamtriage %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// runCLI runs the binary with args, as a person would in a shell, and
// returns its output and exit code. The test fails if the command cannot
// be started or runs longer than cliTimeout.
func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	return runCLIStdin(t, "", args...)
}

// runCLIStdin is runCLI with stdin as the command's standard input.
func runCLIStdin(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := cliResult{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("eiamtriage %s did not finish within %s\n%s", strings.Join(args, " "), cliTimeout, r)
	case errors.As(err, &exitErr):
		r.code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("run eiamtriage %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// waitFor calls cond every pollInterval until it reports true, failing the
// test after timeout with what was waited for and the last state cond
// described.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(pollInterval)
	}
}

// connectNATS connects to the NATS of the serve running with cfg, the way
// the CLI commands do (broker.ClientFromConfig). The connection is closed at
// cleanup; closing it earlier is allowed.
func connectNATS(t *testing.T, cfg testConfig) *broker.Broker {
	t.Helper()
	c, err := config.LoadFile(cfg.Path)
	if err != nil {
		t.Fatalf("load %s: %v", cfg.Path, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := broker.Open(ctx, broker.ClientFromConfig(c, "eiamtriage-e2e-test"), nil)
	if err != nil {
		t.Fatalf("connect to the NATS of serve at %s: %v", cfg.NATSListen, err)
	}
	t.Cleanup(b.Close)
	return b
}

// consumerSettled reports whether the durable consumer has nothing left to
// deliver and nothing delivered but unsettled.
func consumerSettled(ctx context.Context, js jetstream.JetStream, stream, durable string) (bool, string) {
	c, err := js.Consumer(ctx, stream, durable)
	if err != nil {
		return false, fmt.Sprintf("consumer %s on %s: %v", durable, stream, err)
	}
	info := c.CachedInfo()
	return info.NumPending == 0 && info.NumAckPending == 0,
		fmt.Sprintf("consumer %s: %d pending, %d delivered and not settled, %d redelivered", durable, info.NumPending, info.NumAckPending, info.NumRedelivered)
}

// subjectCount returns how many messages stream holds on subjects matching
// filter.
func subjectCount(ctx context.Context, js jetstream.JetStream, stream, filter string) (uint64, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n, nil
}

// caseKey derives a case key the way internal/cases.KeyFor does, from the
// outside: "p." and the lower-case profile id (hashed to "p.h" and 32 hex
// digits when it holds characters a key may not), or, for a notice
// without a profile id, "m." and the SHA-256 of the raw mail in hex.
func caseKey(profileID string, raw []byte) string {
	id := strings.ToLower(strings.TrimSpace(profileID))
	if id == "" {
		sum := sha256.Sum256(raw)
		return "m." + hex.EncodeToString(sum[:])
	}
	if len(id) > 200 || strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) >= 0 {
		sum := sha256.Sum256([]byte(id))
		return "p.h" + hex.EncodeToString(sum[:16])
	}
	return "p." + id
}

// mailID is a mail's identity: the hex SHA-256 of its bytes.
func mailID(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// severity orders the classes as a case does: a case takes the most
// severe class of its notices.
func severity(class string) int {
	switch class {
	case "wrong-person":
		return 4
	case "private-email":
		return 3
	case "review":
		return 2
	case "negligible":
		return 1
	}
	return 0
}

// caseRecord is a case as `cases list --json` prints it and the bucket
// holds it: the fields the tests look at, decoded from the JSON a person
// or a script would read.
type caseRecord struct {
	ID        string `json:"id"`
	ProfileID string `json:"profile_id"`
	Mailbox   string `json:"mailbox"`
	Class     string `json:"class"`
	Language  string `json:"language"`
	Notices   []struct {
		MailID    string `json:"mail_id"`
		Mailbox   string `json:"mailbox"`
		MessageID string `json:"message_id"`
		Trust     struct {
			Trusted bool   `json:"trusted"`
			Method  string `json:"method"`
		} `json:"trust"`
		Class       string `json:"class"`
		Change      string `json:"change"`
		ReceivedSeq uint64 `json:"received_seq"`
		Duplicates  int    `json:"duplicates"`
	} `json:"notices"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// noticeSummary describes a case's notices for comparisons.
func (c caseRecord) noticeSummary() string {
	var parts []string
	for _, n := range c.Notices {
		parts = append(parts, fmt.Sprintf("%s/%s/%s/dup%d", n.MailID, n.Class, n.Change, n.Duplicates))
	}
	return strings.Join(parts, ",")
}

// listCases runs `cases list --json` against the serve of cfg and decodes
// its cases.
func listCases(t *testing.T, cfg testConfig) []caseRecord {
	t.Helper()
	r := runCLI(t, "cases", "list", "--config", cfg.Path, "--json")
	if r.code != 0 {
		t.Fatalf("cases list: %s", r)
	}
	list, err := parseCaseLines(r.stdout)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// parseCaseLines decodes the output of `cases list --json`: one case a
// line.
func parseCaseLines(out string) ([]caseRecord, error) {
	var list []caseRecord
	for i, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var c caseRecord
		dec := json.NewDecoder(strings.NewReader(line))
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("line %d is not a JSON case: %v: %q", i+1, err, line)
		}
		if dec.More() {
			return nil, fmt.Errorf("line %d holds more than one JSON value: %q", i+1, line)
		}
		list = append(list, c)
	}
	return list, nil
}
