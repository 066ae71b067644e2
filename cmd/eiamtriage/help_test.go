package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestEveryCommandHasHelp: each command of the table has an example, and
// both `help COMMAND` and `COMMAND -h` show it with the command's flags
// and exit 0.
func TestEveryCommandHasHelp(t *testing.T) {
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			ex := examples[c.name]
			if !strings.HasPrefix(ex, "eiamtriage "+c.name) {
				t.Fatalf("examples[%q] = %q: give an example that starts with the command", c.name, ex)
			}
			for _, args := range [][]string{
				append([]string{"help"}, strings.Fields(c.name)...),
				append(strings.Fields(c.name), "-h"),
			} {
				var out, errb bytes.Buffer
				code := runMain(context.Background(), args, strings.NewReader(""), &out, &errb)
				all := out.String() + errb.String()
				if code != 0 || !strings.Contains(all, ex) || !strings.Contains(all, c.summary) || !strings.Contains(all, "  -") {
					t.Errorf("eiamtriage %s: exit %d, output lacks the summary, the example or the flags:\n%s", strings.Join(args, " "), code, all)
				}
			}
		})
	}
	for _, name := range []string{"--version", "version"} {
		var out bytes.Buffer
		if code := runMain(context.Background(), []string{name}, nil, &out, &out); code != 0 || !strings.HasPrefix(out.String(), "eiamtriage ") {
			t.Errorf("eiamtriage %s: exit %d, %q", name, code, out.String())
		}
	}
	var out bytes.Buffer
	if code := runMain(context.Background(), []string{"help", "bogus"}, nil, &out, &out); code != 2 || !strings.Contains(out.String(), `no command "bogus"`) {
		t.Errorf("help bogus: exit %d, %q", code, out.String())
	}
}
