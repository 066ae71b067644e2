package notice

import (
	"bytes"
	"io"
	"strings"
	"unicode"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// item is one unit of a body in document order: a line of text, or a table
// (rows of cell texts). A body is read into items once, then every layout
// and forward rule works on them, whatever the body's MIME type.
type item struct {
	line  string
	table [][]string
}

func (it item) isTable() bool { return it.table != nil }

// unflow undoes RFC 3676 format=flowed: a line ending in a space is joined
// with the next one (the space dropped too when delSp), space-stuffing is
// removed, and the signature separator "-- " is never joined.
func unflow(s string, delSp bool) string {
	lines := strings.Split(strings.TrimSuffix(strings.ReplaceAll(s, "\r\n", "\n"), "\n"), "\n")
	var out strings.Builder
	out.Grow(len(s))
	var cur strings.Builder
	curDepth := -1
	flush := func() {
		if curDepth >= 0 {
			out.WriteString(strings.Repeat(">", curDepth))
			if curDepth > 0 {
				out.WriteByte(' ')
			}
			out.WriteString(cur.String())
			out.WriteByte('\n')
		}
		cur.Reset()
		curDepth = -1
	}
	for _, l := range lines {
		depth := 0
		for depth < len(l) && l[depth] == '>' {
			depth++
		}
		l = l[depth:]
		if strings.HasPrefix(l, " ") {
			l = l[1:] // space-stuffing
		}
		if curDepth >= 0 && depth != curDepth {
			flush()
		}
		curDepth = depth
		soft := strings.HasSuffix(l, " ") && l != "-- "
		if soft && delSp {
			l = l[:len(l)-1]
		}
		cur.WriteString(l)
		if !soft {
			flush()
		}
	}
	flush()
	return out.String()
}

// textItems splits a text/plain body into items: lines, and tables made of
// consecutive "|"-separated rows (separator lines of -, +, = and | are
// dropped). Quote markers ("> ") are removed so that a quoted notice reads
// like a direct one.
func textItems(b *budget, s string) ([]item, error) {
	if hasBareCR(s) {
		s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n") // bare CRs end lines too
	}
	items := make([]item, 0, strings.Count(s, "\n")+1)
	var table [][]string
	endTable := func() {
		if table != nil {
			items = append(items, item{table: table})
			table = nil
		}
	}
	for rest, more := s, true; more; {
		var l string
		l, rest, more = strings.Cut(rest, "\n")
		l = strings.TrimSuffix(l, "\r")
		if err := b.tick(); err != nil {
			return nil, err
		}
		l = stripQuote(l)
		if strings.Contains(l, "|") {
			if isRuleLine(l) {
				continue
			}
			table = append(table, splitCells(l))
			continue
		}
		if table != nil && isRuleLine(l) && strings.TrimSpace(l) != "" {
			continue
		}
		endTable()
		items = append(items, item{line: l})
	}
	endTable()
	return items, nil
}

// hasBareCR reports whether s holds a CR that is not followed by LF.
func hasBareCR(s string) bool {
	for i := strings.IndexByte(s, '\r'); i >= 0; {
		if i+1 >= len(s) || s[i+1] != '\n' {
			return true
		}
		j := strings.IndexByte(s[i+1:], '\r')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
}

// stripQuote removes leading "> " quote markers of a reply or forward.
func stripQuote(l string) string {
	t := strings.TrimLeft(l, " \t")
	if !strings.HasPrefix(t, ">") {
		return l
	}
	for strings.HasPrefix(t, ">") {
		t = strings.TrimLeft(t[1:], " ")
	}
	return t
}

// isRuleLine reports whether a line is only table decoration: -, +, =, |
// and white space, with at least one - or =.
func isRuleLine(l string) bool {
	dash := false
	for _, r := range l {
		switch r {
		case '-', '=', '_':
			dash = true
		case '+', '|', ' ', '\t':
		default:
			return false
		}
	}
	return dash
}

// splitCells splits a "|"-separated row; an outer pipe at either end does
// not make an empty cell.
func splitCells(l string) []string {
	t := strings.TrimSpace(l)
	t = strings.TrimPrefix(t, "|")
	t = strings.TrimSuffix(t, "|")
	cells := strings.Split(t, "|")
	for i, c := range cells {
		cells[i] = cleanValue(c)
	}
	return cells
}

// htmlItems reads an HTML body into items with x/net/html's tokenizer.
// Tables that hold no other table become table items; layout tables (those
// holding tables) are read as text, so a notice wrapped in a mail program's
// layout table is still found. Block elements, table rows and cells, and
// <br> end lines. The tokenizer, not the tree builder, keeps this cheap;
// entities (&uuml;, &#233;, &nbsp;) are decoded by it. Every line and
// table goes straight to one list, whatever the nesting, so that the cost
// is linear in the body.
func htmlItems(b *budget, s string) ([]item, error) {
	z := html.NewTokenizer(strings.NewReader(s))
	h := &htmlReader{}
	skip := atom.Atom(0) // inside <script>, <style>, <head> or <title>
	ignored := 0         // open tables past maxTableDepth, read as text
	for {
		if err := b.tick(); err != nil {
			return nil, err
		}
		tt := z.Next()
		top := h.top()
		switch tt {
		case html.ErrorToken:
			if err := z.Err(); err != io.EOF {
				return nil, err
			}
			for len(h.stack) > 0 {
				h.closeTable()
			}
			h.endLine()
			return h.out, nil
		case html.TextToken:
			if skip != 0 {
				continue
			}
			text := z.Text()
			h.line.Write(text)
			if top != nil && top.cell != nil {
				top.cell.Write(text)
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if skip != 0 {
				continue
			}
			switch a {
			case atom.Script, atom.Style, atom.Head, atom.Title:
				if tt == html.StartTagToken {
					skip = a
				}
			case atom.Br:
				h.endLine()
				if top != nil && top.cell != nil {
					top.cell.WriteByte(' ')
				}
			case atom.Table:
				h.endLine()
				if len(h.stack) >= maxTableDepth {
					ignored++
					continue
				}
				if top != nil {
					top.nested = true
				}
				h.stack = append(h.stack, &htmlTable{start: len(h.out)})
			case atom.Tr:
				h.endLine()
				if top != nil {
					top.endRow()
					top.inRow = true
				}
			case atom.Td, atom.Th:
				h.endLine()
				if top != nil {
					top.endCell()
					top.cell = new(bytes.Buffer)
				}
			default:
				if isBlock(a) {
					h.endLine()
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if skip != 0 {
				if a == skip {
					skip = 0
				}
				continue
			}
			switch a {
			case atom.Table:
				h.endLine()
				if ignored > 0 {
					ignored--
				} else if top != nil {
					h.closeTable()
				}
			case atom.Td, atom.Th:
				h.endLine()
				if top != nil {
					top.endCell()
				}
			case atom.Tr:
				h.endLine()
				if top != nil {
					top.endRow()
				}
			default:
				if isBlock(a) {
					h.endLine()
				}
			}
		}
	}
}

// maxTableDepth bounds the tables read as tables inside one another: mail
// programs nest a few layout tables; deeper ones are read as text.
const maxTableDepth = 32

// htmlReader is the state of htmlItems: the items so far, the current
// line and the open tables.
type htmlReader struct {
	out   []item
	line  bytes.Buffer
	stack []*htmlTable
}

// htmlTable is one open table.
type htmlTable struct {
	start  int  // len(out) when the table opened
	nested bool // it holds a table: a layout table, read as text
	rows   [][]string
	row    []string
	inRow  bool
	cell   *bytes.Buffer
}

func (h *htmlReader) top() *htmlTable {
	if len(h.stack) == 0 {
		return nil
	}
	return h.stack[len(h.stack)-1]
}

// endLine ends the current line. White space between tags (the line
// breaks of the HTML source) is no line: a browser shows nothing there.
func (h *htmlReader) endLine() {
	if h.line.Len() > 0 {
		if len(bytes.Trim(h.line.Bytes(), " \t\r\n")) > 0 {
			h.out = append(h.out, item{line: h.line.String()})
		}
		h.line.Reset()
	}
}

func (t *htmlTable) endCell() {
	if t.cell != nil {
		t.row = append(t.row, cleanValue(t.cell.String()))
		t.cell = nil
	}
}

func (t *htmlTable) endRow() {
	t.endCell()
	if t.inRow || len(t.row) > 0 {
		t.rows = append(t.rows, t.row)
	}
	t.row, t.inRow = nil, false
}

// closeTable closes the innermost open table. A layout table leaves its
// lines and inner tables where they are; any other table replaces the
// lines read inside it with one table item.
func (h *htmlReader) closeTable() {
	t := h.stack[len(h.stack)-1]
	h.stack = h.stack[:len(h.stack)-1]
	t.endRow()
	h.endLine()
	if t.nested {
		return
	}
	h.out = h.out[:t.start]
	if len(t.rows) > 0 {
		h.out = append(h.out, item{table: t.rows})
	}
}

func isBlock(a atom.Atom) bool {
	switch a {
	case atom.P, atom.Div, atom.Tr, atom.Td, atom.Th, atom.Li, atom.Ul, atom.Ol,
		atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Blockquote,
		atom.Pre, atom.Hr, atom.Table, atom.Body, atom.Section, atom.Article,
		atom.Header, atom.Footer, atom.Dl, atom.Dt, atom.Dd, atom.Center, atom.Html:
		return true
	}
	return false
}

// cleanValue turns NBSP and other white space into single spaces, removes
// the invisible format characters (isFormat) and trims. Most values are
// clean already and come back without a copy.
func cleanValue(s string) string {
	// Indentation and trailing blanks are common and need no copy.
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	prevSpace := true // a space at the start is not clean
	clean := true
	for _, r := range s {
		if r < 0x80 && r > ' ' {
			prevSpace = false
			continue
		}
		if !isSpace(r) {
			if isFormat(r) {
				clean = false
				break
			}
			prevSpace = false
			continue
		}
		if r != ' ' || prevSpace {
			clean = false
			break
		}
		prevSpace = true
	}
	if clean && (!prevSpace || s == "") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	pending := false
	for _, r := range s {
		if isSpace(r) {
			pending = b.Len() > 0
			continue
		}
		if isFormat(r) {
			continue
		}
		if pending {
			b.WriteByte(' ')
			pending = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', '\f', '\v', '\u00a0', '\u2007', '\u202f', '\u2002', '\u2003', '\u2009':
		return true
	}
	return false
}

// isFormat reports whether r is an invisible format character (Unicode
// category Cf: zero-width space, zero-width joiners, word joiner, byte-order
// mark, soft hyphen, ...), which HTML editors and copy and paste leave inside
// words. NOTICE.md section 4 removes them before anything else: "Lu&#8203;kas"
// is "Lukas", not "Lu kas".
func isFormat(r rune) bool {
	return r >= 0x80 && unicode.Is(unicode.Cf, r)
}
