package notice

import (
	"bytes"
	"io"
	"strings"
	"unicode"

	"github.com/emersion/go-message"
	// Registers the character sets of the contract (ISO-8859-1,
	// windows-1252, ...) with go-message; without it such parts fail.
	_ "github.com/emersion/go-message/charset"
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

// bodies holds the text parts of one message (not of attached messages).
type bodies struct {
	plain    []string // decoded text/plain parts, format=flowed undone
	html     []string // decoded text/html parts
	attached [][]byte // raw message/rfc822 parts, undecoded
	report   bool     // the message is a multipart/report
	problems []string // parts that could not be decoded
}

// maxPartBytes bounds what is read of one part; a notice is a few KiB.
const maxPartBytes = 4 << 20

// readBodies walks the entity's MIME tree. Undecodable parts are noted,
// never fatal: malformed mail is the norm in a mailbox.
// sizeHint is the raw message's length: no decoded part is much longer, so
// reading a part into a buffer of that size needs no regrowth.
func readBodies(e *message.Entity, sizeHint int) (*bodies, error) {
	readPart := func(r io.Reader) ([]byte, error) {
		buf := bytes.NewBuffer(make([]byte, 0, min(sizeHint+512, maxPartBytes)))
		_, err := buf.ReadFrom(io.LimitReader(r, maxPartBytes))
		return buf.Bytes(), err
	}
	b := &bodies{}
	err := e.Walk(func(path []int, part *message.Entity, err error) error {
		if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
			return err
		}
		mt, params, _ := part.Header.ContentType()
		if mt == "" {
			mt = "text/plain"
		}
		if mt == "multipart/report" {
			b.report = true
		}
		if strings.HasPrefix(mt, "multipart/") {
			return nil
		}
		if message.IsUnknownEncoding(err) {
			b.problems = append(b.problems, "a "+mt+" part has an unknown transfer encoding")
			return nil
		}
		disp, _, _ := part.Header.ContentDisposition()
		switch {
		case mt == "message/rfc822" || mt == "message/global":
			raw, rerr := readPart(part.Body)
			if rerr != nil {
				b.problems = append(b.problems, "an attached message could not be read: "+rerr.Error())
				return nil
			}
			b.attached = append(b.attached, raw)
		case (mt == "text/plain" || mt == "text/html") && disp != "attachment":
			data, rerr := readPart(part.Body)
			if rerr != nil {
				b.problems = append(b.problems, "a "+mt+" part could not be decoded: "+rerr.Error())
				return nil
			}
			if message.IsUnknownCharset(err) {
				b.problems = append(b.problems, "a "+mt+" part has an unknown charset "+params["charset"])
			}
			s := string(data)
			if mt == "text/html" {
				b.html = append(b.html, s)
			} else {
				if strings.EqualFold(params["format"], "flowed") {
					s = unflow(s, strings.EqualFold(params["delsp"], "yes"))
				}
				b.plain = append(b.plain, s)
			}
		}
		return nil
	})
	return b, err
}

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
func textItems(s string) []item {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	items := make([]item, 0, len(lines))
	var table [][]string
	endTable := func() {
		if table != nil {
			items = append(items, item{table: table})
			table = nil
		}
	}
	for _, l := range lines {
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
	return items
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
// entities (&uuml;, &#233;, &nbsp;) are decoded by it.
func htmlItems(s string) ([]item, error) {
	z := html.NewTokenizer(strings.NewReader(s))
	root := &htmlFrame{}
	stack := []*htmlFrame{root}
	skip := atom.Atom(0) // inside <script>, <style>, <head> or <title>
	ignored := 0         // open tables past maxTableDepth
	for {
		tt := z.Next()
		top := stack[len(stack)-1]
		switch tt {
		case html.ErrorToken:
			if err := z.Err(); err != io.EOF {
				return nil, err
			}
			for len(stack) > 1 {
				stack = closeTable(stack)
			}
			root.endLine()
			return root.items, nil
		case html.TextToken:
			if skip != 0 {
				continue
			}
			text := z.Text()
			top.line.Write(text)
			if top.cell != nil {
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
				top.endLine()
				if top.cell != nil {
					top.cell.WriteByte(' ')
				}
			case atom.Table:
				top.endLine()
				if len(stack) > maxTableDepth {
					ignored++ // deeper tables read as text of the one that holds them
					continue
				}
				top.nested = top.table
				stack = append(stack, &htmlFrame{table: true})
			case atom.Tr:
				top.endCell()
				top.endRow()
				top.endLine()
				top.inRow = top.table
			case atom.Td, atom.Th:
				top.endCell()
				top.endLine()
				if top.table {
					top.cell = new(bytes.Buffer)
				}
			default:
				if isBlock(a) {
					top.endLine()
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
				if len(stack) > 1 {
					stack = closeTable(stack)
				}
			case atom.Td, atom.Th:
				top.endCell()
				top.endLine()
			case atom.Tr:
				top.endCell()
				top.endRow()
				top.endLine()
			default:
				if isBlock(a) {
					top.endLine()
				}
			}
		}
	}
}

// maxTableDepth bounds the tables read as tables inside one another: mail
// programs nest a few layout tables, and deeper nesting would only make the
// reading quadratic.
const maxTableDepth = 32

// htmlFrame is the document or one open table while tokenizing.
type htmlFrame struct {
	table  bool
	nested bool // a table that holds a table: read as text
	items  []item
	line   bytes.Buffer
	rows   [][]string
	row    []string
	inRow  bool
	cell   *bytes.Buffer
}

func (f *htmlFrame) endLine() {
	if f.line.Len() > 0 {
		f.items = append(f.items, item{line: f.line.String()})
		f.line.Reset()
	}
}

func (f *htmlFrame) endCell() {
	if f.cell != nil {
		f.row = append(f.row, cleanValue(f.cell.String()))
		f.cell = nil
	}
}

func (f *htmlFrame) endRow() {
	f.endCell()
	if f.inRow || len(f.row) > 0 {
		f.rows = append(f.rows, f.row)
	}
	f.row, f.inRow = nil, false
}

// closeTable pops the innermost table and gives it to its parent: as a
// table item, or as its text when it is a layout table.
func closeTable(stack []*htmlFrame) []*htmlFrame {
	f := stack[len(stack)-1]
	stack = stack[:len(stack)-1]
	parent := stack[len(stack)-1]
	f.endRow()
	f.endLine()
	parent.endLine()
	if f.nested {
		parent.items = append(parent.items, f.items...)
	} else if len(f.rows) > 0 {
		parent.items = append(parent.items, item{table: f.rows})
	}
	return stack
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
