// Command imapbench measures the IMAP ingest on this machine, in one run:
// it fills a Dovecot INBOX (dovecottest) with N distinct notices and
// measures
//
//   - the time `eiamtriage serve` (embedded NATS, the mailbox watcher, the
//     classify stage) takes until every notice is a case, from its start;
//   - the time mbsync (Debian isync) takes to download the same mailbox
//     into a Maildir, and one UID FETCH 1:* BODY.PEEK[] of all bodies (the
//     transfer floor);
//   - the peak RSS of serve while it drains them, with its embedded NATS
//     and again with the NATS in this process (serve's own memory);
//   - the latency from APPEND to the case event with IDLE, one mail at a
//     time;
//   - the latency from APPEND of a wrong-person notice to its escalation
//     accepted by an SMTP server on loopback (go-smtp's server side), one
//     at a time, with serve watching a folder of its own.
//
// It needs root (Dovecot), dovecot-imapd and isync installed, and the
// repository as its working directory (it builds serve and reads
// testdata/notices):
//
//	go run ./cmd/imapbench -n 10000 -latency 300
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/actions/outbox/smtpsink"
	"github.com/eiamtriage/eiamtriage/ingest"
	"github.com/eiamtriage/eiamtriage/ingest/mailbox/dovecottest"
	"github.com/eiamtriage/eiamtriage/ingest/notice"
	"github.com/eiamtriage/eiamtriage/internal/broker"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

func main() {
	n := flag.Int("n", 10000, "notices in the INBOX")
	lat := flag.Int("latency", 300, "APPENDs for the latency (one at a time)")
	work := flag.String("dir", "", "work directory (default: a new temporary one, removed at the end)")
	flag.Parse()
	if err := run(*n, *lat, *work); err != nil {
		fmt.Fprintln(os.Stderr, "imapbench:", err)
		os.Exit(1)
	}
}

// templates are direct notices whose profile id and Message-ID appear
// verbatim, one per class.
var templates = []string{
	"de-table-alt-private-bluewin.eml",
	"de-table-alt-anna-anja-wrong-person.eml",
	"de-table-alt-identical-utf8-qp.eml",
	"fr-html-other-domain-review.eml",
}

var (
	midRE = regexp.MustCompile(`(?mi)^Message-ID:[ \t]*<`)
)

// template is a notice and its profile id.
type template struct {
	raw []byte
	pid string
}

// gen returns notice i: template i%4 with profile id and Message-ID of its
// own (the profile id keeps its length, so quoted-printable lines keep
// theirs).
func gen(tpls []template, i int) ([]byte, string) {
	t := tpls[i%len(tpls)]
	pid := fmt.Sprintf("c1a5e000-%04x-4000-8000-%012x", i%len(tpls), i)
	raw := bytes.ReplaceAll(t.raw, []byte(t.pid), []byte(pid))
	loc := midRE.FindIndex(raw)
	raw = append(raw[:loc[1]:loc[1]], append([]byte(fmt.Sprintf("bench.%d.", i)), raw[loc[1]:]...)...)
	return append([]byte(authResults), raw...), pid
}

// authResults is what mailbox be's boundary server (mx.be.ch) writes
// above a notice eIAM signed: sender authentication stays on.
const authResults = "Authentication-Results: mx.be.ch; dkim=pass header.d=admin.ch header.s=sel1; dmarc=pass header.from=eiam.admin.ch\r\n"

func run(n, latN int, work string) error {
	if work == "" {
		d, err := os.MkdirTemp("", "imapbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		work = d
	}
	// Dovecot's processes (users dovecot and vmail) must reach the
	// directory.
	if err := os.Chmod(work, 0o755); err != nil {
		return err
	}
	for _, tool := range []string{"mbsync", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (mbsync: apt-get install isync)", tool)
		}
	}
	parser, err := notice.NewParser(config.DefaultWording(), nil)
	if err != nil {
		return err
	}
	var tpls []template
	for _, name := range templates {
		raw, err := os.ReadFile(filepath.Join("testdata", "notices", name))
		if err != nil {
			return fmt.Errorf("run from the repository's root: %w", err)
		}
		nt, err := parser.Parse(context.Background(), raw)
		if err != nil || !bytes.Contains(raw, []byte(nt.ProfileID)) {
			return fmt.Errorf("template %s: not a notice whose profile id appears verbatim (%v)", name, err)
		}
		tpls = append(tpls, template{raw: raw, pid: nt.ProfileID})
	}
	cfg, err := config.Load([]byte("data_dir: /unused\nmailboxes:\n  - name: be\n    superusers: [martina.graf@be.ch]\n    authserv_id: mx.be.ch\n"))
	if err != nil {
		return err
	}
	reader, err := ingest.ReaderFor(cfg)
	if err != nil {
		return err
	}
	for i := range len(tpls) * 2 {
		raw, pid := gen(tpls, i)
		rd, err := reader.Read(context.Background(), raw, "be")
		if err != nil || rd.Notice == nil || rd.Notice.ProfileID != pid || rd.Trust == nil || !rd.Trust.Trusted {
			return fmt.Errorf("generated notice %d is not a trusted notice of profile %s: %+v, %v", i, pid, rd, err)
		}
	}
	bin := filepath.Join(work, "eiamtriage")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/eiamtriage").CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/eiamtriage: %v: %s", err, out)
	}

	dv, err := dovecottest.New(filepath.Join(work, "dovecot"))
	if err != nil {
		return err
	}
	defer dv.Stop()
	mails := make([][]byte, n)
	var size int
	for i := range n {
		mails[i], _ = gen(tpls, i)
		size += len(mails[i])
	}
	if err := dv.FillMaildir(mails); err != nil {
		return err
	}
	fmt.Printf("imapbench: %d notices (%.1f MiB) in a Dovecot INBOX at %s\n", n, float64(size)/(1<<20), dv.Addr)
	// Dovecot indexes the folder on its first opening: once, before any
	// measurement.
	if _, err := floor(dv); err != nil {
		return err
	}

	floorD, err := floor(dv)
	if err != nil {
		return err
	}
	mbsyncD, err := mbsync(dv, work)
	if err != nil {
		return err
	}
	res1, err := drain(bin, dv, work, "serve-embedded", n, "", latN, tpls)
	if err != nil {
		return err
	}
	ext, err := broker.Open(context.Background(), broker.Options{Listen: "127.0.0.1:-1", StoreDir: filepath.Join(work, "nats-ext"), Name: "imapbench"}, zap.NewNop())
	if err != nil {
		return err
	}
	defer ext.Close()
	res2, err := drain(bin, dv, work, "serve-external-nats", n, ext.ClientURL(), 0, tpls)
	if err != nil {
		return err
	}

	fmt.Println()
	fmt.Printf("transfer floor, one UID FETCH 1:* BODY.PEEK[]:  %8.3f s\n", floorD.Seconds())
	fmt.Printf("mbsync (isync, SSLType None) into a Maildir:   %8.3f s\n", mbsyncD.Seconds())
	fmt.Printf("serve, start to the last case (embedded NATS): %8.3f s   = %.2fx mbsync (goal <= 0.30x), %.1fx the floor\n",
		res1.total.Seconds(), res1.total.Seconds()/mbsyncD.Seconds(), res1.total.Seconds()/floorD.Seconds())
	fmt.Printf("  of which start to the first login:           %8.3f s; first login to the last case %.3f s = %.2fx mbsync\n",
		res1.startup.Seconds(), (res1.total - res1.startup).Seconds(), (res1.total-res1.startup).Seconds()/mbsyncD.Seconds())
	fmt.Printf("serve, start to the last case (NATS apart):    %8.3f s   = %.2fx mbsync\n", res2.total.Seconds(), res2.total.Seconds()/mbsyncD.Seconds())
	fmt.Printf("serve, start to the last case acted on:        %8.3f s (embedded NATS), %.3f s (NATS apart)\n", res1.acted.Seconds(), res2.acted.Seconds())
	fmt.Printf("peak RSS of serve with its embedded NATS:      %8.1f MiB\n", float64(res1.peakRSS)/(1<<20))
	fmt.Printf("peak RSS of serve, NATS in another process:    %8.1f MiB (goal < 64 MiB)\n", float64(res2.peakRSS)/(1<<20))
	quantiles := func(what string, l []time.Duration) {
		if len(l) == 0 {
			return
		}
		slices.Sort(l)
		q := func(p float64) time.Duration { return l[min(len(l)-1, int(p*float64(len(l))))] }
		fmt.Printf("%s, %d one by one: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", what, len(l), ms(q(0.50)), ms(q(0.99)), ms(l[len(l)-1]))
	}
	quantiles("APPEND to case event with IDLE (goal p99 < 1000 ms)", res1.latencies)
	if latN > 0 {
		esc, err := escalationLatency(bin, dv, work, tpls, 3*n, latN)
		if err != nil {
			return err
		}
		quantiles("APPEND to escalation accepted by the SMTP sink (goal p99 < 1000 ms)", esc)
	}
	if latN > 0 {
		idleFloor, err := idleLatency(dv, tpls, 2*n, min(latN, 50))
		if err != nil {
			return err
		}
		quantiles("APPEND to EXISTS at a bare idling client (the server's part)", idleFloor)
	}
	return nil
}

// idleLatency measures how long the server takes to announce an APPEND to
// a client in IDLE: the part of the latency no client can remove.
func idleLatency(dv *dovecottest.Server, tpls []template, from, count int) ([]time.Duration, error) {
	exists := make(chan struct{}, 1)
	c, err := imapclient.DialInsecure(dv.Addr, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				select {
				case exists <- struct{}{}:
				default:
				}
			}
		},
	}})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Login(dovecottest.User, dovecottest.Password).Wait(); err != nil {
		return nil, err
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		return nil, err
	}
	app, err := dv.Dial()
	if err != nil {
		return nil, err
	}
	defer app.Close()
	var out []time.Duration
	for i := from; i < from+count; i++ {
		idle, err := c.Idle()
		if err != nil {
			return nil, err
		}
		select {
		case <-exists:
		default:
		}
		raw, _ := gen(tpls, i)
		start := time.Now()
		if _, err := dovecottest.Append(app, "INBOX", raw); err != nil {
			return nil, err
		}
		select {
		case <-exists:
			out = append(out, time.Since(start))
		case <-time.After(10 * time.Second):
			return nil, errors.New("no EXISTS within 10s of an APPEND")
		}
		if err := idle.Close(); err != nil {
			return nil, err
		}
		if err := idle.Wait(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// floor times one UID FETCH 1:* BODY.PEEK[] of every body, read to the
// end and dropped.
func floor(dv *dovecottest.Server) (time.Duration, error) {
	start := time.Now()
	c, err := dv.Dial()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return 0, err
	}
	cmd := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		for item := msg.Next(); item != nil; item = msg.Next() {
			if b, ok := item.(imapclient.FetchItemDataBodySection); ok && b.Literal != nil {
				if _, err := io.Copy(io.Discard, b.Literal); err != nil {
					return 0, err
				}
			}
		}
	}
	if err := cmd.Close(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// mbsync times mbsync pulling the INBOX into a fresh Maildir.
func mbsync(dv *dovecottest.Server, work string) (time.Duration, error) {
	dir := filepath.Join(work, "mbsync")
	if err := os.MkdirAll(filepath.Join(dir, "local"), 0o700); err != nil {
		return 0, err
	}
	host, port, _ := net.SplitHostPort(dv.Addr)
	rc := fmt.Sprintf(`IMAPAccount bench
Host %s
Port %s
User %s
Pass %s
SSLType None
AuthMechs LOGIN

IMAPStore bench-remote
Account bench

MaildirStore bench-local
Path %[5]s/local/
Inbox %[5]s/local/INBOX

Channel bench
Far :bench-remote:
Near :bench-local:
Patterns INBOX
Create Near
Sync Pull
SyncState *
`, host, port, dovecottest.User, dovecottest.Password, dir)
	rcPath := filepath.Join(dir, "mbsyncrc")
	if err := os.WriteFile(rcPath, []byte(rc), 0o600); err != nil {
		return 0, err
	}
	start := time.Now()
	out, err := exec.Command("mbsync", "-c", rcPath, "-q", "bench").CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("mbsync: %v: %s", err, out)
	}
	return d, nil
}

type drainResult struct {
	total, startup time.Duration
	acted          time.Duration // until the actions stage has handled every case event
	peakRSS        int64
	latencies      []time.Duration
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// drain starts serve on a fresh data directory (its own embedded NATS, or
// natsURL), waits until every notice is a case, reads serve's peak RSS,
// then measures the APPEND latency latN times, and stops serve.
func drain(bin string, dv *dovecottest.Server, work, name string, n int, natsURL string, latN int, tpls []template) (drainResult, error) {
	var res drainResult
	sv, err := startServe(bin, dv, work, name, natsURL, "")
	if err != nil {
		return res, err
	}
	defer sv.stop()
	nc, exited, logf, start := sv.nc, sv.exited, sv.log, sv.start
	js, err := jetstream.New(nc)
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Wait until the cases stream holds a case event per notice; the
	// time of the last one's event is when the last case was made.
	var st jetstream.Stream
	for {
		if st == nil {
			st, _ = js.Stream(ctx, pipeline.StreamCases)
		}
		if st != nil {
			info, err := st.Info(ctx)
			if err == nil && info.State.Msgs >= uint64(n) {
				last, err := st.GetLastMsgForSubject(ctx, ">")
				if err != nil {
					return res, err
				}
				ev, err := event.Parse(last.Data)
				if err != nil {
					return res, err
				}
				res.total = ev.Time.Sub(start)
				break
			}
		}
		select {
		case err := <-exited:
			exited <- err
			return res, fmt.Errorf("%s exited: %v (log in %s)", name, err, logf.Name())
		case <-time.After(50 * time.Millisecond):
		}
		if ctx.Err() != nil {
			return res, fmt.Errorf("%s: not every notice became a case within 10 minutes", name)
		}
	}
	res.peakRSS, err = peakRSS(sv.cmd.Process.Pid)
	if err != nil {
		return res, err
	}
	res.startup = firstLogin(logf.Name(), start)
	fmt.Printf("%s: %d cases %.3f s after the start\n", name, n, res.total.Seconds())
	// The actions stage works on beside the cases: when has it handled
	// every case event (nothing pending, nothing unacknowledged)?
	for {
		cons, err := js.Consumer(ctx, pipeline.StreamCases, "actions")
		if err == nil {
			if info, err := cons.Info(ctx); err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream >= uint64(n) {
				res.acted = time.Since(start)
				break
			}
		}
		select {
		case err := <-exited:
			exited <- err
			return res, fmt.Errorf("%s exited: %v (log in %s)", name, err, logf.Name())
		case <-time.After(20 * time.Millisecond):
		}
		if ctx.Err() != nil {
			return res, fmt.Errorf("%s: the actions stage did not handle every case event within 10 minutes", name)
		}
	}
	fmt.Printf("%s: every case event acted on %.3f s after the start\n", name, res.acted.Seconds())

	if latN > 0 {
		res.latencies, err = latency(nc, dv, tpls, n, latN)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// served is a running serve subprocess and a NATS connection to its
// broker.
type served struct {
	cmd    *exec.Cmd
	nc     *nats.Conn
	exited chan error
	log    *os.File
	start  time.Time
}

// startServe writes a configuration for mailbox be on dv (plus extra, YAML
// appended at the end; with folder given, serve watches that folder) in
// work/name and starts serve with it, its own embedded NATS unless natsURL
// is given; it returns once NATS answers.
func startServe(bin string, dv *dovecottest.Server, work, name, natsURL, extra string) (*served, error) {
	dir := filepath.Join(work, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	natsAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	pw := filepath.Join(dir, "imap-password")
	if err := os.WriteFile(pw, []byte(dovecottest.Password+"\n"), 0o600); err != nil {
		return nil, err
	}
	natsConf := "  listen: " + natsAddr
	if natsURL != "" {
		natsConf = "  url: " + natsURL
	}
	cfg := fmt.Sprintf(`data_dir: %s/data
nats:
%s
http:
  listen: %s
log:
  level: info
  format: json
mailboxes:
  - name: be
    superusers: [martina.graf@be.ch]
    authserv_id: mx.be.ch
    address: %s
    tls: none
    username: %s
    password_file: %s
`, dir, natsConf, httpAddr, dv.Addr, dovecottest.User, pw) + extra
	cfgPath := filepath.Join(dir, "eiamtriage.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	sv := &served{cmd: cmd, exited: make(chan error, 1), log: logf, start: time.Now()}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { sv.exited <- cmd.Wait() }()
	url := natsURL
	if url == "" {
		url = "nats://" + natsAddr
	}
	for {
		sv.nc, err = nats.Connect(url, nats.Timeout(time.Second))
		if err == nil {
			return sv, nil
		}
		select {
		case err := <-sv.exited:
			sv.exited <- err
			sv.stop()
			return nil, fmt.Errorf("%s exited: %v (log in %s)", name, err, logf.Name())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(sv.start) > time.Minute {
			sv.stop()
			return nil, fmt.Errorf("%s: NATS at %s not up after a minute", name, url)
		}
	}
}

// stop interrupts serve (killing it after 20 s) and closes what it holds.
func (sv *served) stop() {
	if sv.nc != nil {
		sv.nc.Close()
	}
	_ = sv.cmd.Process.Signal(os.Interrupt)
	select {
	case <-sv.exited:
	case <-time.After(20 * time.Second):
		_ = sv.cmd.Process.Kill()
		<-sv.exited
	}
	sv.log.Close()
}

// escalationLatency starts serve on a folder of its own with an SMTP sink
// as its relay, appends latN wrong-person notices one at a time, and
// measures each from the start of its APPEND to the moment the sink has
// accepted its escalation. One warm-up notice first creates the folder and
// is not counted.
func escalationLatency(bin string, dv *dovecottest.Server, work string, tpls []template, from, latN int) ([]time.Duration, error) {
	var wrong *template
	for i := range tpls {
		if strings.Contains(templates[i], "wrong-person") {
			wrong = &tpls[i]
		}
	}
	if wrong == nil {
		return nil, errors.New("no wrong-person template")
	}
	one := []template{*wrong}
	sink, err := smtpsink.New(smtpsink.Options{})
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	c, err := dv.Dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	warm, warmPID := gen(one, from)
	if _, err := dovecottest.Append(c, "Escalations", warm); err != nil {
		return nil, err
	}
	sv, err := startServe(bin, dv, work, "serve-escalation", "", fmt.Sprintf(`    folder: Escalations
smtp:
  address: %q
  tls: none
escalation:
  to: [spiges@bfs.admin.ch]
actions:
  caps:
    user_mail: 100000
    escalation: 100000
    deactivate: 100000
`, sink.Addr()))
	if err != nil {
		return nil, err
	}
	defer sv.stop()
	escalated := func(pid string, seen *int) bool {
		ms := sink.Accepted()
		for _, m := range ms[*seen:] {
			if smtpsink.Header(m.Raw, outbox.HeaderKind) == outbox.KindEscalation && strings.Contains(smtpsink.Header(m.Raw, outbox.HeaderCase), pid) {
				return true
			}
		}
		*seen = max(0, len(ms)-1)
		return false
	}
	wait := func(pid string, seen *int, limit time.Duration) error {
		deadline := time.Now().Add(limit)
		for !escalated(pid, seen) {
			select {
			case err := <-sv.exited:
				sv.exited <- err
				return fmt.Errorf("serve-escalation exited: %v (log in %s)", err, sv.log.Name())
			case <-time.After(time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("no escalation of profile %s within %s (log in %s)", pid, limit, sv.log.Name())
			}
		}
		return nil
	}
	seen := 0
	if err := wait(warmPID, &seen, time.Minute); err != nil {
		return nil, err
	}
	var out []time.Duration
	for i := from + 1; i <= from+latN; i++ {
		raw, pid := gen(one, i)
		start := time.Now()
		if _, err := dovecottest.Append(c, "Escalations", raw); err != nil {
			return nil, err
		}
		if err := wait(pid, &seen, 10*time.Second); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// peakRSS reads VmHWM (the peak resident set) of a process.
func peakRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/PID/status")
}

// firstLogin finds when serve's watcher first connected (its "connected"
// log line), as time since start.
func firstLogin(logPath string, start time.Time) time.Duration {
	data, err := os.ReadFile(logPath)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		var l struct {
			TS  string `json:"ts"`
			Msg string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "connected" {
			if ts, err := time.Parse("2006-01-02T15:04:05.000Z0700", l.TS); err == nil {
				return ts.Sub(start)
			}
		}
	}
	return 0
}

// latency appends latN new notices one at a time and measures each from
// the start of its APPEND to the arrival of its case event.
func latency(nc *nats.Conn, dv *dovecottest.Server, tpls []template, from, latN int) ([]time.Duration, error) {
	sub, err := nc.SubscribeSync("eiam.case.>")
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	c, err := dv.Dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var out []time.Duration
	for i := from; i < from+latN; i++ {
		raw, pid := gen(tpls, i)
		start := time.Now()
		if _, err := dovecottest.Append(c, "INBOX", raw); err != nil {
			return nil, err
		}
		for {
			msg, err := sub.NextMsg(10 * time.Second)
			if err != nil {
				return nil, fmt.Errorf("no case event for APPEND %d within 10s: %w", i-from, err)
			}
			if bytes.Contains(msg.Data, []byte(pid)) {
				out = append(out, time.Since(start))
				break
			}
		}
	}
	return out, nil
}
