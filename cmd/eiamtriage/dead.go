package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// deadEntry is one line of `dead list`: a dead letter, a quarantined mail
// or a mail that could not be read.
type deadEntry struct {
	Seq     uint64    `json:"seq"`
	At      time.Time `json:"at"`
	Subject string    `json:"subject"`
	Type    string    `json:"type"`
	// Stage and Deliveries are a dead letter's; Mailbox, Kind, MailID and
	// Source a quarantined or unreadable mail's.
	Stage      string `json:"stage,omitempty"`
	Deliveries uint64 `json:"deliveries,omitempty"`
	Mailbox    string `json:"mailbox,omitempty"`
	Kind       string `json:"kind,omitempty"`
	MailID     string `json:"mail_id,omitempty"`
	Source     string `json:"source,omitempty"`
	Reason     string `json:"reason"`
}

func runDeadList(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dead list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "the daemon's configuration `file`")
	asJSON := fs.Bool("json", false, "one JSON object per entry, one a line")
	if _, err := parseFlags(fs, args); err != nil {
		return flagError(err)
	}
	_, b, code := openClient(ctx, *cfgPath, "dead list", stderr)
	if code != 0 {
		return code
	}
	defer b.Close()
	entries, err := readDead(ctx, b.JS)
	if err != nil {
		printf(stderr, "eiamtriage dead list: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := jsonLines(stdout)
		for _, e := range entries {
			_ = enc.Encode(e)
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tWHEN\tWHAT\tREASON")
	for _, e := range entries {
		var what string
		switch {
		case e.Stage != "":
			what = fmt.Sprintf("dead letter of %s after %d deliveries", e.Stage, e.Deliveries)
		case e.Subject == event.SubjectUnreadable:
			what = "unreadable mail from mailbox " + e.Mailbox + " (" + e.Kind + ", " + e.Source + ")"
		default:
			what = "quarantined from mailbox " + e.Mailbox + " (" + e.Kind + ")"
		}
		printf(tw, "%d\t%s\t%s\t%s\n", e.Seq, e.At.Local().Format("2006-01-02 15:04"), what, strings.ReplaceAll(e.Reason, "\n", " "))
	}
	tw.Flush()
	return 0
}

// readDead reads the whole dead-letter stream as entries.
func readDead(ctx context.Context, js jetstream.JetStream) ([]deadEntry, error) {
	recs, err := pipeline.ReadDead(ctx, js, 0)
	out := make([]deadEntry, len(recs))
	for i, r := range recs {
		e := deadEntry{Seq: r.Seq, Subject: r.Subject, At: r.Event.Time, Type: r.Event.Type}
		switch {
		case r.Letter != nil:
			e.Stage, e.Deliveries, e.Reason = r.Letter.Stage, r.Letter.Deliveries, r.Letter.Reason
		case r.Quarantined != nil || r.Unreadable != nil:
			q := r.Quarantined
			if q == nil {
				q = r.Unreadable
			}
			e.Mailbox, e.Kind, e.MailID, e.Source, e.Reason = q.Mailbox, q.Kind, q.MailID, q.Source, q.Reason
		default:
			e.Reason = r.Err.Error()
		}
		out[i] = e
	}
	return out, err
}
