package notice

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/eiamtriage/eiamtriage/internal/config"

	"github.com/eiamtriage/eiamtriage/internal/event"
)

type field uint8

const (
	fieldNone field = iota
	fieldProfileID
	fieldApplication
	fieldOrganisation
	fieldSignedInAt
	fieldGivenName
	fieldFamilyName
	fieldEmail
)

// lang is a Language compiled to lookup tables of label keys.
type lang struct {
	code      string
	subjects  []string
	meta      map[string]field
	attr      map[string]field
	attrHead  map[string]bool
	expected  map[string]bool
	actual    map[string]bool
	headWords []string
}

func compileLang(l config.Language) *lang {
	c := &lang{
		code:     l.Code,
		meta:     map[string]field{},
		attr:     map[string]field{},
		attrHead: keySet(l.AttributeHeading),
		expected: keySet(l.ExpectedHeading),
		actual:   keySet(l.ActualHeading),
	}
	for _, s := range l.Subjects {
		c.subjects = append(c.subjects, subjectKey(s))
	}
	for f, labels := range map[field][]string{
		fieldProfileID: l.ProfileID, fieldApplication: l.Application,
		fieldOrganisation: l.Organisation, fieldSignedInAt: l.SignedInAt,
	} {
		for _, s := range labels {
			c.meta[labelKey(s)] = f
		}
	}
	for f, labels := range map[field][]string{
		fieldGivenName: l.GivenName, fieldFamilyName: l.FamilyName, fieldEmail: l.Email,
	} {
		for _, s := range labels {
			c.attr[labelKey(s)] = f
		}
	}
	return c
}

func keySet(labels []string) map[string]bool {
	m := make(map[string]bool, len(labels))
	for _, s := range labels {
		m[labelKey(s)] = true
	}
	return m
}

// labelKey is the form labels are compared in: white space and NBSP
// collapsed and trimmed, a trailing colon dropped, lower case.
func labelKey(s string) string {
	var kb keyBuf
	return string(keyOf(&kb, s))
}

// keyBuf holds a label key on the stack; keyOf fills it.
type keyBuf [128]byte

// keyOf returns the label key of s (see labelKey) in kb's storage, so that
// a map lookup m[string(keyOf(&kb, s))] allocates nothing.
func keyOf(kb *keyBuf, s string) []byte {
	k := kb[:0]
	pending := false
	for _, r := range s {
		if isSpace(r) {
			pending = len(k) > 0
			continue
		}
		if isFormat(r) {
			continue
		}
		if pending {
			k = append(k, ' ')
			pending = false
		}
		switch {
		case r >= 'A' && r <= 'Z':
			k = append(k, byte(r)+'a'-'A')
		case r < utf8.RuneSelf:
			k = append(k, byte(r))
		default:
			k = utf8.AppendRune(k, unicode.ToLower(r))
		}
	}
	for len(k) > 0 && (k[len(k)-1] == ':' || k[len(k)-1] == ' ') {
		k = k[:len(k)-1]
	}
	return k
}

// subjectKey is the form subjects are compared in: lower case, white space
// collapsed, no space around a colon, en and em dashes as hyphens.
func subjectKey(s string) string {
	s = strings.ToLower(cleanValue(s))
	s = strings.ReplaceAll(strings.ReplaceAll(s, " :", ":"), ": ", ":")
	s = strings.ReplaceAll(s, "–", "-")
	s = strings.ReplaceAll(s, "—", "-")
	return s
}

// stripPrefixes removes forward prefixes ("WG:", "TR : ", "fwd:") from the
// start of a subject, as many as there are.
func (p *Parser) stripPrefixes(s string) string {
	for {
		t := strings.TrimLeft(s, " \t\u00a0")
		matched := false
		for _, pr := range p.prefixes {
			if len(t) > len(pr) && strings.EqualFold(t[:len(pr)], pr) {
				r := strings.TrimLeft(t[len(pr):], " \t\u00a0")
				if strings.HasPrefix(r, ":") {
					s = r[1:]
					matched = true
					break
				}
			}
		}
		if !matched {
			return strings.TrimSpace(t)
		}
	}
}

// matchSubject finds the language whose notice subject the subject is, and
// the profile's name at its end.
func (p *Parser) matchSubject(subject string) (*lang, string, bool) {
	if subject == "" {
		return nil, "", false
	}
	s := p.stripPrefixes(subject)
	key := subjectKey(s)
	for _, l := range p.langs {
		for _, sk := range l.subjects {
			if !strings.HasPrefix(key, sk) {
				continue
			}
			rest := strings.TrimSpace(key[len(sk):])
			if rest == "" {
				return l, "", true
			}
			if rest[0] != '-' {
				continue
			}
			// Find the dash in the original subject that ends the subject
			// text: it stands within a few bytes of the subject text's
			// length (white space may differ), never further.
			limit := min(len(s), 2*len(sk)+16)
			for i, r := range s[:limit] {
				if (r == '-' || r == '–' || r == '—') && subjectKey(s[:i]) == sk {
					return l, cleanValue(s[i+utf8.RuneLen(r):]), true
				}
			}
			return l, "", true
		}
	}
	return nil, "", false
}

// splitRow splits a "Label: value" line at its first colon.
func splitRow(line string) (label, value string, ok bool) {
	i := strings.IndexByte(line, ':')
	if i <= 0 || i > 80 {
		return "", "", false
	}
	label = cleanValue(line[:i])
	if label == "" {
		return "", "", false
	}
	return label, cleanValue(line[i+1:]), true
}

// forwardBlock is the header block a mail program writes above a message
// it forwards: the quoted sender (one address, ASCII-folded; "" when the
// block names none or several), recipients and subject, and what follows.
type forwardBlock struct {
	from, subject string
	to            []string
	rest          []item
}

func (p *Parser) isMarker(t string) bool {
	var kb keyBuf
	k := keyOf(&kb, strings.Trim(t, "-–— _"))
	if len(k) == 0 {
		return false
	}
	for _, m := range p.markers {
		if string(k) == m {
			return true
		}
	}
	return false
}

// forwardLabel says what a label of a quoted header block is: 'f' (from),
// 's' (subject), 't' (to), 'o' (another one) or 0 (none).
func (p *Parser) forwardLabel(kb *keyBuf, label string) byte {
	k := keyOf(kb, label) // looked up as m[string(k)], which allocates nothing
	switch {
	case p.fwdFrom[string(k)]:
		return 'f'
	case p.fwdSubject[string(k)]:
		return 's'
	case p.fwdTo[string(k)]:
		return 't'
	case p.fwdOther[string(k)]:
		return 'o'
	}
	return 0
}

// headerRows returns the label and value rows of a table that is a quoted
// header block (Thunderbird's moz-email-headers-table: two cells a row,
// each first cell a forward label); ok is false for any other table.
func (p *Parser) headerRows(kb *keyBuf, table [][]string) (rows [][2]string, ok bool) {
	from := false
	for _, r := range table {
		if len(r) == 0 || (len(r) == 1 && r[0] == "") {
			continue
		}
		if len(r) != 2 {
			return nil, false
		}
		l := p.forwardLabel(kb, r[0])
		if l == 0 {
			return nil, false
		}
		from = from || l == 'f'
		rows = append(rows, [2]string{r[0], r[1]})
	}
	return rows, from
}

// findForward finds the first header block a mail program writes above a
// forwarded message: a marker line such as Gmail's, Thunderbird's or Apple
// Mail's, or Outlook's "Von:" ... "Betreff:" rows, or Thunderbird's header
// table, and returns the quoted sender, recipients and subject and what
// follows. A block needs a sender row, and without a marker a subject row
// too, so that a "Von: ..." line in a person's text is not one.
func (p *Parser) findForward(items []item) (forwardBlock, bool) {
	var kb keyBuf
	for i := 0; i < len(items); i++ {
		start, marked := -1, false
		if items[i].isTable() {
			if _, ok := p.headerRows(&kb, items[i].table); ok {
				start = i
			}
		} else {
			t := cleanValue(items[i].line)
			if p.isMarker(t) {
				start, marked = i+1, true
			} else if label, _, ok := splitRow(t); ok && p.forwardLabel(&kb, label) == 'f' {
				start = i
			}
		}
		if start < 0 {
			continue
		}
		var fw forwardBlock
		hasFrom, hasSubject, got := false, false, false
		add := func(label, value string) bool {
			switch p.forwardLabel(&kb, label) {
			case 'f':
				if !hasFrom {
					fw.from = extractAddress(value)
				}
				hasFrom = true
			case 's':
				if !hasSubject {
					fw.subject = value
				}
				hasSubject = true
			case 't':
				if fw.to == nil {
					fw.to = extractAddresses(value)
				}
			case 'o':
			default:
				return false
			}
			got = true
			return true
		}
		j := start
	block:
		for ; j < len(items); j++ {
			if items[j].isTable() {
				rows, ok := p.headerRows(&kb, items[j].table)
				if !ok || got {
					break
				}
				for _, r := range rows {
					add(r[0], r[1])
				}
				j++
				break
			}
			line := cleanValue(items[j].line)
			if line == "" {
				if got {
					break
				}
				continue
			}
			label, value, ok := splitRow(line)
			if !ok || !add(label, value) {
				break block
			}
		}
		if hasFrom && (marked || hasSubject) {
			fw.rest = items[j:]
			return fw, true
		}
		if j > i+1 {
			i = j - 1 // not a forward block: go on after it, not inside it
		}
	}
	return forwardBlock{}, false
}

// candidate is one body to be read into items. An HTML body is parsed on
// first use only: most messages are settled by their text part.
type candidate struct {
	b       *budget
	html    bool
	src     string
	items   []item
	parsed  bool
	problem string
}

// get returns the body's items, reading them on first use. When the
// context ends while they are read, there are none (Parse then returns the
// context's error).
func (c *candidate) get() []item {
	if !c.parsed {
		c.parsed = true
		if c.html {
			items, err := htmlItems(c.b, c.src)
			if err != nil && c.b.ctx.Err() == nil {
				c.problem = "an HTML part cannot be parsed: " + err.Error()
			}
			c.items = items
		} else {
			c.items, _ = textItems(c.b, c.src)
		}
	}
	return c.items
}

// candidates lists the bodies, text parts first (cheaper to read), then
// HTML parts. readNotice stops at the first that holds a complete
// comparison, so the HTML part of an alternative is parsed only when its
// text part lacks one.
func candidates(bg *budget, b *bodies) []*candidate {
	cs := make([]*candidate, 0, len(b.plain)+len(b.html))
	for _, t := range b.plain {
		cs = append(cs, &candidate{b: bg, src: t})
	}
	for _, h := range b.html {
		cs = append(cs, &candidate{b: bg, src: h, html: true})
	}
	return cs
}

// comparison is what findComparison read of the entered and signed-in data.
type comparison struct {
	layout   event.Layout
	start    int // index of the item where the comparison starts
	exp, act event.Person
	extras   []event.Row
	cells    int // compared values present, 0..6
	rows     int // attribute rows found, 0..3
}

func (c *comparison) complete() bool { return c.rows == 3 }

// set stores v into the field f of the person unless it was set already.
func set(p *event.Person, f field, v string, seen *[8]bool, side int) {
	idx := int(f-fieldGivenName)*2 + side
	if seen[idx] {
		return
	}
	seen[idx] = true
	switch f {
	case fieldGivenName:
		p.GivenName = v
	case fieldFamilyName:
		p.FamilyName = v
	case fieldEmail:
		p.Email = cleanEmail(v)
	}
}

// cleanEmail drops a mail program's link decoration from an address
// ("a@b.ch <mailto:a@b.ch>", "mailto:a@b.ch").
func cleanEmail(v string) string {
	if i := strings.Index(v, " <mailto:"); i > 0 {
		v = v[:i]
	}
	if i := strings.Index(v, " [mailto:"); i > 0 {
		v = v[:i]
	}
	v = strings.TrimPrefix(v, "mailto:")
	return strings.Trim(v, "<> ")
}

// findComparison looks for the comparison in the language l: first a table
// whose header names the expected and actual columns, then the blocks
// layout. ok is false when neither is there.
func findComparison(c *candidate, l *lang) (comparison, bool) {
	items := c.get()
	for i, it := range items {
		if !it.isTable() {
			continue
		}
		if cmp, ok := readTable(it.table, l); ok {
			cmp.start = i
			cmp.layout = event.LayoutTextTable
			if c.html {
				cmp.layout = event.LayoutHTMLTable
			}
			return cmp, true
		}
	}
	return readBlocks(items, l)
}

func readTable(rows [][]string, l *lang) (comparison, bool) {
	var kb keyBuf
	for r, row := range rows {
		expCol, actCol := -1, -1
		for i, cell := range row {
			k := keyOf(&kb, cell)
			if expCol < 0 && l.expected[string(k)] {
				expCol = i
			} else if actCol < 0 && l.actual[string(k)] {
				actCol = i
			}
		}
		if expCol < 0 || actCol < 0 {
			continue
		}
		attrCol := 0
		for attrCol == expCol || attrCol == actCol {
			attrCol++
		}
		var cmp comparison
		var seen [8]bool
		for _, row := range rows[r+1:] {
			label := cell(row, attrCol)
			ev, av := cell(row, expCol), cell(row, actCol)
			if label == "" && ev == "" && av == "" {
				continue
			}
			f, known := l.attr[string(keyOf(&kb, label))]
			if !known {
				cmp.extras = append(cmp.extras, event.Row{Label: label, Expected: ev, Actual: av})
				continue
			}
			if !seen[int(f-fieldGivenName)*2] {
				cmp.rows++
			}
			set(&cmp.exp, f, ev, &seen, 0)
			set(&cmp.act, f, av, &seen, 1)
		}
		cmp.cells = countCells(cmp.exp) + countCells(cmp.act)
		return cmp, true
	}
	return comparison{}, false
}

func cell(row []string, i int) string {
	if i < len(row) {
		return row[i]
	}
	return ""
}

func countCells(p event.Person) int {
	n := 0
	for _, v := range []string{p.GivenName, p.FamilyName, p.Email} {
		if v != "" {
			n++
		}
	}
	return n
}

// readBlocks reads the blocks layout: a heading line for each side, then
// "Label: value" lines. After a blank line inside a block only known
// attribute labels continue it, so a closing "Note: ..." is not an extra row.
func readBlocks(items []item, l *lang) (comparison, bool) {
	var kb keyBuf
	var cmp comparison
	var seen [8]bool
	side := -1
	afterBlank := false
	foundExp, foundAct := false, false
	extraIdx := map[string]int{}
	for i, it := range items {
		if it.isTable() {
			side = -1
			continue
		}
		line := cleanValue(it.line)
		if line == "" {
			afterBlank = true
			continue
		}
		k := keyOf(&kb, line)
		if l.expected[string(k)] {
			if !foundExp {
				if !foundAct {
					cmp.start = i
				}
				foundExp = true
				side, afterBlank = 0, false
				continue
			}
		}
		if l.actual[string(k)] {
			if !foundAct {
				if !foundExp {
					cmp.start = i
				}
				foundAct = true
				side, afterBlank = 1, false
				continue
			}
		}
		if side < 0 {
			continue
		}
		label, value, ok := splitRow(line)
		if !ok {
			side = -1
			continue
		}
		f, known := l.attr[string(keyOf(&kb, label))]
		if !known {
			if afterBlank {
				side = -1
				continue
			}
			lk := labelKey(label)
			j, ok := extraIdx[lk]
			if !ok {
				j = len(cmp.extras)
				extraIdx[lk] = j
				cmp.extras = append(cmp.extras, event.Row{Label: label})
			}
			if side == 0 {
				cmp.extras[j].Expected = value
			} else {
				cmp.extras[j].Actual = value
			}
			continue
		}
		if side == 0 {
			set(&cmp.exp, f, value, &seen, 0)
		} else {
			set(&cmp.act, f, value, &seen, 1)
		}
	}
	if !foundExp || !foundAct {
		return comparison{}, false
	}
	for f := range 3 {
		if seen[f*2] && seen[f*2+1] {
			cmp.rows++
		}
	}
	cmp.layout = event.LayoutBlocks
	cmp.cells = countCells(cmp.exp) + countCells(cmp.act)
	return cmp, true
}

// readNotice reads the notice out of the candidates, with the subject's
// language tried first. It returns nil when there is neither a notice
// subject nor a comparison: the mail is not a notice.
func (p *Parser) readNotice(subject string, cands []*candidate, problems []string) *event.Notice {
	hint, name, subjOK := p.matchSubject(subject)
	order := p.langs
	if hint != nil && p.langs[0] != hint {
		order = append([]*lang{hint}, without(p.langs, hint)...)
	}
	var best comparison
	var bestLang *lang
	var bestCand *candidate
	found := false
search:
	for _, c := range cands {
		if c.b != nil && c.b.ctx.Err() != nil {
			return nil
		}
		for _, l := range order {
			cmp, ok := findComparison(c, l)
			if !ok {
				continue
			}
			if !found || cmp.rows > best.rows || (cmp.rows == best.rows && cmp.cells > best.cells) {
				best, bestLang, bestCand, found = cmp, l, c, true
			}
			if cmp.complete() && cmp.cells == 6 {
				break search
			}
			break // the headings name one language; no need to try others here
		}
	}
	if !found && !subjOK {
		return nil
	}
	n := &event.Notice{Subject: subject, SubjectName: name, Problems: append([]string(nil), problems...)}
	for _, c := range cands {
		if c.problem != "" {
			n.Problems = append(n.Problems, c.problem)
		}
	}
	if !found {
		n.Language = hint.code
		n.Problems = append(n.Problems, "the comparison of the entered and the signed-in data was not found in the mail")
		// The metadata still names the profile, so the notice joins its
		// case; read it from the first body that has it.
		for _, c := range cands {
			if p.readMeta(n, c.get(), hint); n.ProfileID != "" {
				break
			}
		}
		return n
	}
	n.Language = bestLang.code
	n.Layout = best.layout
	n.Expected, n.Actual = best.exp, best.act
	p.readMeta(n, bestCand.get()[:best.start], bestLang)
	n.ExtraRows = append(n.ExtraRows, best.extras...)
	// A missing attribute row leaves its value empty: the classifier's
	// rule 1 (a compared value is missing) sends it to review.
	return n
}

func without(ls []*lang, x *lang) []*lang {
	out := make([]*lang, 0, len(ls))
	for _, l := range ls {
		if l != x {
			out = append(out, l)
		}
	}
	return out
}

// readMeta reads the metadata rows: the run of consecutive "Label: value"
// lines that holds a known metadata label. Unknown rows of that run are
// kept as extra rows.
func (p *Parser) readMeta(n *event.Notice, items []item, l *lang) {
	runStart := -1
	var kb keyBuf
	flush := func(end int) {
		if runStart < 0 {
			return
		}
		known := false
		for _, it := range items[runStart:end] {
			label, _, _ := splitRow(cleanValue(it.line))
			if _, ok := l.meta[string(keyOf(&kb, label))]; ok {
				known = true
				break
			}
		}
		if known {
			for _, it := range items[runStart:end] {
				label, value, _ := splitRow(cleanValue(it.line))
				switch l.meta[string(keyOf(&kb, label))] {
				case fieldProfileID:
					n.ProfileID = value
				case fieldApplication:
					n.Application = value
				case fieldOrganisation:
					n.Organisation = value
				case fieldSignedInAt:
					n.SignedInRaw = value
					n.SignedInAt = p.parseTime(value)
				default:
					n.ExtraRows = append(n.ExtraRows, event.Row{Label: label, Value: value})
				}
			}
		}
		runStart = -1
	}
	for i, it := range items {
		if !it.isTable() {
			if _, _, ok := splitRow(cleanValue(it.line)); ok {
				if runStart < 0 {
					runStart = i
				}
				continue
			}
		}
		flush(i)
	}
	flush(len(items))
}

func (p *Parser) parseTime(s string) time.Time {
	for _, layout := range []string{"02.01.2006 15:04", "2.1.2006 15:04", "02.01.2006 15:04:05", "02.01.2006, 15:04"} {
		if t, err := time.ParseInLocation(layout, s, p.loc); err == nil {
			return t
		}
	}
	return time.Time{}
}
