package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/eiamtriage/eiamtriage/ingest"
	"github.com/eiamtriage/eiamtriage/internal/config"
)

func runServe(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "the configuration `file` (YAML; see deploy/eiamtriage.example.yaml)")
	if _, err := parseFlags(fs, args); err != nil {
		return flagError(err)
	}
	cfg, ok := loadConfig(*cfgPath, "serve", stderr)
	if !ok {
		return 2
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		printf(stderr, "eiamtriage serve: %v\n", err)
		return 2
	}
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	for _, w := range cfg.Warnings {
		log.Warn("configuration", zap.String("warning", w))
	}
	for i := range cfg.Mailboxes {
		m := &cfg.Mailboxes[i]
		log.Info("sender authentication", zap.String("mailbox", m.Name), zap.String("policy", ingest.PolicyFor(cfg, m).Describe()))
	}
	d, err := newDaemon(ctx, cfg, log)
	if err != nil {
		log.Error("cannot start", zap.Error(err))
		return 1
	}
	log.Info("serving", zap.String("nats", d.broker.Conn.ConnectedUrlRedacted()), zap.String("http", d.httpAddr()), zap.Bool("embedded", cfg.NATS.Embedded()))
	if err := d.run(ctx); err != nil {
		log.Error("stopped", zap.Error(err))
		return 1
	}
	log.Info("stopped")
	return 0
}

// loadConfig loads the configuration named by --config, reporting problems
// on stderr.
func loadConfig(path, cmd string, stderr io.Writer) (*config.Config, bool) {
	if path == "" {
		printf(stderr, "eiamtriage %s: --config FILE is required (start from deploy/eiamtriage.example.yaml)\n", cmd)
		return nil, false
	}
	cfg, err := config.LoadFile(path)
	if err != nil {
		printf(stderr, "eiamtriage %s: %v\n", cmd, err)
		return nil, false
	}
	return cfg, true
}

func runConfigCheck(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	show := fs.Bool("print", false, "print the effective configuration (secrets redacted)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: eiamtriage config check [--print] FILE")
		return 2
	}
	cfg, err := config.LoadFile(pos[0])
	if err != nil {
		printf(stderr, "eiamtriage config check: %v\n", err)
		var pe *os.PathError
		if errors.As(err, &pe) && pe.Path == pos[0] {
			return 2 // no file to check: as a missing --config elsewhere
		}
		return 1
	}
	for _, w := range cfg.Warnings {
		printf(stderr, "warning: %s\n", w)
	}
	for i := range cfg.Mailboxes {
		m := &cfg.Mailboxes[i]
		fmt.Fprintf(stdout, "mailbox %s: %s\n", m.Name, ingest.PolicyFor(cfg, m).Describe())
	}
	if *show {
		out, err := cfg.Redacted()
		if err != nil {
			printf(stderr, "eiamtriage config check: %v\n", err)
			return 1
		}
		stdout.Write(out)
	}
	printf(stdout, "%s: configuration is valid\n", pos[0])
	return 0
}

// newLogger builds the zap logger the configuration asks for: console
// encoding on a terminal (or when asked), JSON otherwise.
func newLogger(lc config.Log, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(lc.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level %q: %w", lc.Level, err)
	}
	format := lc.Format
	if format == "" || format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			format = "console"
		}
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if format == "console" {
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		enc = zapcore.NewJSONEncoder(ec)
	}
	// zap escapes the C0 controls in JSON, not C1 or format characters, and
	// a console line's message not at all: a mail's values (a source, a
	// reason) pass through the JSON escaper, one entry per Write.
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(jsonEscaper{w})), level)), nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
