package main

import (
	"context"
	"fmt"
	"io"
	"slices"
)

// examples holds an example of each command of the table, shown by
// `eiamtriage help COMMAND` and `eiamtriage COMMAND -h` (TestEveryCommandHasHelp
// keeps it complete).
var examples = map[string]string{
	"serve":           "eiamtriage serve --config /etc/eiamtriage/eiamtriage.yaml",
	"publish":         "eiamtriage publish --config /etc/eiamtriage/eiamtriage.yaml --mailbox be saved/*.eml",
	"classify":        "eiamtriage classify --json notices/   # or: eiamtriage classify - < notice.eml",
	"cases list":      "eiamtriage cases list --config /etc/eiamtriage/eiamtriage.yaml --class wrong-person",
	"cases show":      "eiamtriage cases show --config /etc/eiamtriage/eiamtriage.yaml 442e3d43-7204-4c1f-9a51-2f0d8c9e1b77",
	"dead list":       "eiamtriage dead list --config /etc/eiamtriage/eiamtriage.yaml",
	"config check":    "eiamtriage config check --print /etc/eiamtriage/eiamtriage.yaml",
	"outbox list":     "eiamtriage outbox list --config /etc/eiamtriage/eiamtriage.yaml --state failed",
	"outbox resend":   "eiamtriage outbox resend --config /etc/eiamtriage/eiamtriage.yaml escalation.p.123.4f2a",
	"cases decide":    "eiamtriage cases decide --config /etc/eiamtriage/eiamtriage.yaml p.442e3d43-7204-4c1f-9a51-2f0d8c9e1b77 negligible --by \"Martina Graf\" --why \"married, new name confirmed by phone\"",
	"tasks list":      "eiamtriage tasks list --config /etc/eiamtriage/eiamtriage.yaml",
	"tasks done":      "eiamtriage tasks done --config /etc/eiamtriage/eiamtriage.yaml --by \"Martina Graf\" deactivate.p.442e3d43-7204-4c1f-9a51-2f0d8c9e1b77",
	"summaries send":  "eiamtriage summaries send --config /etc/eiamtriage/eiamtriage.yaml --mailbox be",
	"actions release": "eiamtriage actions release --config /etc/eiamtriage/eiamtriage.yaml --mailbox be --list",
}

// wantsHelp reports whether args ask for a command's help.
func wantsHelp(args []string) bool {
	return slices.ContainsFunc(args, func(a string) bool { return a == "-h" || a == "-help" || a == "--help" })
}

// printHelp writes what a command does and an example, before the command
// itself prints its flags.
func printHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "eiamtriage %s: %s\n\nexample:\n  %s\n\nflags:\n", c.name, c.summary, examples[c.name])
}

// runHelp is `eiamtriage help [COMMAND]`.
func runHelp(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stdout)
		return 0
	}
	name := args[0]
	if len(args) > 1 && lookup(name+" "+args[1]) != nil {
		name += " " + args[1]
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(stderr, "eiamtriage help: no command %s\n\n", quoteArg(name))
		usage(stderr)
		return 2
	}
	printHelp(stdout, c)
	return c.run(ctx, []string{"-h"}, stdin, stdout, stdout)
}
