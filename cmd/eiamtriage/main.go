// Command eiamtriage triages eIAM mismatch notices for the cantonal
// superusers of SpiGes: it reads the notices, classifies them and drives the
// follow-up. See README.md for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	// The "signed in at" times are Swiss local time; the binary must not
	// depend on the host's zoneinfo.
	_ "time/tzdata"
)

// command is one subcommand: its name (one or two words), a one-line
// summary and its entry point, which gets the arguments after the name.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

// commands is the table of every subcommand, in the order usage lists
// them.
var commands = []command{
	{"serve", "run the daemon: serve --config FILE", runServe},
	{"publish", "put saved mails in as if they came from a mailbox: publish --config FILE [--mailbox NAME] PATH...", runPublish},
	{"classify", "triage saved notices offline: classify [--json] [--config FILE] PATH...", runClassify},
	{"cases list", "print the cases: cases list --config FILE [--json] [--class C] [--mailbox NAME]", runCasesList},
	{"cases show", "print one case: cases show --config FILE [--json] ID", runCasesShow},
	{"cases decide", "record a person's decision on a review case and run that class's actions: cases decide --config FILE ID CLASS --by NAME --why TEXT", runCasesDecide},
	{"tasks list", "print the open tasks, what to do and where: tasks list --config FILE [--json] [--all] [--mailbox NAME]", runTasksList},
	{"tasks done", "close tasks done in the eIAM portal: tasks done --config FILE [--by NAME] [--note TEXT] ID...", runTasksDone},
	{"summaries send", "send the due summaries now, as the schedule would: summaries send --config FILE [--mailbox NAME]", runSummariesSend},
	{"actions release", "do (or --discard) the actions held past a cap and lift the holds: actions release --config FILE [--mailbox NAME] [--discard] [--list]", runActionsRelease},
	{"dead list", "print dead letters, quarantined and unreadable mail: dead list --config FILE [--json]", runDeadList},
	{"outbox list", "print the mails the service sent or will send: outbox list --config FILE [--json] [--state S] [--mailbox NAME]", runOutboxList},
	{"outbox resend", "send a mail again, with the same Message-ID: outbox resend --config FILE ID", runOutboxResend},
	{"config check", "validate a configuration without starting anything: config check [--print] FILE", runConfigCheck},
}

// version is set at build time (-ldflags "-X main.version=1.2.3"); without
// it the module version or VCS revision the binary was built from is shown.
var version string

func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown version)"
	}
	v := bi.Main.Version
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+modified"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		return fmt.Sprintf("%s (%s%s, %s)", v, rev, modified, bi.GoVersion)
	}
	return fmt.Sprintf("%s (%s)", v, bi.GoVersion)
}

// lookup returns the command named name, or nil.
func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// runMain dispatches to a subcommand; it is main without the process, so
// tests call it directly.
func runMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version" || args[0] == "version") {
		fmt.Fprintln(stdout, "eiamtriage", versionString())
		return 0
	}
	if len(args) > 0 && args[0] == "help" {
		return runHelp(ctx, args[1:], stdin, stdout, stderr)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	name := args[0]
	rest := args[1:]
	// Two-word commands: "config check", "cases list".
	if len(rest) > 0 {
		if c := lookup(name + " " + rest[0]); c != nil {
			if wantsHelp(rest[1:]) {
				printHelp(stderr, c)
			}
			return c.run(ctx, rest[1:], stdin, stdout, stderr)
		}
	}
	if c := lookup(name); c != nil {
		if wantsHelp(rest) {
			printHelp(stderr, c)
		}
		return c.run(ctx, rest, stdin, stdout, stderr)
	}
	if sub := subcommands(name); len(sub) > 0 {
		// "eiamtriage cases" alone, or with an unknown second word.
		if len(rest) > 0 {
			fmt.Fprintf(stderr, "eiamtriage: unknown command %s\n\n", quoteArg(name+" "+rest[0]))
		} else {
			fmt.Fprintf(stderr, "eiamtriage %s: say which:\n\n", name)
		}
		for _, c := range sub {
			fmt.Fprintf(stderr, "  %-16s %s\n", c.name, c.summary)
		}
		return 2
	}
	fmt.Fprintf(stderr, "eiamtriage: unknown command %s\n\n", quoteArg(name))
	usage(stderr)
	return 2
}

// subcommands returns the two-word commands whose first word is name.
func subcommands(name string) []command {
	var out []command
	for _, c := range commands {
		if first, _, ok := strings.Cut(c.name, " "); ok && first == name {
			out = append(out, c)
		}
	}
	return out
}

// quoteArg quotes a command-line word for a message, escaping what is not
// printable.
func quoteArg(s string) string { return strconv.QuoteToGraphic(s) }

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: eiamtriage COMMAND [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'eiamtriage help COMMAND' or 'eiamtriage COMMAND -h' for a command's flags and an example;")
	fmt.Fprintln(w, "'eiamtriage --version' for the version.")
}

// parseFlags parses flags that may stand before, between or after the
// positional arguments (flag stops at the first positional one), and
// returns the positional arguments. A lone "-" is a positional argument.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
		if len(pos) > 0 && pos[len(pos)-1] == "--" {
			pos = append(pos[:len(pos)-1], args...)
			return pos, nil
		}
	}
}

// flagError turns a flag parsing error into an exit code: 0 for -h, 2 for
// a bad flag (flag has printed the message and usage already).
func flagError(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}
