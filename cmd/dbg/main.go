package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/eiamtriage/eiamtriage/ingest/notice"
)

func main() {
	p := notice.MustParser(notice.DefaultWording(), nil)
	files, _ := filepath.Glob(os.Args[1] + "/*.eml")
	sort.Strings(files)
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		n, err := p.Parse(raw)
		if err != nil {
			fmt.Printf("%s ERR %v\n", filepath.Base(f), err)
			continue
		}
		b, _ := json.Marshal(struct{ L, D, Lay string; E, A notice.Person; P []string; X []notice.Row; ID, S string }{n.Language, string(n.Delivery), string(n.Layout), n.Expected, n.Actual, n.Problems, n.ExtraRows, n.ProfileID, n.SignedInRaw})
		fmt.Printf("%s %s\n", filepath.Base(f), b)
	}
}
