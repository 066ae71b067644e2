// Command samplecheck compares the JSON lines of `eiamtriage classify
// --json DIR` (standard input) with DIR/labels.json and fails on any
// disagreement in class, or in the compared values of a notice.
//
//	eiamtriage classify --json ../shared/samples | go run ./.ci/samplecheck ../shared/samples/labels.json
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

type person struct {
	GivenName  string `json:"given_name"`
	FamilyName string `json:"family_name"`
	Email      string `json:"email"`
}

type label struct {
	Class    string  `json:"class"`
	Lang     string  `json:"lang"`
	Expected *person `json:"expected"`
	Actual   *person `json:"actual"`
}

type line struct {
	Source   string  `json:"source"`
	Class    string  `json:"class"`
	Language string  `json:"language"`
	Expected *person `json:"expected"`
	Actual   *person `json:"actual"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: eiamtriage classify --json DIR | samplecheck DIR/labels.json")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "samplecheck: %v\n", err)
		os.Exit(2)
	}
	var labels map[string]label
	if err := json.Unmarshal(data, &labels); err != nil {
		fmt.Fprintf(os.Stderr, "samplecheck: %s: %v\n", os.Args[1], err)
		os.Exit(2)
	}
	seen := map[string]bool{}
	bad := 0
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			fmt.Printf("FAIL not a JSON line: %q\n", sc.Text())
			bad++
			continue
		}
		name := filepath.Base(l.Source)
		want, ok := labels[name]
		if !ok {
			fmt.Printf("FAIL %s: not in labels.json\n", name)
			bad++
			continue
		}
		seen[name] = true
		switch {
		case l.Class != want.Class:
			fmt.Printf("FAIL %s: class %s, want %s\n", name, l.Class, want.Class)
			bad++
		case want.Class != "not-a-notice" && l.Language != want.Lang:
			fmt.Printf("FAIL %s: language %s, want %s\n", name, l.Language, want.Lang)
			bad++
		case want.Expected != nil && (l.Expected == nil || *l.Expected != *want.Expected):
			fmt.Printf("FAIL %s: expected %+v, want %+v\n", name, l.Expected, want.Expected)
			bad++
		case want.Actual != nil && (l.Actual == nil || *l.Actual != *want.Actual):
			fmt.Printf("FAIL %s: actual %+v, want %+v\n", name, l.Actual, want.Actual)
			bad++
		}
	}
	var missing []string
	for name := range labels {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	for _, name := range missing {
		fmt.Printf("FAIL %s: no verdict printed\n", name)
		bad++
	}
	fmt.Printf("samplecheck: %d of %d samples agree with %s\n", len(labels)-bad, len(labels), os.Args[1])
	if bad > 0 {
		os.Exit(1)
	}
}
