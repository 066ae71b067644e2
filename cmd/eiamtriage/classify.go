package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/eiamtriage/eiamtriage/classify"
	"github.com/eiamtriage/eiamtriage/ingest/notice"
	"github.com/eiamtriage/eiamtriage/ingest/trust"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
)

// maxMessageBytes bounds one message read by the offline commands.
const maxMessageBytes = 32 << 20

// result is one line of `classify --json`.
type result struct {
	Source    string        `json:"source"`
	MessageID string        `json:"message_id,omitempty"`
	Class     string        `json:"class"`
	Language  string        `json:"language,omitempty"`
	ProfileID string        `json:"profile_id,omitempty"`
	Delivery  string        `json:"delivery,omitempty"`
	Names     string        `json:"names,omitempty"`
	Rule      int           `json:"rule,omitempty"`
	Expected  *event.Person `json:"expected,omitempty"`
	Actual    *event.Person `json:"actual,omitempty"`
	Reasons   []string      `json:"reasons"`
	Kind      string        `json:"not_a_notice,omitempty"`
	Problems  []string      `json:"problems,omitempty"`
	Extra     []event.Row   `json:"extra_rows,omitempty"`
	verdict   *classify.Verdict
}

func runClassify(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("classify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print one JSON object per message, one a line")
	cfgPath := fs.String("config", "", "take the wording and the free-mail list from this configuration `file` (default: the built-in ones)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: eiamtriage classify [--json] [--config FILE] PATH...")
		fmt.Fprintln(stderr, "PATH is a .eml file, a directory (every *.eml below it) or - for one message on standard input.")
		fs.PrintDefaults()
	}
	paths, err := parseFlags(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(paths) == 0 {
		fs.Usage()
		return 2
	}
	wording := config.DefaultWording()
	var opts *classify.Options
	if *cfgPath != "" {
		cfg, err := config.LoadFile(*cfgPath)
		if err != nil {
			printf(stderr, "eiamtriage classify: %v\n", err)
			return 2
		}
		wording = cfg.Wording
		opts = classifyOptions(cfg)
	}
	parser, err := notice.NewParser(wording, nil)
	if err != nil {
		printf(stderr, "eiamtriage classify: %v\n", err)
		return 2
	}
	cl := classify.New(opts)

	failed := false
	enc := jsonLines(stdout)
	err = eachMessage(paths, stdin, func(source string, raw []byte, rerr error) {
		if ctx.Err() != nil {
			return
		}
		if rerr != nil {
			failed = true
			printf(stderr, "eiamtriage classify: %s: %v\n", source, rerr)
			return
		}
		r, perr := triage(ctx, parser, cl, wording.TrustedSenders, source, raw)
		if perr != nil {
			failed = true
			printf(stderr, "eiamtriage classify: %s: %v\n", source, perr)
			return
		}
		if *asJSON {
			_ = enc.Encode(r)
		} else {
			printHuman(stdout, r)
		}
	})
	if err != nil {
		printf(stderr, "eiamtriage classify: %v\n", err)
		return 1
	}
	if failed || ctx.Err() != nil {
		return 1
	}
	return 0
}

// classifyOptions takes the classifier's options from the configuration.
func classifyOptions(cfg *config.Config) *classify.Options {
	return &classify.Options{AddFreeMail: cfg.Classify.AddFreeMail, RemoveFreeMail: cfg.Classify.RemoveFreeMail}
}

// triage runs the parser and the classifier over one message.
// A notice whose sender the sender rule of docs/NOTICE.md section 2
// rejects (its own From is not one of senders) is not-a-notice, of the
// rule's kind; no sender authentication is applied offline.
func triage(ctx context.Context, p *notice.Parser, cl *classify.Classifier, senders []string, source string, raw []byte) (result, error) {
	r := result{Source: source}
	n, err := p.Parse(ctx, raw)
	var nn *notice.NotANoticeError
	switch {
	case errors.As(err, &nn):
		r.Class = "not-a-notice"
		r.Kind = nn.Kind
		r.Reasons = []string{nn.Reason}
		return r, nil
	case err != nil:
		return r, err
	}
	r.MessageID = n.MessageID
	r.Delivery = string(n.Delivery)
	if t := trust.SenderRule(senders, trust.Chain{NoticeFrom: n.From, Forwarders: n.Forwarders}); !t.Trusted {
		r.Class = "not-a-notice"
		r.Kind = t.Kind
		r.Reasons = t.Reasons
		return r, nil
	}
	v := cl.Classify(n)
	r.Class = string(v.Class)
	r.Language = n.Language
	r.ProfileID = n.ProfileID
	r.Names = string(v.Names)
	r.Rule = v.Rule
	r.Expected, r.Actual = &n.Expected, &n.Actual
	r.Reasons = v.Reasons
	r.Problems = n.Problems
	r.Extra = n.ExtraRows
	return r, nil
}

func printHuman(w io.Writer, r result) {
	printf(w, "%s: %s", r.Source, strings.ToUpper(r.Class))
	if r.Class == "not-a-notice" {
		printf(w, " (%s)\n", r.Kind)
		for _, reason := range r.Reasons {
			printf(w, "  %s\n", reason)
		}
		return
	}
	printf(w, "  [%s, %s, profile %s]\n", r.Language, r.Delivery, orDash(r.ProfileID))
	printf(w, "  %-13s %-32s %s\n", "", "entered in the portal", "signed-in user")
	row := func(label, a, b string) {
		mark := " "
		if a != b {
			mark = "≠"
		}
		printf(w, "  %-12s%s %-32s %s\n", label, mark, orDash(a), orDash(b))
	}
	row("given name", r.Expected.GivenName, r.Actual.GivenName)
	row("family name", r.Expected.FamilyName, r.Actual.FamilyName)
	row("e-mail", r.Expected.Email, r.Actual.Email)
	for _, reason := range r.Reasons {
		printf(w, "  - %s\n", reason)
	}
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// eachMessage calls fn for every message named by paths: a file, every
// *.eml below a directory (in lexical order), or "-" for standard input.
// A path that cannot be read is passed to fn with its error; the walk goes on.
func eachMessage(paths []string, stdin io.Reader, fn func(source string, raw []byte, err error)) error {
	for _, p := range paths {
		if p == "-" {
			raw, err := readLimited(stdin)
			fn("-", raw, err)
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			fn(p, nil, fmt.Errorf("cannot read: %w", errors.Unwrap(err)))
			continue
		}
		if !st.IsDir() {
			raw, err := readFile(p)
			fn(p, raw, err)
			continue
		}
		var files []string
		werr := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				fn(path, nil, fmt.Errorf("cannot read directory: %w", err))
				return nil
			}
			if !d.IsDir() && strings.EqualFold(filepath.Ext(path), ".eml") {
				files = append(files, path)
			}
			return nil
		})
		if werr != nil {
			return werr
		}
		if len(files) == 0 {
			fn(p, nil, errors.New("no .eml file in this directory"))
		}
		sort.Strings(files)
		for _, f := range files {
			raw, err := readFile(f)
			fn(f, raw, err)
		}
	}
	return nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open: %w", errors.Unwrap(err))
	}
	defer f.Close()
	return readLimited(f)
}

func readLimited(r io.Reader) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxMessageBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	if len(raw) > maxMessageBytes {
		return nil, fmt.Errorf("larger than %d MiB: not a notice; triage it by hand", maxMessageBytes>>20)
	}
	if len(raw) == 0 {
		return nil, errors.New("empty: no message to read")
	}
	return raw, nil
}
