package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// demoMail holds the mails the demo's mailbox receives (written by
// testdata/gen/gen_demo.py): each class, a superuser's forward, a forged
// notice and an out-of-office reply.
//
//go:embed demomail/*.eml
var demoMail embed.FS

// demoTimeout bounds the whole demo; it takes a few seconds.
const demoTimeout = 60 * time.Second

// demoConfig is the configuration the demo runs `serve` with, as an
// operator would write it; %s are filled in (data_dir, the two servers'
// addresses, the IMAP password file).
const demoConfig = `# The configuration eiamtriage demo ran serve with.
data_dir: %s
nats:
  listen: 127.0.0.1:0        # the embedded NATS, on a free port
http:
  listen: "off"
log:
  level: info
mailboxes:
  - name: be
    superusers: [martina.graf@be.ch, peter.aebi@be.ch]
    authserv_id: mx.be.ch    # the canton's boundary mail server
    address: %s             # the demo's IMAP server, inside the process
    tls: none                 # loopback only
    username: triage@be.ch
    password_file: %s
    folder: INBOX
    after: move               # a notice taken in goes to Verarbeitet
    move_to: Verarbeitet
    language: de
smtp:
  address: %s             # the demo's SMTP server, inside the process
  tls: none
  from: "eiamtriage <triage@be.ch>"
escalation:
  to: [spiges@bfs.admin.ch]
`

func runDemo(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	outDir := fs.String("out", "", "the `directory` to write the mails that were sent into (default: a new one under the system's temporary directory)")
	if _, err := parseFlags(fs, args); err != nil {
		return flagError(err)
	}
	ctx, cancel := context.WithTimeout(ctx, demoTimeout)
	defer cancel()
	d := &demo{out: stdout, began: time.Now()}
	if err := d.run(ctx, *outDir); err != nil {
		printf(stderr, "eiamtriage demo: %s\n", err)
		if d.logPath != "" {
			printf(stderr, "the service's log is in %s\n", d.logPath)
		}
		return 1
	}
	return 0
}

// demo is one run of `eiamtriage demo`.
type demo struct {
	out     io.Writer
	began   time.Time
	logPath string

	mu       sync.Mutex
	records  int            // mails the classify stage settled: a case, ignored, quarantined
	subjects map[string]int // mail id -> the mail's number in the demo
	printed  map[string]bool
}

func (d *demo) say(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	printf(d.out, "%5.1fs  "+format+"\n", append([]any{time.Since(d.began).Seconds()}, args...)...)
}

func (d *demo) run(ctx context.Context, outDir string) error {
	work, err := os.MkdirTemp("", "eiamtriage-demo-state-")
	if err != nil {
		return fmt.Errorf("create a directory for the demo's state: %w", err)
	}
	defer os.RemoveAll(work)
	if outDir == "" {
		if outDir, err = os.MkdirTemp("", "eiamtriage-demo-"); err != nil {
			return fmt.Errorf("create the output directory: %w", err)
		}
	} else if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("create the output directory %s: %w", outDir, err)
	}

	fmt.Fprintln(d.out, "eiamtriage demo: the whole loop inside this process — an IMAP mailbox, the embedded NATS,")
	fmt.Fprintln(d.out, "the pipeline of `eiamtriage serve` (ingest, classify, actions, outbox) and an SMTP server that")
	fmt.Fprintln(d.out, "keeps what the service sends. The mailbox of canton be holds 7 mails.")
	fmt.Fprintln(d.out)

	// The servers around the service.
	password := randomHex(16)
	imapSrv, err := startDemoIMAP("triage@be.ch", password)
	if err != nil {
		return err
	}
	defer imapSrv.close()
	smtpSrv, err := startDemoSMTP(func(m sentMail) { d.sent(m) })
	if err != nil {
		return err
	}
	defer smtpSrv.close()

	// The configuration, written and loaded as an operator's is.
	pwFile := filepath.Join(work, "imap-password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		return err
	}
	cfgPath := filepath.Join(outDir, "eiamtriage.yaml")
	cfgText := fmt.Sprintf(demoConfig, filepath.Join(work, "data"), imapSrv.addr(), pwFile, smtpSrv.addr())
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		return err
	}
	cfg, err := config.LoadFile(cfgPath)
	if err != nil {
		return fmt.Errorf("the demo's configuration: %w", err)
	}

	// The service, logging into a file so that the terminal shows the
	// story.
	d.logPath = filepath.Join(outDir, "serve.log")
	logFile, err := os.Create(d.logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(logFile), zap.InfoLevel))
	dm, err := newDaemon(ctx, cfg, log)
	if err != nil {
		return fmt.Errorf("start the service: %w", err)
	}
	d.subjects, d.printed = map[string]int{}, map[string]bool{}
	sub, err := dm.broker.Conn.Subscribe("eiam.>", d.event)
	if err != nil {
		dm.close()
		return fmt.Errorf("watch the events: %w", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- dm.run(runCtx) }()
	defer func() {
		_ = sub.Unsubscribe()
		stop()
		<-served
	}()

	// The mails arrive in the mailbox.
	names, err := fsNames(demoMail, "demomail")
	if err != nil {
		return err
	}
	for i, name := range names {
		raw, err := demoMail.ReadFile("demomail/" + name)
		if err != nil {
			return err
		}
		d.mu.Lock()
		d.subjects[event.MailID(raw)] = i + 1
		d.mu.Unlock()
		if err := imapSrv.deliver(raw); err != nil {
			return fmt.Errorf("deliver %s to the demo mailbox: %w", name, err)
		}
		d.say("mail %d arrives in INBOX: %s", i+1, visible(mailSubject(raw)))
	}

	// Wait until each mail is settled and every effect is done.
	if err := d.waitFor(ctx, "every mail triaged", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.records >= len(names)
	}); err != nil {
		return err
	}
	if err := d.waitSettled(ctx, dm.broker.JS); err != nil {
		return err
	}

	// The superusers' summaries, as the schedule would send them.
	d.say("the superusers' triage summaries, as the schedule (every day at 07:30) would send them:")
	if err := demoSummaries(ctx, cfg, dm, log); err != nil {
		return fmt.Errorf("send the summaries: %w", err)
	}
	if err := d.waitSettled(ctx, dm.broker.JS); err != nil {
		return err
	}

	// What was sent, as files.
	files, err := writeSent(outDir, smtpSrv.sent())
	if err != nil {
		return err
	}
	fmt.Fprintln(d.out)
	printf(d.out, "%d mails were sent; each is in %s:\n", len(smtpSrv.sent()), outDir)
	for _, f := range files {
		printf(d.out, "  %s\n", f)
	}
	fmt.Fprintln(d.out, "Nothing was sent for the forged notice (quarantined) or the out-of-office reply (not a notice).")
	printf(d.out, "The configuration it ran with is %s, the service's log %s.\n", cfgPath, d.logPath)
	printf(d.out, "Done in %.1f s.\n", time.Since(d.began).Seconds())
	return nil
}

// event prints what an event of the pipeline says, as it happens.
func (d *demo) event(m *nats.Msg) {
	ev, err := event.Parse(m.Data)
	if err != nil || d.printed[ev.ID] && !strings.HasPrefix(m.Subject, "eiam.task.") {
		return
	}
	d.mu.Lock()
	seen := d.printed[ev.ID]
	d.printed[ev.ID] = true
	d.mu.Unlock()
	if seen {
		return
	}
	switch {
	case ev.Type == event.TypeCaseClassified || ev.Type == event.TypeCaseJoined:
		var ch event.CaseChanged
		if ev.Decode(&ch) != nil || ch.Case == nil {
			return
		}
		c := ch.Case
		reason := ""
		if ref := c.Ref(ch.MailID); ref != nil && len(ref.Reasons) > 0 {
			reason = ref.Reasons[0]
		}
		d.count()
		d.say("mail %d → %s (rule %d), case %s: %s", d.number(ch.MailID), strings.ToUpper(string(c.Class)), c.Rule, visible(c.ID), visible(reason))
		switch c.Class {
		case event.ClassWrongPerson:
			d.say("        a stranger may reach health data: escalation to SpiGes support, alert to the superuser, deactivate task")
		case event.ClassPrivateEmail:
			d.say("        signed in with a private address: a mail to the entered professional address, deactivate and recreate tasks")
		case event.ClassReview:
			d.say("        a person must decide: asked of the superusers (eiamtriage cases decide)")
		case event.ClassNegligible:
			d.say("        nothing to do: eIAM updates the data by itself")
		}
	case ev.Type == event.TypeMailQuarantined:
		var ig event.MailIgnored
		if ev.Decode(&ig) != nil {
			return
		}
		d.count()
		d.say("mail %d → QUARANTINED (%s): %s", d.number(ig.MailID), visible(ig.Kind), visible(firstSentence(ig.Reason)))
		d.say("        possibly forged: never a case, nothing is sent; shown to the superusers as suspicious")
	case ev.Type == event.TypeMailIgnored:
		var ig event.MailIgnored
		if ev.Decode(&ig) != nil {
			return
		}
		d.count()
		d.say("mail %d → not a notice (%s): %s; nothing is sent", d.number(ig.MailID), visible(ig.Kind), visible(firstSentence(ig.Reason)))
	case strings.HasPrefix(m.Subject, "eiam.task.created"):
		var t struct {
			Kind, Case string
		}
		if ev.Decode(&t) == nil {
			d.say("        task for the superuser: %s the profile of case %s in the eIAM portal", visible(t.Kind), visible(t.Case))
		}
	}
}

func (d *demo) count() {
	d.mu.Lock()
	d.records++
	d.mu.Unlock()
}

func (d *demo) number(mailID string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.subjects[mailID]
}

// sent prints a mail the SMTP server accepted.
func (d *demo) sent(m sentMail) {
	h, err := mail.CreateReader(bytes.NewReader(m.Raw))
	kind, subject := "mail", ""
	if err == nil {
		kind = h.Header.Get(outbox.HeaderKind)
		subject, _ = h.Header.Subject()
	}
	d.say("sent: %s to %s — %s", visible(kind), visible(strings.Join(m.To, ", ")), visible(subject))
}

// waitFor polls cond until it holds or ctx ends.
func (d *demo) waitFor(ctx context.Context, what string, cond func() bool) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for %s", what)
		case <-t.C:
		}
	}
	return nil
}

// waitSettled waits until every consumer of every stream has nothing
// pending and nothing unacknowledged, and the outbox has delivered every
// mail, twice in a row (an effect may publish a further message).
func (d *demo) waitSettled(ctx context.Context, js jetstream.JetStream) error {
	quiet := 0
	return d.waitFor(ctx, "the service to finish its work", func() bool {
		if settled(ctx, js) {
			quiet++
		} else {
			quiet = 0
		}
		return quiet >= 3
	})
}

func settled(ctx context.Context, js jetstream.JetStream) bool {
	for _, stream := range []string{pipeline.StreamNotices, pipeline.StreamCases, pipeline.StreamTasks} {
		st, err := js.Stream(ctx, stream)
		if err != nil {
			return false
		}
		for info := range st.ListConsumers(ctx).Info() {
			if info.NumPending > 0 || info.NumAckPending > 0 {
				return false
			}
		}
	}
	return true
}

// writeSent writes each mail as an .eml file, and the HTML part of each
// summary as an .html file, named by their order, kind and recipient.
func writeSent(dir string, sent []sentMail) ([]string, error) {
	var files []string
	for i, m := range sent {
		kind, html := "mail", ""
		if r, err := mail.CreateReader(bytes.NewReader(m.Raw)); err == nil {
			kind = r.Header.Get(outbox.HeaderKind)
			html = htmlPart(r)
		}
		base := fmt.Sprintf("%02d-%s-%s", i+1, safeName(kind), safeName(strings.Join(m.To, "+")))
		if err := os.WriteFile(filepath.Join(dir, base+".eml"), m.Raw, 0o644); err != nil {
			return nil, err
		}
		files = append(files, base+".eml")
		if kind == outbox.KindSummary && html != "" {
			if err := os.WriteFile(filepath.Join(dir, base+".html"), []byte(html), 0o644); err != nil {
				return nil, err
			}
			files = append(files, base+".html")
		}
	}
	return files, nil
}

// htmlPart returns the first text/html part of a mail.
func htmlPart(r *mail.Reader) string {
	for {
		p, err := r.NextPart()
		if err != nil {
			return ""
		}
		if h, ok := p.Header.(*mail.InlineHeader); ok {
			if ct, _, _ := h.ContentType(); ct == "text/html" {
				b, _ := io.ReadAll(io.LimitReader(p.Body, 8<<20))
				return string(b)
			}
		}
	}
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9@.+-]+`)

func safeName(s string) string {
	s = unsafeName.ReplaceAllString(s, "_")
	if len(s) > 60 {
		s = s[:60]
	}
	if s == "" {
		s = "mail"
	}
	return s
}

func mailSubject(raw []byte) string {
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		return "(no subject)"
	}
	s, _ := r.Header.Subject()
	return s
}

func firstSentence(s string) string {
	if i := strings.Index(s, "; "); i > 0 {
		return s[:i]
	}
	return s
}

func fsNames(f embed.FS, dir string) ([]string, error) {
	entries, err := f.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, errors.New("demo: no mails embedded")
	}
	return names, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// demoSummaries sends the superusers' summaries now, exactly as `summaries
// send` does.
func demoSummaries(ctx context.Context, cfg *config.Config, dm *daemon, log *zap.Logger) error {
	opts, err := outbox.OptionsFrom(&cfg.SMTP)
	if err != nil {
		return err
	}
	ob, err := outbox.Open(ctx, dm.broker.JS, opts)
	if err != nil {
		return err
	}
	st, err := newActions(ctx, cfg, dm.broker, ob, log.Named("demo"), nil)
	if err != nil {
		return err
	}
	_, err = st.SendSummaries(ctx, "")
	return err
}
