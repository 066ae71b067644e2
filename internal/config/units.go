package config

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written in YAML as Go writes durations:
// "90s", "2m", "1h30m". A bare number ("60") is an error: the unit is
// never guessed.
type Duration time.Duration

// String formats d as Go does, without trailing zero units: "2m", not
// "2m0s"; "1h", not "1h0m0s".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalYAML writes d as String does.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a duration such as "90s". A bad value is reported
// with its line and the value itself.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n, "want a duration such as 90s, 2m or 1h30m, found %s", kindName(n))
	}
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		return typeError(n, "invalid duration %q: want a number with a unit (ns, us, ms, s, m, h), such as 90s, 2m or 1h30m", n.Value)
	}
	*d = Duration(v)
	return nil
}

// ByteSize is a number of bytes written in YAML with an optional unit:
// "1024", "512B", "25MiB", "10GB", "1.5GiB". Binary units (KiB, MiB, GiB,
// TiB) are powers of 1024, decimal ones (kB, MB, GB, TB) powers of 1000;
// units are matched in any letter case, and a space may stand between the
// number and the unit.
type ByteSize int64

// The binary sizes, for code that builds a ByteSize.
const (
	KiB ByteSize = 1 << (10 * (iota + 1))
	MiB
	GiB
	TiB
)

var byteUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

var byteSizeRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?) ?([A-Za-z]*)$`)

// ParseByteSize reads a size as ByteSize's YAML form does. The error names
// the value and the units allowed.
func ParseByteSize(s string) (ByteSize, error) {
	bad := func(why string) (ByteSize, error) {
		return 0, fmt.Errorf("invalid size %q: %s", s, why)
	}
	m := byteSizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return bad("want a whole number of bytes or a number with a unit (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB), such as 25MiB")
	}
	unit, ok := byteUnits[strings.ToLower(m[2])]
	if !ok {
		return bad(fmt.Sprintf("unknown unit %q: use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB", m[2]))
	}
	r, ok := new(big.Rat).SetString(m[1])
	if !ok {
		return bad("not a number")
	}
	r.Mul(r, new(big.Rat).SetInt64(unit))
	if !r.IsInt() {
		return bad("not a whole number of bytes")
	}
	if !r.Num().IsInt64() {
		return bad("too large")
	}
	return ByteSize(r.Num().Int64()), nil
}

// String writes b with the unit that gives the smallest whole number:
// "25MiB", "10GB", "1000001".
func (b ByteSize) String() string {
	best, unit := int64(b), ""
	if b > 0 {
		for _, u := range []struct {
			name string
			size int64
		}{
			{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
			{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3},
		} {
			if q := int64(b) / u.size; int64(b)%u.size == 0 && q < best {
				best, unit = q, u.name
			}
		}
	}
	return fmt.Sprintf("%d%s", best, unit)
}

// MarshalYAML writes b as String does.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// UnmarshalYAML reads a size as ParseByteSize does. A bad value is
// reported with its line and the value itself.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n, "want a size such as 25MiB or 1024, found %s", kindName(n))
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return typeError(n, "%v", err)
	}
	*b = v
	return nil
}

// typeError reports a bad value in the form the YAML decoder uses for its
// own type errors ("line N: ..."), so that the decoder collects it with
// the others and Load can name the key.
func typeError(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, fmt.Sprintf(format, args...))}}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	default:
		return "a scalar"
	}
}
