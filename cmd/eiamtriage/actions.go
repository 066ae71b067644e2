package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/eiamtriage/eiamtriage/actions"
	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/actions/render"
	"github.com/eiamtriage/eiamtriage/internal/broker"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/mailstore"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
	"github.com/eiamtriage/eiamtriage/internal/service"
)

// newActions builds the actions stage on b with the outbox ob.
func newActions(ctx context.Context, cfg *config.Config, b *broker.Broker, ob *outbox.Outbox, log *zap.Logger, m *actions.Metrics) (*actions.Stage, error) {
	r, err := render.New(cfg.Actions.Templates)
	if err != nil {
		return nil, err
	}
	ms, err := mailstore.Open(ctx, b.JS)
	if err != nil {
		return nil, err
	}
	return actions.New(ctx, b.JS, actions.Options{Config: cfg, Outbox: ob, Notices: ms, Renderer: r, Log: log, Metrics: m})
}

// addActions adds the actions' parts to serve: the stage on the case
// events (yielding to first, the classify stage), the consumer of
// task-done events, and the summary schedule.
func (d *daemon) addActions(ctx context.Context, cfg *config.Config, ob *outbox.Outbox, first *pipeline.Precedence, reg prometheus.Registerer, pm *pipeline.Metrics, log *zap.Logger) error {
	b := d.broker
	st, err := newActions(ctx, cfg, b, ob, log.Named(actions.Name), actions.NewMetrics(reg))
	if err != nil {
		return err
	}
	if cfg.Actions.DryRun {
		log.Warn("actions.dry_run is on: every action is recorded and rendered, no mail is sent")
	}
	for _, c := range []struct {
		cc pipeline.ConsumerConfig
		h  pipeline.Handler
	}{{actions.Consumer(cfg), st.Handle}, {actions.TaskConsumer(cfg), st.HandleTask}} {
		cc := c.cc
		cc.YieldTo = first
		cc.AckWait = time.Duration(cfg.Pipeline.AckWait)
		cc.Workers = cfg.Pipeline.Workers
		cc.Status = &pipeline.Status{}
		h := c.h
		d.svc.Add(service.Part{
			Name:  cc.Stage,
			Run:   func(ctx context.Context) error { return pipeline.Run(ctx, b.JS, cc, h, log.Named("pipeline"), pm) },
			Ready: func(ctx context.Context) error { return pipeline.Ready(ctx, b.JS, cc.Status) },
		})
	}
	d.svc.Add(service.Part{Name: "summaries", Run: func(ctx context.Context) error { return st.RunSummaries(ctx, nil) }})
	return nil
}

// openActions connects to the daemon's NATS and builds the actions stage
// for a command: mail it sends goes into the outbox, which the daemon
// delivers.
func openActions(ctx context.Context, cfgPath, cmd string, stderr io.Writer) (*actions.Stage, *config.Config, func(), int) {
	cfg, b, code := openClient(ctx, cfgPath, cmd, stderr)
	if code != 0 {
		return nil, nil, nil, code
	}
	opts, err := outbox.OptionsFrom(&cfg.SMTP)
	if err == nil {
		opts.DryRun = cfg.Actions.DryRun
		var ob *outbox.Outbox
		if ob, err = outbox.Open(ctx, b.JS, opts); err == nil {
			var st *actions.Stage
			if st, err = newActions(ctx, cfg, b, ob, zap.NewNop(), nil); err == nil {
				return st, cfg, b.Close, 0
			}
		}
	}
	b.Close()
	printf(stderr, "eiamtriage %s: %s\n", cmd, err)
	return nil, nil, nil, 1
}

// operator is who runs the command, for --by's default.
func operator() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "an operator"
}

func runTasksList(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tasks list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "the daemon's configuration `file`")
	asJSON := fs.Bool("json", false, "one JSON object per task, one a line")
	all := fs.Bool("all", false, "done tasks too")
	mailbox := fs.String("mailbox", "", "only tasks of this mailbox (`name`)")
	if _, err := parseFlags(fs, args); err != nil {
		return flagError(err)
	}
	st, _, closeFn, code := openActions(ctx, *cfgPath, "tasks list", stderr)
	if code != 0 {
		return code
	}
	defer closeFn()
	tasks, err := st.Tasks(ctx, *mailbox, *all)
	if err != nil {
		printf(stderr, "eiamtriage tasks list: %s\n", err)
		return 1
	}
	if *asJSON {
		enc := jsonLines(stdout)
		for _, t := range tasks {
			_ = enc.Encode(t)
		}
		return 0
	}
	now := time.Now()
	for _, t := range tasks {
		urgent := ""
		if t.Urgent {
			urgent = "URGENT "
		}
		printf(stdout, "%s%s  %s  mailbox %s  open for %s  profile %s  %s <%s>\n", urgent, t.ID, t.State, t.Mailbox,
			ageText(now.Sub(t.Created)), orDash(t.ProfileID), orDash(strings.TrimSpace(t.Entered.GivenName+" "+t.Entered.FamilyName)), orDash(t.Entered.Email))
		printf(stdout, "  %s\n", t.Where)
		for i, s := range t.Steps {
			printf(stdout, "  %d. %s\n", i+1, s)
		}
		if t.Done != nil {
			printf(stdout, "  done by %s at %s %s\n", t.Done.By, t.Done.At.Local().Format("2006-01-02 15:04"), t.Done.Note)
		}
	}
	if len(tasks) == 0 {
		fmt.Fprintln(stdout, "no open tasks")
	}
	return 0
}

func ageText(d time.Duration) string {
	a := render.NewAge(d)
	if a.Days > 0 {
		return fmt.Sprintf("%dd %dh", a.Days, a.Hours)
	}
	return fmt.Sprintf("%dh %dm", a.Hours, a.Minutes)
}

func runTasksDone(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tasks done", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "the daemon's configuration `file`")
	by := fs.String("by", operator(), "who did it (`name`)")
	note := fs.String("note", "", "what was done (`text`)")
	ids, err := parseFlags(fs, args)
	if err != nil {
		return flagError(err)
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "eiamtriage tasks done: --config FILE is required (start from deploy/eiamtriage.example.yaml)")
		return 2
	}
	if len(ids) == 0 {
		fmt.Fprintln(stderr, "usage: eiamtriage tasks done --config FILE [--by NAME] [--note TEXT] ID...  (ID from `eiamtriage tasks list`)")
		return 2
	}
	st, _, closeFn, code := openActions(ctx, *cfgPath, "tasks done", stderr)
	if code != 0 {
		return code
	}
	defer closeFn()
	failed := false
	for _, id := range ids {
		t, changed, err := st.CloseTask(ctx, id, *by, *note)
		switch {
		case err != nil:
			failed = true
			printf(stderr, "eiamtriage tasks done: %s\n", err)
		case !changed:
			printf(stdout, "%s was done already (by %s)\n", t.ID, t.Done.By)
		default:
			printf(stdout, "%s done\n", t.ID)
		}
	}
	if failed {
		return 1
	}
	return 0
}

func runCasesDecide(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cases decide", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "the daemon's configuration `file`")
	by := fs.String("by", "", "who decides (`name`, required)")
	why := fs.String("why", "", "why (`text`, required)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return flagError(err)
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "eiamtriage cases decide: --config FILE is required (start from deploy/eiamtriage.example.yaml)")
		return 2
	}
	if len(pos) != 2 || strings.TrimSpace(*by) == "" || strings.TrimSpace(*why) == "" {
		fmt.Fprintln(stderr, "usage: eiamtriage cases decide --config FILE ID CLASS --by NAME --why TEXT  (CLASS: negligible, private-email or wrong-person)")
		return 2
	}
	class, err := event.ParseClass(pos[1])
	if err != nil || class == event.ClassReview {
		fmt.Fprintln(stderr, "eiamtriage cases decide: CLASS is negligible, private-email or wrong-person")
		return 2
	}
	st, _, closeFn, code := openActions(ctx, *cfgPath, "cases decide", stderr)
	if code != 0 {
		return code
	}
	defer closeFn()
	d, c, err := st.Decide(ctx, pos[0], class, *by, *why)
	if err != nil {
		printf(stderr, "eiamtriage cases decide: %s\n", err)
		return 1
	}
	printf(stdout, "case %s decided %s by %s: %s\n", d.Case, d.Class, d.By, d.Why)
	effects, err := st.CaseEffects(ctx, c)
	if err != nil {
		printf(stderr, "eiamtriage cases decide: %s\n", err)
		return 1
	}
	for _, e := range effects {
		if e.Cause == actions.CauseDecision {
			printf(stdout, "  %s: %s %s%s\n", e.Kind, e.State, strings.Join(e.To, ", "), orNote(e.Note))
		}
	}
	return 0
}

func orNote(n string) string {
	if n == "" {
		return ""
	}
	return " (" + n + ")"
}

func runSummariesSend(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("summaries send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "the daemon's configuration `file`")
	mailbox := fs.String("mailbox", "", "only this mailbox's summaries (`name`)")
	if _, err := parseFlags(fs, args); err != nil {
		return flagError(err)
	}
	st, _, closeFn, code := openActions(ctx, *cfgPath, "summaries send", stderr)
	if code != 0 {
		return code
	}
	defer closeFn()
	res, err := st.SendSummaries(ctx, *mailbox)
	for _, r := range res {
		switch {
		case r.AlreadyDone:
			printf(stdout, "%s: period %s summarised before, nothing sent now\n", r.Mailbox, r.Period)
		case r.Empty:
			printf(stdout, "%s: period %s has nothing to say, nothing sent\n", r.Mailbox, r.Period)
		default:
			printf(stdout, "%s: period %s: %d summaries in the outbox (%s)\n", r.Mailbox, r.Period, len(r.Sent), strings.Join(r.Sent, ", "))
		}
	}
	if err != nil {
		printf(stderr, "eiamtriage summaries send: %s\n", err)
		return 1
	}
	return 0
}

func runActionsRelease(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("actions release", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "the daemon's configuration `file`")
	mailbox := fs.String("mailbox", "", "only this mailbox (`name`)")
	discard := fs.Bool("discard", false, "discard the held actions instead of doing them (they were forged, say)")
	list := fs.Bool("list", false, "list the held actions, release nothing")
	by := fs.String("by", operator(), "who releases (`name`)")
	if _, err := parseFlags(fs, args); err != nil {
		return flagError(err)
	}
	st, _, closeFn, code := openActions(ctx, *cfgPath, "actions release", stderr)
	if code != 0 {
		return code
	}
	defer closeFn()
	held, err := st.HeldEffects(ctx, *mailbox)
	if err != nil {
		printf(stderr, "eiamtriage actions release: %s\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HELD SINCE\tMAILBOX\tCAP\tKIND\tCASE")
	for _, e := range held {
		printf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Created.Local().Format("2006-01-02 15:04"), e.Mailbox, e.Cap, e.Kind, e.Case)
	}
	tw.Flush()
	if *list {
		return 0
	}
	res, err := st.Release(ctx, *mailbox, *discard, *by)
	if err != nil {
		printf(stderr, "eiamtriage actions release: %s\n", err)
		return 1
	}
	printf(stdout, "released %d, discarded %d, failed %d; holds lifted: %s\n", res.Released, res.Discarded, res.Failed, orDash(strings.Join(res.Holds, ", ")))
	for _, e := range res.Errors {
		printf(stderr, "eiamtriage actions release: %s\n", e)
	}
	if len(res.Errors) > 0 {
		fmt.Fprintln(stderr, "eiamtriage actions release: the holds stay on until every held action is done; run it again")
		return 1
	}
	return 0
}
