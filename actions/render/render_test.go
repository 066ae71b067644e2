package render

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/event"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

var zurich = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Zurich")
	if err != nil {
		panic(err)
	}
	return loc
}()

// now is the fixed clock of every rendering here.
var now = time.Date(2026, 3, 30, 7, 30, 0, 0, zurich)

// hostileCase is a wrong-person case whose values try everything a mail
// can: markup, quotes, an escape sequence, a line break with a header
// after it, a bidirectional override, a zero-width space.
func hostileCase() *event.Case {
	return &event.Case{
		ID: "p.0b8f3a52-6c1d-4e1f-9a7b-2f3c4d5e6f70", ProfileID: "0b8f3a52-6c1d-4e1f-9a7b-2f3c4d5e6f70",
		Mailbox: "be", Class: event.ClassWrongPerson, Rule: 2, Names: "different", Language: "de",
		Application: "SpiGes", Organisation: `Spital <script>alert("x")</script> & Co`,
		SignedInAt: time.Date(2026, 3, 29, 14, 5, 0, 0, zurich),
		Expected:   event.Person{GivenName: "Anna", FamilyName: "Muster\x1b[31m", Email: "anna.muster@be.ch"},
		Actual:     event.Person{GivenName: `Mallory "Bob" O'Brien`, FamilyName: "Evil\r\nBcc: victim@evil.example", Email: "mallory\u202egro.live@gmail.com"},
		Reasons:    []string{`rule 2: the given names "Anna" and "Mallory <b>Bob</b>" share no name`},
		Notices:    []event.NoticeRef{{MailID: strings.Repeat("ab", 32), Mailbox: "be", AddressedTo: "martina.graf@be.ch", Delivery: event.DeliveryDirect}},
		Created:    now.Add(-26 * time.Hour), Updated: now.Add(-26 * time.Hour),
	}
}

func privateCase() *event.Case {
	return &event.Case{
		ID: "p.7d1e2f30-aaaa-4bbb-8ccc-123456789abc", ProfileID: "7d1e2f30-aaaa-4bbb-8ccc-123456789abc",
		Mailbox: "be", Class: event.ClassPrivateEmail, Rule: 4, Names: "same", Language: "fr",
		Application: "SpiGes", Organisation: "Hôpital du Jura bernois",
		SignedInAt: time.Date(2026, 3, 29, 9, 12, 0, 0, zurich),
		Expected:   event.Person{GivenName: "Zoé", FamilyName: "Dupont\u200b", Email: "zoe.dupont@hjb.ch"},
		Actual:     event.Person{GivenName: "Zoé", FamilyName: "Dupont", Email: "zoe.d@gmail.com"},
		Reasons:    []string{"rule 4: the signed-in address zoe.d@gmail.com is a free-mail address"},
		Created:    now.Add(-3 * time.Hour), Updated: now.Add(-3 * time.Hour),
	}
}

func reviewCase() *event.Case {
	return &event.Case{
		ID: "p.1f2e3d4c-0000-4000-8000-00000000beef", ProfileID: "1f2e3d4c-0000-4000-8000-00000000beef",
		Mailbox: "be", Class: event.ClassReview, Rule: 3, Names: "partial", Language: "it",
		Organisation: "Ente Ospedaliero", Expected: event.Person{GivenName: "Sara", FamilyName: "Bianchi", Email: "sara.bianchi@eoc.ch"},
		Actual:  event.Person{GivenName: "Sara", FamilyName: "Rossi", Email: "sara.bianchi@eoc.ch"},
		Reasons: []string{"rule 3: the same given name with another family name: a change of name, or another person"},
		Created: now.Add(-50 * time.Hour), Updated: now.Add(-50 * time.Hour),
	}
}

func negligibleCase() *event.Case {
	return &event.Case{
		ID: "p.99999999-1111-4222-8333-444444444444", ProfileID: "99999999-1111-4222-8333-444444444444",
		Mailbox: "be", Class: event.ClassNegligible, Rule: 5, Names: "same", Language: "de", Organisation: "Inselspital",
		Expected: event.Person{GivenName: "Jürg", FamilyName: "Müller", Email: "juerg.mueller@insel.ch"},
		Actual:   event.Person{GivenName: "Juerg", FamilyName: "Mueller", Email: "juerg.mueller@gef.insel.ch"},
		Reasons:  []string{"rule 5: both addresses are in the same domain"},
		Created:  now.Add(-5 * time.Hour), Updated: now.Add(-5 * time.Hour),
	}
}

const portal = "https://portal.example.admin.ch/delegation"

func task(t *testing.T, r *Renderer, kind event.TaskKind, c *event.Case, lang string, urgent bool) *Task {
	t.Helper()
	id := string(kind) + "." + c.ID
	where, steps, err := r.Steps(string(kind), lang, NewTaskData(id, c, portal, urgent))
	if err != nil {
		t.Fatal(err)
	}
	v := NewTask(event.Task{ID: id, Kind: kind, Case: c.ID, ProfileID: c.ProfileID, Organisation: c.Organisation, Urgent: urgent,
		Where: where, Steps: steps, Entered: c.Expected, Created: c.Created}, now, zurich)
	return &v
}

// views returns one view of every kind, in lang.
func views(t *testing.T, r *Renderer, lang string) map[Kind]View {
	t.Helper()
	wp, pe, rv, ng := hostileCase(), privateCase(), reviewCase(), negligibleCase()
	wpv := NewCase(wp, &wp.Notices[0], zurich)
	user, err := r.Render(KindUserMail, pe.Language, &UserMailView{Case: NewCase(pe, nil, zurich)})
	if err != nil {
		t.Fatal(err)
	}
	sum := &SummaryView{
		Mailbox: "be", Superuser: "martina.graf@be.ch", From: FormatTime(now.Add(-24*time.Hour), zurich), Until: FormatTime(now, zurich),
		CaseCount: 4,
		Groups: []Group{
			{Class: "wrong-person", Cases: []SummaryCase{{Case: wpv, Done: []Action{
				{Kind: "escalation", State: "sent", To: "spiges@bfs.admin.ch", When: FormatTime(wp.Created, zurich)},
				{Kind: "alert", State: "sent", To: "martina.graf@be.ch"},
				{Kind: "deactivate", State: "open"},
			}}}},
			{Class: "private-email", Cases: []SummaryCase{{Case: NewCase(pe, nil, zurich), Done: []Action{
				{Kind: "user-mail", State: "failed", To: "zoe.dupont@hjb.ch", Note: Clean("550 5.1.1 <zoe.dupont@hjb.ch>: user unknown")},
				{Kind: "deactivate", State: "held"},
				{Kind: "recreate", State: "held"},
			}}}},
			{Class: "review", Cases: []SummaryCase{{Case: NewCase(rv, nil, zurich), Done: []Action{{Kind: "decision", State: "sent", To: "martina.graf@be.ch"}},
				Decision: &Decided{Class: "negligible", By: "Martina Graf", Why: Clean("Heirat <i>belegt</i>"), At: FormatTime(now.Add(-time.Hour), zurich)}}}},
			{Class: "negligible", Cases: []SummaryCase{{Case: NewCase(ng, nil, zurich), Done: []Action{{Kind: "record", State: "done"}}}}},
		},
		OpenTasks: []Task{*task(t, r, event.TaskDeactivate, wp, lang, true), *task(t, r, event.TaskRecreate, pe, lang, false)},
		OpenDecisions: []OpenDecision{{Case: NewCase(rv, nil, zurich), Age: NewAge(50 * time.Hour),
			Command: "eiamtriage cases decide " + rv.ID + " CLASS --by NAME --why TEXT"}},
		Held:        []Held{{Kind: "deactivate", Case: pe.ID, Since: FormatTime(now.Add(-2*time.Hour), zurich), Age: NewAge(2 * time.Hour)}},
		Quarantined: []Quarantined{{At: FormatTime(now.Add(-4*time.Hour), zurich), Kind: "untrusted-forwarder", Reason: Clean("forwarded by \"mallory@evil.example\"\r\n<img src=x>"), ProfileID: "abc", Name: Clean("Eve\x07")}},
		Dead:        []Dead{{At: FormatTime(now.Add(-6*time.Hour), zurich), Stage: "classify", Reason: Clean("stage: decode: bad JSON"), Deliveries: 5}},
		FailedMail:  []FailedMail{{ID: "user-mail.p.7d1e.ab", Kind: "user-mail", To: "zoe.dupont@hjb.ch", Subject: "x", State: "failed", Error: Clean("550 5.1.1 user unknown"), At: FormatTime(now.Add(-time.Hour), zurich)}},
	}
	return map[Kind]View{
		KindEscalation: &EscalationView{Case: wpv, Superusers: []string{"martina.graf@be.ch"}, Attached: true, Task: task(t, r, event.TaskDeactivate, wp, lang, true)},
		KindUserMail:   &UserMailView{Case: NewCase(pe, nil, zurich), ReplyTo: []string{"martina.graf@be.ch"}},
		KindDraft:      &DraftView{Case: NewCase(pe, nil, zurich), To: "zoe.dupont@hjb.ch", UserSubject: user.Subject, UserText: user.Text, UserLang: pe.Language},
		KindAlert:      &AlertView{Case: wpv, EscalatedTo: []string{"spiges@bfs.admin.ch"}, Task: task(t, r, event.TaskDeactivate, wp, lang, true)},
		KindDecision:   &DecisionView{Case: NewCase(rv, nil, zurich), Command: "eiamtriage cases decide " + rv.ID + " CLASS --by NAME --why TEXT"},
		KindHold:       &HoldView{Mailbox: "be", Action: "escalation", Cap: 5, Since: FormatTime(now, zurich), Command: "eiamtriage actions release --config FILE --mailbox be"},
		KindSummary:    sum,
	}
}

func newRenderer(t *testing.T) *Renderer {
	t.Helper()
	r, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestGolden renders every kind of mail in every language and compares
// subject, text and HTML with testdata/golden (go test -update rewrites
// them).
func TestGolden(t *testing.T) {
	r := newRenderer(t)
	for _, lang := range Languages {
		vs := views(t, r, lang)
		for _, k := range Kinds {
			t.Run(lang+"/"+string(k), func(t *testing.T) {
				m, err := r.Render(k, lang, vs[k])
				if err != nil {
					t.Fatal(err)
				}
				golden(t, filepath.Join("testdata", "golden", lang, string(k)+".txt"), "Subject: "+m.Subject+"\n\n"+m.Text)
				golden(t, filepath.Join("testdata", "golden", lang, string(k)+".html"), m.HTML)
			})
		}
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from what was rendered (go test -update rewrites it after review):\n%s", path, diff(string(want), got))
	}
}

// diff shows the first differing line.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + itoa(i+1) + ":\nwant " + a + "\ngot  " + b
		}
	}
	return ""
}

func itoa(i int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(i)) }

func fmtInt(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// TestHostileValues checks what every rendered mail does with the hostile
// values: no markup of theirs reaches the HTML, no control character any
// body or subject, no line of theirs begins a header.
func TestHostileValues(t *testing.T) {
	r := newRenderer(t)
	for _, lang := range Languages {
		for k, v := range views(t, r, lang) {
			m, err := r.Render(k, lang, v)
			if err != nil {
				t.Fatalf("%s/%s: %v", lang, k, err)
			}
			name := lang + "/" + string(k)
			for _, bad := range []string{"<script", "<b>", "<i>", "<img", "\x1b", "\r", "\u202e", "\u200b", "\x07"} {
				if strings.Contains(m.HTML, bad) {
					t.Errorf("%s: the HTML holds %q", name, bad)
				}
				if bad[0] < 0x20 || bad[0] > 0x7e {
					if strings.Contains(m.Text, bad) || strings.Contains(m.Subject, bad) {
						t.Errorf("%s: the text or subject holds %q", name, bad)
					}
				}
			}
			for _, line := range strings.Split(m.Text, "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), "Bcc:") {
					t.Errorf("%s: a value's line break began the line %q", name, line)
				}
			}
			if strings.ContainsAny(m.Subject, "\r\n") {
				t.Errorf("%s: subject %q has a line break", name, m.Subject)
			}
			// What was escaped stays visible.
			if k == KindEscalation || k == KindAlert || k == KindSummary {
				for _, want := range []string{`Muster\x1b[31m`, `Evil\r\nBcc: victim@evil.example`, `mallory\u202egro.live@gmail.com`} {
					if !strings.Contains(m.Text, want) {
						t.Errorf("%s: the text does not show %q", name, want)
					}
				}
				if !strings.Contains(m.HTML, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co") {
					t.Errorf("%s: the organisation is not shown escaped in the HTML", name)
				}
			}
		}
	}
}

func TestHostileSubject(t *testing.T) {
	r := newRenderer(t)
	c := hostileCase()
	c.ProfileID = "x\r\nBcc: victim@evil.example\r\n"
	c.Expected.GivenName = strings.Repeat("Ä", 500) + "\n"
	for _, lang := range Languages {
		m, err := r.Render(KindAlert, lang, &AlertView{Case: NewCase(c, nil, zurich), EscalatedTo: []string{"spiges@bfs.admin.ch"}})
		if err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(m.Subject, "\r\n") || !strings.Contains(m.Subject, `x\r\nBcc: victim@evil.example\r\n`) {
			t.Errorf("%s subject %q", lang, m.Subject)
		}
		if n := len([]rune(m.Subject)); n > maxSubject {
			t.Errorf("%s subject of %d characters", lang, n)
		}
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"Anna":                  "Anna",
		"a\r\nb":                `a\r\nb`,
		"\x1b[2J":               `\x1b[2J`,
		"tab\there":             `tab\there`,
		"back\\slash":           `back\\slash`,
		"\u202eevil":            `\u202eevil`,
		"Lu\u200bkas":           `Lu\u200bkas`,
		"soft\u00adhyphen":      `soft\u00adhyphen`,
		"bad\xffutf8":           `bad\ufffdutf8`,
		"c1\u0085":              `c1\x85`,
		"Zoé Müller-Dell'Acqua": "Zoé Müller-Dell'Acqua",
		"<b>&amp;</b>":          "<b>&amp;</b>", // html/template escapes markup
	} {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Clean(strings.Repeat("x", 300)); len([]rune(got)) != maxValue+1 || !strings.HasSuffix(got, "…") {
		t.Errorf("a long value is cut to %d characters: %q", len([]rune(got)), got)
	}
}

// TestOverride replaces one template from a directory: that mail changes,
// the others do not; a broken override is an error naming its file.
func TestOverride(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "de"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "de", "hold.txt"), []byte(`{{define "subject"}}Angehalten: {{.Mailbox}}{{end}}{{define "body"}}Halt {{.Cap}}{{end}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	base := newRenderer(t)
	v := func() View { return &HoldView{Mailbox: "be", Action: "escalation", Cap: 5, Since: "x", Command: "c"} }
	m, err := r.Render(KindHold, "de", v())
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Angehalten: be" || m.Text != "Halt 5\n" {
		t.Errorf("overridden mail = %q / %q", m.Subject, m.Text)
	}
	b, _ := base.Render(KindHold, "de", v())
	if m.HTML != strings.Replace(b.HTML, b.Subject, m.Subject, 1) {
		t.Error("the HTML changed though only the text was overridden")
	}
	fr, _ := r.Render(KindHold, "fr", v())
	frBase, _ := base.Render(KindHold, "fr", v())
	if fr != frBase {
		t.Error("the French mail changed though only the German was overridden")
	}
	if err := os.WriteFile(filepath.Join(dir, "de", "hold.txt"), []byte(`{{define "subject"}}{{.Mailbox}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(dir); err == nil || !strings.Contains(err.Error(), "de/hold.txt") {
		t.Errorf("New with a broken override = %v, want an error naming de/hold.txt", err)
	}
	if _, err := New(filepath.Join(dir, "missing")); err == nil {
		t.Error("New with a missing directory succeeded")
	}
}

func TestSteps(t *testing.T) {
	r := newRenderer(t)
	c := hostileCase()
	for _, lang := range Languages {
		for _, kind := range []string{"deactivate", "recreate"} {
			where, steps, err := r.Steps(kind, lang, NewTaskData(kind+"."+c.ID, c, portal, true))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(where, portal) || len(steps) < 3 {
				t.Errorf("%s %s: where %q, %d steps", lang, kind, where, len(steps))
			}
			all := strings.Join(steps, "\n")
			if !strings.Contains(all, c.ProfileID) || !strings.Contains(all, "eiamtriage tasks done "+kind+"."+c.ID) {
				t.Errorf("%s %s: the steps name neither the profile nor how to close the task:\n%s", lang, kind, all)
			}
			if kind == "recreate" && !strings.Contains(all, "anna.muster@be.ch") {
				t.Errorf("%s recreate: the steps do not give the professional address:\n%s", lang, all)
			}
		}
	}
}

// TestDraftProblem: a draft says, in its language, why the user was not
// mailed; every language words every problem.
func TestDraftProblem(t *testing.T) {
	r := newRenderer(t)
	for _, lang := range Languages {
		for _, p := range []string{"no-address", "same-address"} {
			m, err := r.Render(KindDraft, lang, &DraftView{Case: NewCase(privateCase(), nil, zurich), Problem: p, UserSubject: "s", UserText: "t\n"})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(m.Text, p) || strings.Contains(m.HTML, p) {
				t.Errorf("%s draft shows the code %q instead of its words", lang, p)
			}
		}
	}
}
