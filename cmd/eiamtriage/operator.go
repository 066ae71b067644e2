package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/eiamtriage/eiamtriage/actions"
	"github.com/eiamtriage/eiamtriage/ingest"
	"github.com/eiamtriage/eiamtriage/internal/broker"
	"github.com/eiamtriage/eiamtriage/internal/cases"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// openClient loads the configuration named by --config and connects to
// the NATS of the daemon it describes (never starting a server of its own),
// reporting problems on stderr. code is 0 when both worked, 2 for a bad
// configuration, 1 when NATS cannot be reached.
func openClient(ctx context.Context, cfgPath, cmd string, stderr io.Writer) (cfg *config.Config, b *broker.Broker, code int) {
	cfg, ok := loadConfig(cfgPath, cmd, stderr)
	if !ok {
		return nil, nil, 2
	}
	b, code = dial(ctx, cfg, cmd, stderr)
	return cfg, b, code
}

// dial connects to the NATS of the daemon cfg describes, reporting a
// failure on stderr: code 0, or 1 when NATS cannot be reached.
func dial(ctx context.Context, cfg *config.Config, cmd string, stderr io.Writer) (*broker.Broker, int) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	b, err := broker.Open(cctx, broker.ClientFromConfig(cfg, "eiamtriage-"+strings.ReplaceAll(cmd, " ", "-")), zap.NewNop())
	if err != nil {
		printf(stderr, "eiamtriage %s: %v\n", cmd, err)
		if cfg.NATS.URL == "" && !strings.HasSuffix(cfg.NATS.Listen, ":0") {
			printf(stderr, "is `eiamtriage serve` running with this configuration? It runs the embedded NATS on %s\n", cfg.NATS.Listen)
		}
		return nil, 1
	}
	return b, 0
}

func runPublish(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "the daemon's configuration `file`")
	mailbox := fs.String("mailbox", "", "the `name` of the mailbox the mails are taken in as if they came from (may be left out when one is configured)")
	paths, err := parseFlags(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(paths) == 0 {
		fmt.Fprintln(stderr, "usage: eiamtriage publish --config FILE [--mailbox NAME] PATH...  (PATH: .eml file, directory, or - for standard input)")
		return 2
	}
	cfg, ok := loadConfig(*cfgPath, "publish", stderr)
	if !ok {
		return 2
	}
	mb, err := cfg.Mailbox(*mailbox)
	if err != nil {
		printf(stderr, "eiamtriage publish: %v\n", err)
		return 2
	}
	reader, err := ingest.ReaderFor(cfg)
	if err != nil {
		printf(stderr, "eiamtriage publish: %v\n", err)
		return 2
	}
	b, code := dial(ctx, cfg, "publish", stderr)
	if code != 0 {
		return code
	}
	defer b.Close()
	in, err := ingest.NewIntake(ctx, b.JS, reader, int64(cfg.Pipeline.MaxMailSize), nil)
	if err != nil {
		printf(stderr, "eiamtriage publish: %v\n", err)
		return 1
	}
	// The run ends early, with every file after counted as not tried,
	// when the connection to NATS is gone (the daemon stopped: waiting
	// would never end), when a mail is not taken in within submitTimeout,
	// or on SIGINT.
	runCtx, stop := watchConnection(ctx, b)
	defer stop()
	var n, dup, failed, notTried int
	var stopped error
	_ = eachMessage(paths, stdin, func(source string, raw []byte, rerr error) {
		if stopped == nil && runCtx.Err() != nil {
			stopped = context.Cause(runCtx)
		}
		if stopped != nil {
			notTried++
			return
		}
		if rerr != nil {
			failed++
			printf(stderr, "eiamtriage publish: %s: %v\n", source, rerr)
			return
		}
		if err := storeFull(cfg); err != nil {
			// A full embedded store answers with nothing but timeouts.
			stopped = err
			notTried++
			return
		}
		sctx, cancel := context.WithTimeout(runCtx, submitTimeout)
		mr, err := in.Submit(sctx, raw, mb.Name, "publish:"+source)
		cancel()
		if err != nil {
			failed++
			switch {
			case runCtx.Err() != nil:
				stopped = context.Cause(runCtx)
				printf(stderr, "eiamtriage publish: %s: not known whether it was taken in (publish it again: a mail is taken in once)\n", source)
			case errors.Is(err, pipeline.ErrStoreFull):
				stopped = fmt.Errorf("the daemon's store is full (%s): free space, the daemon takes mail in again by itself", storeName(cfg))
				printf(stderr, "eiamtriage publish: %v\n", err)
			case errors.Is(err, context.DeadlineExceeded):
				stopped = storeFull(cfg)
				if stopped == nil {
					stopped = fmt.Errorf("%s was not taken in within %s: the daemon does not answer (see its /readyz and its log)", source, submitTimeout)
				}
				printf(stderr, "eiamtriage publish: %v\n", err)
			default:
				printf(stderr, "eiamtriage publish: %v\n", err)
			}
			return
		}
		if mr.Duplicate {
			dup++
			printf(stdout, "%s\t%s\t(already taken in: not announced again)\n", mr.MailID[:12], source)
			return
		}
		n++
		printf(stdout, "%s\t%s\n", mr.MailID[:12], source)
	})
	if stopped != nil {
		printf(stderr, "eiamtriage publish: stopped: %v\n", stopped)
	}
	printf(stderr, "published %d mail(s), %d already taken in, %d failed, %d not tried\n", n, dup, failed, notTried)
	if notTried > 0 {
		printf(stderr, "publish the files not tried again once the daemon runs: a mail already taken in is recognised\n")
	}
	if failed > 0 || notTried > 0 || stopped != nil {
		return 1
	}
	return 0
}

// storeFull reports, for the embedded server, whether its store under
// data_dir is full (the command runs on the daemon's host with its
// configuration).
func storeFull(cfg *config.Config) error {
	if !cfg.NATS.Embedded() {
		return nil
	}
	if err := broker.CheckStoreSpace(filepath.Join(cfg.DataDir, "nats")); err != nil {
		return fmt.Errorf("the daemon's store under data_dir %s is full: %w", cfg.DataDir, err)
	}
	return nil
}

// storeName names the daemon's store in a message.
func storeName(cfg *config.Config) string {
	if cfg.NATS.Embedded() {
		return "data_dir " + cfg.DataDir
	}
	return "the NATS server at " + cfg.NATS.URL
}

// submitTimeout bounds the taking in of one mail by publish (a mail of up
// to pipeline.max_mail_size into the object store included).
const submitTimeout = 30 * time.Second

// reconnectPatience is how long a command waits for a lost connection to
// NATS to come back (a cluster node failing over) before it gives up.
const reconnectPatience = 5 * time.Second

// watchConnection returns a context that ends with ctx, or with a cause
// naming the server when b's connection has been lost for
// reconnectPatience or closed. stop releases the watch.
func watchConnection(ctx context.Context, b *broker.Broker) (context.Context, func()) {
	wctx, cancel := context.WithCancelCause(ctx)
	ch := b.Conn.StatusChanged(nats.CONNECTED, nats.RECONNECTING, nats.CLOSED)
	url := b.Conn.ConnectedUrlRedacted()
	var wg sync.WaitGroup
	wg.Go(func() {
		var timer <-chan time.Time
		for {
			select {
			case st, ok := <-ch:
				switch {
				case !ok:
					return
				case st == nats.RECONNECTING:
					timer = time.After(reconnectPatience)
				case st == nats.CONNECTED:
					timer = nil
				case st == nats.CLOSED:
					cancel(fmt.Errorf("the connection to NATS at %s was closed", url))
					return
				}
			case <-timer:
				cancel(fmt.Errorf("lost the connection to NATS at %s for %s (has `eiamtriage serve` stopped?)", url, reconnectPatience))
				return
			case <-wctx.Done():
				return
			}
		}
	})
	return wctx, func() {
		cancel(nil)
		b.Conn.RemoveStatusListener(ch)
		wg.Wait()
	}
}

// openCases opens the case store, and the decisions people took on
// review cases (by case id), for cases list and cases show.
func openCases(ctx context.Context, cfgPath, cmd string, stderr io.Writer) (store *cases.Store, decisions map[string]actions.Decision, closeFn func(), code int) {
	_, b, code := openClient(ctx, cfgPath, cmd, stderr)
	if code != 0 {
		return nil, nil, nil, code
	}
	kv, err := b.JS.KeyValue(ctx, pipeline.BucketCases)
	if err != nil {
		b.Close()
		printf(stderr, "eiamtriage %s: open the case bucket %s: %v (has `eiamtriage serve` run with this configuration?)\n", cmd, pipeline.BucketCases, err)
		return nil, nil, nil, 1
	}
	decisions, err = actions.Decisions(ctx, b.JS)
	if err != nil {
		b.Close()
		printf(stderr, "eiamtriage %s: read the decisions on review cases: %v\n", cmd, err)
		return nil, nil, nil, 1
	}
	return cases.NewStore(kv, nil), decisions, b.Close, 0
}

// listedCase is a case as cases list and cases show print it in JSON:
// the record and, for a review case a person decided, the decision.
type listedCase struct {
	*event.Case
	Decision *actions.Decision `json:"decision,omitempty"`
}

func withDecision(c *event.Case, decisions map[string]actions.Decision) listedCase {
	lc := listedCase{Case: c}
	if d, ok := decisions[c.ID]; ok {
		lc.Decision = &d
	}
	return lc
}

// classLine is a case's class as a person reads it: for a decided review
// case, the class it was decided to be.
func (lc listedCase) classLine() string {
	if lc.Decision != nil {
		return string(lc.Class) + " → " + string(lc.Decision.Class) + " (decided)"
	}
	return string(lc.Class)
}

func runCasesList(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cases list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "the daemon's configuration `file`")
	asJSON := fs.Bool("json", false, "one JSON object per case, one a line")
	class := fs.String("class", "", "only cases of this `class` (negligible, review, private-email, wrong-person; a decided review case is of review and of its decided class)")
	mailbox := fs.String("mailbox", "", "only cases of this mailbox (`name`)")
	if _, err := parseFlags(fs, args); err != nil {
		return flagError(err)
	}
	if *class != "" {
		if _, err := event.ParseClass(*class); err != nil {
			printf(stderr, "eiamtriage cases list: --class: %v\n", strings.TrimPrefix(err.Error(), "event: "))
			return 2
		}
	}
	store, decisions, closeFn, code := openCases(ctx, *cfgPath, "cases list", stderr)
	if code != 0 {
		return code
	}
	defer closeFn()
	all, err := store.List(ctx)
	if err != nil {
		printf(stderr, "eiamtriage cases list: %v\n", err)
		return 1
	}
	var list []listedCase
	for _, c := range all {
		lc := withDecision(c, decisions)
		if *class != "" && string(c.Class) != *class && (lc.Decision == nil || string(lc.Decision.Class) != *class) || *mailbox != "" && c.Mailbox != *mailbox {
			continue
		}
		list = append(list, lc)
	}
	if *asJSON {
		enc := jsonLines(stdout)
		for _, c := range list {
			_ = enc.Encode(c)
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tMAILBOX\tCLASS\tLANG\tENTERED\tSIGNED IN\tNOTICES\tUPDATED")
	for _, c := range list {
		printf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", c.ID, c.Mailbox, c.classLine(), c.Language,
			personLine(c.Expected.GivenName, c.Expected.FamilyName, c.Expected.Email),
			personLine(c.Actual.GivenName, c.Actual.FamilyName, c.Actual.Email),
			len(c.Notices), c.Updated.Local().Format("2006-01-02 15:04"))
	}
	tw.Flush()
	return 0
}

func personLine(given, family, email string) string {
	name := strings.TrimSpace(given + " " + family)
	if name == "" {
		name = "—"
	}
	if email == "" {
		email = "—"
	}
	return name + " <" + email + ">"
}

func runCasesShow(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cases show", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "the daemon's configuration `file`")
	asJSON := fs.Bool("json", false, "print the case as JSON")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: eiamtriage cases show --config FILE [--json] ID  (ID: the case id from `cases list`, or the eIAM profile id)")
		return 2
	}
	store, decisions, closeFn, code := openCases(ctx, *cfgPath, "cases show", stderr)
	if code != 0 {
		return code
	}
	defer closeFn()
	id := pos[0]
	c, _, err := store.Get(ctx, id)
	if errors.Is(err, cases.ErrNotFound) {
		// An eIAM profile id: its case key (hashed when it holds
		// characters a key cannot, such as CH.12345).
		if key := cases.KeyForProfile(id); key != "" && key != id {
			c, _, err = store.Get(ctx, key)
		}
	}
	if err != nil {
		printf(stderr, "eiamtriage cases show: %v\n", err)
		return 1
	}
	lc := withDecision(c, decisions)
	if *asJSON {
		enc := jsonLines(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(lc)
		return 0
	}
	printf(stdout, "case %s (mailbox %s): %s (rule %d, names %s)\n", c.ID, c.Mailbox, strings.ToUpper(string(c.Class)), c.Rule, orDash(c.Names))
	if d := lc.Decision; d != nil {
		printf(stdout, "  decided %s by %s on %s: %s\n", strings.ToUpper(string(d.Class)), d.By, d.At.Local().Format("02.01.2006 15:04"), d.Why)
	}
	printf(stdout, "  profile %s, %s, %s, signed in %s, language %s\n", orDash(c.ProfileID), orDash(c.Application), orDash(c.Organisation), orDash(formatTime(c.SignedInAt)), c.Language)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  \tentered in the portal\tsigned-in user")
	printf(tw, "  given name\t%s\t%s\n", orDash(c.Expected.GivenName), orDash(c.Actual.GivenName))
	printf(tw, "  family name\t%s\t%s\n", orDash(c.Expected.FamilyName), orDash(c.Actual.FamilyName))
	printf(tw, "  e-mail\t%s\t%s\n", orDash(c.Expected.Email), orDash(c.Actual.Email))
	tw.Flush()
	for _, r := range c.Reasons {
		printf(stdout, "  - %s\n", r)
	}
	for _, p := range c.Problems {
		printf(stdout, "  ! %s\n", p)
	}
	printf(stdout, "  %d notice(s):\n", len(c.Notices))
	for _, n := range c.Notices {
		via := "mailbox " + n.Mailbox + ", " + string(n.Delivery)
		if len(n.Forwarders) > 0 {
			via += " by " + strings.Join(n.Forwarders, " via ")
		}
		if n.AddressedTo != "" {
			via += ", to " + n.AddressedTo
		}
		dup := ""
		if n.Duplicates > 0 {
			dup = fmt.Sprintf(", delivered %d more time(s)", n.Duplicates)
		}
		printf(stdout, "    %s  %s  %s  %s%s\n", n.ReceivedAt.Local().Format("2006-01-02 15:04"), n.Change, n.Class, via, dup)
	}
	return 0
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format("02.01.2006 15:04")
}
