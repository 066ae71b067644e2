package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/internal/broker"
)

// openOutbox connects to the daemon's NATS and opens the outbox ledger.
func openOutbox(ctx context.Context, cfgPath, cmd string, stderr io.Writer) (*outbox.Outbox, *broker.Broker, int) {
	cfg, b, code := openClient(ctx, cfgPath, cmd, stderr)
	if code != 0 {
		return nil, nil, code
	}
	o, err := outbox.Open(ctx, b.JS, outbox.Options{From: cfg.SMTP.From})
	if err != nil {
		b.Close()
		fmt.Fprintf(stderr, "eiamtriage %s: %v\n", cmd, err)
		return nil, nil, 1
	}
	return o, b, 0
}

func runOutboxList(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("outbox list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "the daemon's configuration `file`")
	asJSON := fs.Bool("json", false, "one JSON object per mail, one a line")
	state := fs.String("state", "", "only mails in this `state` (queued, sending, sent, failed, dry-run, unknown-outcome)")
	mailbox := fs.String("mailbox", "", "only mails of this mailbox (`name`)")
	if _, err := parseFlags(fs, args); err != nil {
		return flagError(err)
	}
	var f outbox.Filter
	if *state != "" {
		s, err := outbox.ParseState(*state)
		if err != nil {
			fmt.Fprintf(stderr, "eiamtriage outbox list: --state: %v\n", strings.TrimPrefix(err.Error(), "outbox: "))
			return 2
		}
		f.States = []outbox.State{s}
	}
	f.Mailbox = *mailbox
	o, b, code := openOutbox(ctx, *cfgPath, "outbox list", stderr)
	if code != 0 {
		return code
	}
	defer b.Close()
	list, err := o.List(ctx, f)
	if err != nil {
		fmt.Fprintf(stderr, "eiamtriage outbox list: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := jsonLines(stdout)
		for _, e := range list {
			_ = enc.Encode(e)
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tKIND\tCASE\tMAILBOX\tATTEMPTS\tUPDATED\tTO\tSUBJECT")
	for _, e := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", safe(e.ID), e.State, safe(e.Kind), safe(orDash(e.Case)), safe(orDash(e.Mailbox)),
			e.Attempts, e.Updated.Local().Format("2006-01-02 15:04"), safe(strings.Join(append(append([]string(nil), e.To...), e.Cc...), ", ")), safe(e.Subject))
	}
	tw.Flush()
	// What a person must look at, with the relay's words and the
	// outbox's decision.
	for _, e := range list {
		if e.State != outbox.StateFailed && e.State != outbox.StateUnknownOutcome && e.LastError == "" {
			continue
		}
		fmt.Fprintf(stdout, "\n%s (%s, %d attempt(s)):\n", safe(e.ID), e.State, e.Attempts)
		if e.LastError != "" {
			fmt.Fprintf(stdout, "  last error: %s\n", safe(e.LastError))
		}
		if e.Note != "" {
			fmt.Fprintf(stdout, "  %s\n", safe(e.Note))
		}
		if e.State == outbox.StateQueued && !e.NextAttempt.IsZero() {
			fmt.Fprintf(stdout, "  next attempt %s, retried until %s\n", e.NextAttempt.Local().Format("2006-01-02 15:04:05"), e.RetryUntil.Local().Format("2006-01-02 15:04"))
		}
	}
	return 0
}

func runOutboxResend(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("outbox resend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "the daemon's configuration `file`")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: eiamtriage outbox resend --config FILE ID  (ID: a mail's id from `outbox list`)")
		return 2
	}
	o, b, code := openOutbox(ctx, *cfgPath, "outbox resend", stderr)
	if code != 0 {
		return code
	}
	defer b.Close()
	id := pos[0]
	if err := o.Resend(ctx, id); err != nil {
		fmt.Fprintf(stderr, "eiamtriage outbox resend: %s\n", safe(err.Error()))
		if errors.Is(err, outbox.ErrNotFound) || errors.Is(err, outbox.ErrInProgress) {
			return 2
		}
		return 1
	}
	e, _, err := o.Get(ctx, id)
	if err != nil {
		fmt.Fprintf(stderr, "eiamtriage outbox resend: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s queued again (resend %d, Message-ID %s); `eiamtriage outbox list` shows its outcome\n", safe(e.ID), e.Resends, safe(e.MessageID))
	return 0
}

// safe makes a value that came from a mail or a relay fit for a terminal:
// visible (visible.go), the one escaping of every command's output.
func safe(s string) string { return visible(s) }
