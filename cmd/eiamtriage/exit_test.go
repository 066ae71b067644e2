package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run runs runMain in-process and returns its exit code and output.
func run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runMain(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestMissingConfigExitsTwo runs every command of the table without its
// configuration and with a configuration file that does not exist: each
// exits 2 (a usage error) and says what is missing. A command added to the
// table without an entry here fails the test.
func TestMissingConfigExitsTwo(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such.yaml")
	type invocation struct {
		args []string
		says string // stderr must contain it
	}
	// Per command: the invocations that lack a configuration. classify
	// runs on the built-in wording without --config, so only a file that
	// does not exist is missing for it.
	table := map[string][]invocation{
		"serve": {
			{[]string{"serve"}, "--config FILE is required"},
			{[]string{"serve", "--config", missing}, missing},
		},
		"publish": {
			{[]string{"publish", "a.eml"}, "--config FILE is required"},
			{[]string{"publish", "--config", missing, "a.eml"}, missing},
		},
		"classify": {
			{[]string{"classify", "--config", missing, "a.eml"}, missing},
		},
		"cases list": {
			{[]string{"cases", "list"}, "--config FILE is required"},
			{[]string{"cases", "list", "--config", missing}, missing},
		},
		"cases show": {
			{[]string{"cases", "show", "p.x"}, "--config FILE is required"},
			{[]string{"cases", "show", "--config", missing, "p.x"}, missing},
		},
		"dead list": {
			{[]string{"dead", "list"}, "--config FILE is required"},
			{[]string{"dead", "list", "--config", missing}, missing},
		},
		"outbox list": {
			{[]string{"outbox", "list"}, "--config FILE is required"},
			{[]string{"outbox", "list", "--config", missing}, missing},
		},
		"outbox resend": {
			{[]string{"outbox", "resend", "x"}, "--config FILE is required"},
			{[]string{"outbox", "resend", "--config", missing, "x"}, missing},
		},
		"cases decide": {
			{[]string{"cases", "decide", "p.x", "negligible", "--by", "a", "--why", "b"}, "--config FILE is required"},
			{[]string{"cases", "decide", "--config", missing, "p.x", "negligible", "--by", "a", "--why", "b"}, missing},
		},
		"tasks list": {
			{[]string{"tasks", "list"}, "--config FILE is required"},
			{[]string{"tasks", "list", "--config", missing}, missing},
		},
		"tasks done": {
			{[]string{"tasks", "done", "deactivate.p.x"}, "--config FILE is required"},
			{[]string{"tasks", "done", "--config", missing, "deactivate.p.x"}, missing},
		},
		"summaries send": {
			{[]string{"summaries", "send"}, "--config FILE is required"},
			{[]string{"summaries", "send", "--config", missing}, missing},
		},
		"actions release": {
			{[]string{"actions", "release"}, "--config FILE is required"},
			{[]string{"actions", "release", "--config", missing}, missing},
		},
		"config check": {
			{[]string{"config", "check"}, "usage: eiamtriage config check"},
			{[]string{"config", "check", missing}, missing},
		},
	}
	for _, c := range commands {
		invs, ok := table[c.name]
		if !ok {
			t.Errorf("command %q has no entry in this test: add how it is run without a configuration", c.name)
			continue
		}
		delete(table, c.name)
		for _, inv := range invs {
			t.Run(strings.Join(inv.args, " "), func(t *testing.T) {
				code, stdout, stderr := run(t, "", inv.args...)
				if code != 2 {
					t.Errorf("exit %d, want 2\nstdout: %s\nstderr: %s", code, stdout, stderr)
				}
				if !strings.Contains(stderr, inv.says) {
					t.Errorf("stderr lacks %q:\n%s", inv.says, stderr)
				}
			})
		}
	}
	for name := range table {
		t.Errorf("this test names %q, which is not in the command table", name)
	}
}

// TestGroupWordListsSubcommands: "eiamtriage cases" alone, or with a word
// that is no subcommand, lists the subcommands instead of "unknown
// command" alone.
func TestGroupWordListsSubcommands(t *testing.T) {
	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"cases"}, "eiamtriage cases: say which"},
		{[]string{"cases", "lsit"}, `unknown command "cases lsit"`},
		{[]string{"dead"}, "eiamtriage dead: say which"},
		{[]string{"config"}, "eiamtriage config: say which"},
		{[]string{"outbox"}, "eiamtriage outbox: say which"},
		{[]string{"tasks"}, "eiamtriage tasks: say which"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, stderr := run(t, "", tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.says) {
				t.Errorf("exit %d, stderr:\n%s\nwant 2 and %q", code, stderr, tt.says)
			}
			for _, c := range subcommands(tt.args[0]) {
				if !strings.Contains(stderr, c.name) || !strings.Contains(stderr, c.summary) {
					t.Errorf("stderr does not list %q with its summary:\n%s", c.name, stderr)
				}
			}
		})
	}
	if n := len(subcommands("cases")); n != 3 {
		t.Errorf("%d subcommands of cases, want list, show and decide", n)
	}
	code, _, stderr := run(t, "", "bogus")
	if code != 2 || !strings.Contains(stderr, `unknown command "bogus"`) || !strings.Contains(stderr, "commands:") {
		t.Errorf("unknown command: exit %d, stderr:\n%s", code, stderr)
	}
}

// TestEmptyConfigurationNamesDataDir: an empty configuration file is
// refused by config check (exit 1, the file is invalid) and by serve (exit
// 2, before anything starts), both saying that data_dir is required.
func TestEmptyConfigurationNamesDataDir(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.yaml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"config", "check", empty}, 1},
		{[]string{"serve", "--config", empty}, 2},
	} {
		code, stdout, stderr := run(t, "", tt.args...)
		if code != tt.code || !strings.Contains(stderr, "data_dir: is empty") {
			t.Errorf("%s: exit %d (want %d)\nstdout: %s\nstderr: %s\nwant data_dir named as missing", strings.Join(tt.args, " "), code, tt.code, stdout, stderr)
		}
		if strings.Contains(stdout, "configuration is valid") {
			t.Errorf("%s: says the empty configuration is valid", strings.Join(tt.args, " "))
		}
	}
}
