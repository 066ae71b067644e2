// Package render turns what the actions decided into mail: a subject, a
// text/plain body and a text/html body, from templates embedded in the
// binary (templates/) and overridable file by file from a directory, in
// the four languages of the service (de, fr, it, en). It is pure: data in,
// text out, no I/O but reading the templates once.
//
// Every value that comes from a mail is hostile. The view constructors
// (NewCase and the like) pass each through Clean, which writes control
// characters, bidirectional and other invisible format characters as
// visible escapes (\n, \x1b, \u202e) and bounds the length; html/template
// escapes the rest of HTML. A rendered mail is checked once more: a
// control character in a subject, or in a body other than line ends and
// tabs, is an error, never a mail.
//
// # Templates
//
// For each language L and mail kind K there are L/K.txt and L/K.html. The
// text file defines "subject" (one line; white space is collapsed) and
// "body"; the HTML file defines "content", which layout.html wraps. Each
// language's L/labels.tmpl defines the words the shared partials
// (partials.txt, partials.html: the comparison table, the task steps, ages)
// use, and the task steps are L/task-deactivate.txt and
// L/task-recreate.txt (the first line says where, each further line is a
// step). A file of the same name in the override directory replaces the
// built-in one.
package render

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"slices"
	"strings"
	texttemplate "text/template"
	"unicode"
	"unicode/utf8"
)

//go:embed templates
var builtin embed.FS

// Kind is a kind of mail the service sends; its name is the template's
// and, for the outbox, X-Eiamtriage-Kind's.
type Kind string

// The kinds of mail.
const (
	// KindEscalation: a wrong-person case forwarded to federal support.
	KindEscalation Kind = "escalation"
	// KindUserMail: the mail to the user of a private-email case.
	KindUserMail Kind = "user-mail"
	// KindDraft: that mail drafted for the superusers to send.
	KindDraft Kind = "draft"
	// KindAlert: the urgent alert of a wrong-person case to a superuser.
	KindAlert Kind = "alert"
	// KindDecision: a review case, asking the superuser to decide.
	KindDecision Kind = "decision"
	// KindHold: actions held past a cap, waiting for release.
	KindHold Kind = "hold"
	// KindSummary: the triage summary.
	KindSummary Kind = "summary"
)

// Kinds lists every kind of mail.
var Kinds = []Kind{KindEscalation, KindUserMail, KindDraft, KindAlert, KindDecision, KindHold, KindSummary}

// Languages are the languages of the templates.
var Languages = []string{"de", "fr", "it", "en"}

// Mail is a rendered mail.
type Mail struct {
	Subject, Text, HTML string
}

// Renderer renders mail from its templates. Build it with New; it is safe
// for concurrent use.
type Renderer struct {
	text  map[string]*texttemplate.Template // by "lang/kind"
	html  map[string]*htmltemplate.Template
	steps map[string]*texttemplate.Template // by "lang/task-<kind>"
}

// New parses every template, the files of dir (when not "") replacing the
// built-in ones of the same name. An error names the file.
func New(dir string) (*Renderer, error) {
	base, err := fs.Sub(builtin, "templates")
	if err != nil {
		return nil, err
	}
	var fsys fs.FS = base
	if dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("render: template directory %q (actions.templates) is not a directory", dir)
		}
		fsys = overlay{top: os.DirFS(dir), base: base}
	}
	r := &Renderer{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}, steps: map[string]*texttemplate.Template{}}
	for _, lang := range Languages {
		labels := lang + "/labels.tmpl"
		words, err := texttemplate.New("labels").Funcs(funcs(nil)).ParseFS(fsys, labels)
		if err != nil {
			return nil, fmt.Errorf("render: template %s: %w", labels, err)
		}
		fm := funcs(words)
		for _, k := range Kinds {
			key := lang + "/" + string(k)
			t, err := texttemplate.New(string(k)).Funcs(fm).ParseFS(fsys, labels, "partials.txt", key+".txt")
			if err != nil {
				return nil, fmt.Errorf("render: template %s.txt: %w", key, err)
			}
			for _, name := range []string{"subject", "body"} {
				if t.Lookup(name) == nil {
					return nil, fmt.Errorf("render: template %s.txt defines no %q", key, name)
				}
			}
			r.text[key] = t
			h, err := htmltemplate.New(string(k)).Funcs(fm).ParseFS(fsys, labels, "partials.html", "layout.html", key+".html")
			if err != nil {
				return nil, fmt.Errorf("render: template %s.html: %w", key, err)
			}
			if h.Lookup("content") == nil {
				return nil, fmt.Errorf("render: template %s.html defines no \"content\"", key)
			}
			r.html[key] = h
		}
		for _, tk := range []string{"task-deactivate", "task-recreate"} {
			key := lang + "/" + tk
			t, err := texttemplate.New(tk+".txt").Funcs(fm).ParseFS(fsys, key+".txt")
			if err != nil {
				return nil, fmt.Errorf("render: template %s.txt: %w", key, err)
			}
			r.steps[key] = t
		}
	}
	return r, nil
}

// overlay reads a file from top when it is there, else from base.
type overlay struct{ top, base fs.FS }

func (o overlay) Open(name string) (fs.File, error) {
	f, err := o.top.Open(name)
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return o.base.Open(name)
}

// funcs are the template functions; label renders a word of the
// language's labels (words): a word it does not define is shown as its
// name's last part, so that a new state or kind reads as itself.
func funcs(words *texttemplate.Template) map[string]any {
	return map[string]any{
		"label": func(name string) (string, error) {
			var t *texttemplate.Template
			if words != nil {
				t = words.Lookup(name)
			}
			if t == nil {
				return Clean(name[strings.LastIndexByte(name, '.')+1:]), nil
			}
			var b strings.Builder
			if err := t.Execute(&b, nil); err != nil {
				return "", err
			}
			return b.String(), nil
		},
		// pad writes s and spaces up to n characters.
		"pad": func(n int, s string) string {
			if c := utf8.RuneCountInString(s); c < n {
				return s + strings.Repeat(" ", n-c)
			}
			return s
		},
		"join": strings.Join,
		"inc":  func(i int) int { return i + 1 },
		// dash stands for an empty value.
		"dash": func(s string) string {
			if s == "" {
				return "—"
			}
			return s
		},
	}
}

// View is the data of one mail. Each view type embeds Common, which the
// renderer fills.
type View interface{ common() *Common }

// Common is what every template may use besides its own data.
type Common struct {
	// Lang is the mail's language; Subject the rendered subject (for the
	// HTML title).
	Lang, Subject string
	// DryRun: the service runs in dry-run mode (nothing is sent; the
	// templates may say so).
	DryRun bool
}

func (c *Common) common() *Common { return c }

// maxSubject bounds a subject, in characters.
const maxSubject = 200

// Render renders the mail of kind in lang with v. lang must be one of
// Languages.
func (r *Renderer) Render(kind Kind, lang string, v View) (Mail, error) {
	key := lang + "/" + string(kind)
	t, ok := r.text[key]
	if !ok {
		return Mail{}, fmt.Errorf("render: no template %s (kind %q, language %q: use one of %s)", key, kind, lang, strings.Join(Languages, ", "))
	}
	c := v.common()
	c.Lang = lang
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "subject", v); err != nil {
		return Mail{}, fmt.Errorf("render: %s subject: %w", key, err)
	}
	subject := strings.Join(strings.Fields(b.String()), " ")
	if utf8.RuneCountInString(subject) > maxSubject {
		subject = string([]rune(subject)[:maxSubject-1]) + "…"
	}
	if subject == "" {
		return Mail{}, fmt.Errorf("render: %s: the subject is empty", key)
	}
	c.Subject = subject
	b.Reset()
	if err := t.ExecuteTemplate(&b, "body", v); err != nil {
		return Mail{}, fmt.Errorf("render: %s text: %w", key, err)
	}
	text := tidy(b.String())
	b.Reset()
	if err := r.html[key].ExecuteTemplate(&b, "layout", v); err != nil {
		return Mail{}, fmt.Errorf("render: %s HTML: %w", key, err)
	}
	m := Mail{Subject: subject, Text: text, HTML: tidy(b.String())}
	if err := check(m); err != nil {
		return Mail{}, fmt.Errorf("render: %s: %w", key, err)
	}
	return m, nil
}

// Steps renders the task kind's place and steps in lang: where, then each
// step.
func (r *Renderer) Steps(kind, lang string, v TaskData) (where string, steps []string, err error) {
	key := lang + "/task-" + kind
	t, ok := r.steps[key]
	if !ok {
		return "", nil, fmt.Errorf("render: no task template %s", key)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return "", nil, fmt.Errorf("render: %s: %w", key, err)
	}
	var lines []string
	for l := range strings.SplitSeq(b.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) < 2 {
		return "", nil, fmt.Errorf("render: %s gives %d lines; want where, then at least one step", key, len(lines))
	}
	for _, l := range lines {
		if i := strings.IndexFunc(l, unicode.IsControl); i >= 0 {
			return "", nil, fmt.Errorf("render: %s: a control character %+q in a step", key, l[i])
		}
	}
	return lines[0], lines[1:], nil
}

// tidy trims trailing white space from each line, drops runs of more than
// one blank line, and ends the text with one line end.
func tidy(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	blank := true // no blank lines at the top
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\r")
		if l == "" {
			if blank {
				continue
			}
			blank = true
		} else {
			blank = false
		}
		out = append(out, l)
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return strings.Join(out, "\n") + "\n"
}

// check is the last line of defence: no control character in the
// subject, none in the bodies but line ends and tabs.
func check(m Mail) error {
	if i := strings.IndexFunc(m.Subject, isUnsafe); i >= 0 {
		return fmt.Errorf("the subject holds %+q at byte %d", m.Subject[i], i)
	}
	for name, body := range map[string]string{"text": m.Text, "HTML": m.HTML} {
		if i := strings.IndexFunc(body, func(r rune) bool { return r != '\n' && r != '\t' && isUnsafe(r) }); i >= 0 {
			return fmt.Errorf("the %s body holds %+q at byte %d", name, body[i], i)
		}
	}
	return nil
}

func isUnsafe(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError
}

// maxValue bounds one value from a mail, in characters.
const maxValue = 200

// Clean makes a value from a mail safe to show anywhere: invalid UTF-8
// becomes U+FFFD (shown as \ufffd), a backslash \\, line ends, tabs and
// other control characters \n, \r, \t, \x1b, invisible format characters
// (bidirectional overrides, zero-width spaces, soft hyphens) \u202e and the
// like; the result is cut at maxValue characters with "…". It keeps a
// value readable and makes what is hidden in it visible.
func Clean(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n >= maxValue {
			b.WriteString("…")
			break
		}
		n++
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, `\x%02x`, r)
		case isUnsafe(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// CleanAll cleans each value.
func CleanAll(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = Clean(s)
	}
	return slices.Clip(out)
}
