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
	"sort"
	"strings"
	"syscall"

	// The "signed in at" times are Swiss local time; the binary must not
	// depend on the host's zoneinfo.
	_ "time/tzdata"
)

// command is one subcommand: its name, a one-line summary and its entry
// point, which gets the arguments after the name.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

func register(name, summary string, run func(context.Context, []string, io.Reader, io.Writer, io.Writer) int) {
	commands[name] = command{summary: summary, run: run}
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
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
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
		if c, ok := commands[name+" "+rest[0]]; ok {
			return c.run(ctx, rest[1:], stdin, stdout, stderr)
		}
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "eiamtriage: unknown command %q\n\n", strings.Join(args[:min(2, len(args))], " "))
		usage(stderr)
		return 2
	}
	return c.run(ctx, rest, stdin, stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: eiamtriage COMMAND [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-16s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'eiamtriage COMMAND -h' for a command's flags.")
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
