package notice

import (
	"fmt"
	"testing"

	"github.com/eiamtriage/eiamtriage/classify"
	"github.com/eiamtriage/eiamtriage/internal/config"
)

// BenchmarkShapes parses each hostile shape (and two large ordinary mails)
// at 1, 5, 10 and 20 MB. With b.SetBytes, MB/s and B/op per MB show whether
// time and memory grow linearly with the mail: run with
//
//	go test -run '^$' -bench BenchmarkShapes -benchmem -count 5 ./ingest/notice/
func BenchmarkShapes(b *testing.B) {
	p := MustParser(config.DefaultWording(), nil)
	for _, s := range shapes {
		for _, mb := range []int{1, 5, 10, 20} {
			b.Run(fmt.Sprintf("%s/%dMB", s.name, mb), func(b *testing.B) {
				raw := s.build(mb * 1000 * 1000)
				b.SetBytes(int64(len(raw)))
				b.ReportAllocs()
				for b.Loop() {
					_, _ = p.Parse(b.Context(), raw)
				}
			})
		}
	}
}

// BenchmarkWorstOfToday parses and classifies the shapes that took the
// previous parser longest (issue 7): 10,000 nested multiparts, 200,000
// parts in 8 MB, 10,000 attached messages in 9 MiB.
func BenchmarkWorstOfToday(b *testing.B) {
	p := MustParser(config.DefaultWording(), nil)
	cl := classify.New(nil)
	for _, c := range []struct {
		name string
		raw  []byte
	}{
		{"nested-10000", shapeDeepNesting(10000 * 78)},
		{"parts-200000", shapeManyParts(200000 * 40)},
		{"attached-10000", shapeManyAttached(9 << 20)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.raw)))
			b.ReportAllocs()
			for b.Loop() {
				if n, err := p.Parse(b.Context(), c.raw); err == nil {
					_ = cl.Classify(n)
				}
			}
		})
	}
}
