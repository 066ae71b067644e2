package config

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// checker walks a YAML node tree alongside the Go type it will be decoded
// into, before decoding. It reports unknown and repeated keys with their
// line and path (the decoder's KnownFields reports only "field x not found
// in type config.NATS"), drops keys whose value is null so that they keep
// their default like absent keys, and remembers on which line each key is,
// so that errors found later (by the decoder or Validate) can name it.
type checker struct {
	errs problems
	// keyLine maps a key path ("nats.replicas", "pipeline.backoff[1]")
	// to the line of the key (of the item, in a list).
	keyLine map[string]int
	// valueKey maps a line to the path of the value on it, for the
	// decoder's errors, which carry the line only. An empty string marks
	// a line with values of two unrelated keys.
	valueKey map[int]string
}

func newChecker() *checker {
	return &checker{keyLine: map[string]int{}, valueKey: map[int]string{}}
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// maxDepth bounds the walk; a configuration is a few levels deep, and
// aliases could otherwise make the walk long.
const maxDepth = 32

func (c *checker) walk(n *yaml.Node, t reflect.Type, path string, depth int) {
	if depth > maxDepth {
		return // the decoder reports what is wrong, if anything
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		c.walk(n.Alias, t, path, depth+1)
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	c.noteValue(n.Line, path)
	if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return // a scalar type with its own parsing: Duration, ByteSize
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind == yaml.MappingNode {
			c.walkStruct(n, t, path, depth)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind == yaml.SequenceNode {
			for i, item := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				c.keyLine[p] = item.Line
				c.walk(item, t.Elem(), p, depth+1)
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := join(path, n.Content[i].Value)
				c.keyLine[p] = n.Content[i].Line
				c.walk(n.Content[i+1], t.Elem(), p, depth+1)
			}
		}
	}
}

func (c *checker) walkStruct(n *yaml.Node, t reflect.Type, path string, depth int) {
	fields := yamlFields(t)
	seen := map[string]int{}
	kept := n.Content[:0:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			// "<<: *defaults": the merged mapping's keys belong here.
			c.walk(v, t, path, depth+1)
			kept = append(kept, k, v)
			continue
		}
		name := k.Value
		ft, ok := fields[name]
		if !ok {
			msg := unknownKey(name, path, fields)
			if moved, ok := movedKeys[join(path, name)]; ok {
				msg = fmt.Sprintf("key %q has moved: %s", join(path, name), moved)
			}
			c.errs = append(c.errs, &Error{Line: k.Line, Msg: msg})
			continue
		}
		if first, dup := seen[name]; dup {
			c.errs = append(c.errs, &Error{Line: k.Line, Key: join(path, name),
				Msg: fmt.Sprintf("key %q is given twice (first at line %d)", name, first)})
			continue
		}
		seen[name] = k.Line
		p := join(path, name)
		c.keyLine[p] = k.Line
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
			continue // "key:" with no value: same as absent, keeps the default
		}
		c.walk(v, ft, p, depth+1)
		kept = append(kept, k, v)
	}
	n.Content = kept
}

// noteValue records that the value of path is on line; a value nested in
// another on the same line (a flow mapping) replaces its parent, an
// unrelated one makes the line ambiguous.
func (c *checker) noteValue(line int, path string) {
	old, ok := c.valueKey[line]
	switch {
	case !ok || (old != "" && strings.HasPrefix(path, old)):
		c.valueKey[line] = path
	case old != "" && strings.HasPrefix(old, path):
		// keep the more specific one
	default:
		c.valueKey[line] = ""
	}
}

// movedKeys says where keys of earlier versions went.
var movedKeys = map[string]string{
	"superusers": "each mailbox lists its own superusers now (mailboxes[].superusers; see deploy/eiamtriage.example.yaml)",
}

// lineRE reads the line of one of the YAML decoder's errors.
var lineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// decodeErrors turns the decoder's type errors ("line 7: cannot unmarshal
// !!str `x` into int") into *Error naming the key.
func (c *checker) decodeErrors(te *yaml.TypeError) error {
	var p problems
	for _, s := range te.Errors {
		m := lineRE.FindStringSubmatch(s)
		if m == nil {
			p = append(p, &Error{Msg: s})
			continue
		}
		line, _ := strconv.Atoi(m[1])
		p = append(p, &Error{Line: line, Key: c.valueKey[line], Msg: m[2]})
	}
	return p.err()
}

// setLines gives each *Error in err without a line the line of its key,
// when the key is in the file.
func (c *checker) setLines(err error) {
	eachError(err, func(e *Error) {
		if e.Line != 0 || e.Key == "" {
			return
		}
		// "nats.url[2]" is not a key of its own: fall back to "nats.url".
		for key := e.Key; key != ""; key = parent(key) {
			if line, ok := c.keyLine[key]; ok {
				e.Line = line
				return
			}
		}
	})
}

func (c *checker) present(key string) bool {
	_, ok := c.keyLine[key]
	return ok
}

func parent(key string) string {
	i := strings.LastIndexAny(key, ".[")
	if i < 0 {
		return ""
	}
	return key[:i]
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// yamlFields returns the keys of a struct as yaml.v3 sees them: the tag's
// name, or the field's name in lower case; "-" and unexported fields are
// not keys; ",inline" structs add their keys.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") && f.Type.Kind() == reflect.Struct {
			for k, v := range yamlFields(f.Type) {
				fields[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}

// unknownKey words the error for an unknown key, with the likeliest key
// meant or, failing one, the keys allowed.
func unknownKey(name, path string, fields map[string]reflect.Type) string {
	where := ""
	if path != "" {
		where = " in " + path
	}
	known := make([]string, 0, len(fields))
	for k := range fields {
		known = append(known, k)
	}
	sort.Strings(known)
	best, bestDist := "", 3
	for _, k := range known {
		if strings.HasPrefix(k, strings.ToLower(name)+"_") {
			// "password" for "password_file"
			best, bestDist = k, 0
			break
		}
		// A suggestion needs the key mostly right: "listn" for "listen",
		// not "foo" for "log".
		if d := editDistance(strings.ToLower(name), k); d < bestDist && d*3 <= len(k) {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown key %q%s (did you mean %q?)", name, where, best)
	}
	return fmt.Sprintf("unknown key %q%s (known keys: %s)", name, where, strings.Join(known, ", "))
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
