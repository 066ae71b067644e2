package main

import (
	"context"
	"errors"
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

func init() {
	register("dead list", "print dead letters and quarantined mail: dead list --config FILE [--json]", runDeadList)
}

// deadEntry is one line of `dead list`: a dead letter or a quarantined mail.
type deadEntry struct {
	Seq     uint64    `json:"seq"`
	At      time.Time `json:"at"`
	Subject string    `json:"subject"`
	Type    string    `json:"type"`
	// Stage and Deliveries are a dead letter's; Kind and MailID a
	// quarantined mail's.
	Stage      string `json:"stage,omitempty"`
	Deliveries uint64 `json:"deliveries,omitempty"`
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
		fmt.Fprintf(stderr, "eiamtriage dead list: %v\n", err)
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
		what := "quarantined (" + e.Kind + ")"
		if e.Stage != "" {
			what = fmt.Sprintf("dead letter of %s after %d deliveries", e.Stage, e.Deliveries)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", e.Seq, e.At.Local().Format("2006-01-02 15:04"), what, strings.ReplaceAll(e.Reason, "\n", " "))
	}
	tw.Flush()
	return 0
}

// readDead reads the whole dead-letter stream with an ordered consumer.
func readDead(ctx context.Context, js jetstream.JetStream) ([]deadEntry, error) {
	st, err := js.Stream(ctx, pipeline.StreamDead)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w (has `eiamtriage serve` run with this configuration?)", pipeline.StreamDead, err)
	}
	last := st.CachedInfo().State.LastSeq
	if st.CachedInfo().State.Msgs == 0 {
		return nil, nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", pipeline.StreamDead, err)
	}
	var out []deadEntry
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, context.DeadlineExceeded) {
				return out, fmt.Errorf("read stream %s: stopped before its last message %d: %w", pipeline.StreamDead, last, err)
			}
			return out, fmt.Errorf("read stream %s: %w", pipeline.StreamDead, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return out, fmt.Errorf("read stream %s: %w", pipeline.StreamDead, err)
		}
		out = append(out, deadEntryOf(meta.Sequence.Stream, msg.Subject(), msg.Data()))
		if meta.Sequence.Stream >= last {
			return out, nil
		}
	}
}

// deadEntryOf reads one message of the dead-letter stream; a message that is
// not an event of a known type is listed with what can be said of it.
func deadEntryOf(seq uint64, subject string, data []byte) deadEntry {
	e := deadEntry{Seq: seq, Subject: subject}
	ev, err := event.Parse(data)
	if err != nil {
		e.Reason = "not an event: " + err.Error()
		return e
	}
	e.At, e.Type = ev.Time, ev.Type
	switch ev.Type {
	case event.TypeDead:
		var dl event.DeadLetter
		if err := ev.Decode(&dl); err != nil {
			e.Reason = err.Error()
			return e
		}
		e.Stage, e.Deliveries, e.Reason = dl.Stage, dl.Deliveries, dl.Reason
	case event.TypeMailQuarantined:
		var ig event.MailIgnored
		if err := ev.Decode(&ig); err != nil {
			e.Reason = err.Error()
			return e
		}
		e.Kind, e.MailID, e.Source, e.Reason = ig.Kind, ig.MailID, ig.Source, ig.Reason
	default:
		e.Reason = "an event of type " + ev.Type
	}
	return e
}
