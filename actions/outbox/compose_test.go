package outbox_test

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/actions/outbox/smtpsink"
)

const from = "eiamtriage <triage@be.ch>"

var now = time.Date(2026, 3, 29, 9, 30, 0, 0, time.FixedZone("CEST", 2*3600))

// notice is an original in SMTP's form: CRLF, short lines, 8-bit UTF-8.
const notice = "From: eIAM <noreply@eiam.admin.ch>\r\n" +
	"To: martina.graf@be.ch\r\n" +
	"Subject: eIAM: Abweichende Benutzerdaten\r\n" +
	"Message-ID: <n1@eiam.admin.ch>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: 8bit\r\n" +
	"\r\n" +
	"Profil-ID: CH.123\r\n" +
	"Vorname: Anna / Änna\r\n" +
	".a line that starts with a dot\r\n" +
	"\r\n" +
	"From the end, no final line end"

func escalation() outbox.Message {
	return outbox.Message{
		ID: "escalation.p.123.abcdef", Kind: outbox.KindEscalation, Case: "p.123", Mailbox: "be",
		To: []string{"spiges@bfs.admin.ch"}, Cc: []string{"Martina Gräf <martina.graf@be.ch>"}, ReplyTo: []string{"martina.graf@be.ch"},
		Subject: "Falsche Person angemeldet: Profil CH.123 – bitte sperren",
		Text:    "Grüezi\n\nEin langer Satz " + strings.Repeat("ohne Umbruch ", 120) + "\nEnde.\n",
		HTML:    "<p>Grüezi</p><table><tr><td>Änna</td></tr></table>",
		Urgent:  true,
		Attachment: &outbox.Attachment{
			Filename: "notice.eml",
			Raw:      []byte(notice),
		},
	}
}

func mustCompose(t *testing.T, m outbox.Message) []byte {
	t.Helper()
	raw, err := outbox.Compose(m, from, now)
	if err != nil {
		t.Fatalf("Compose: %v", err)
	}
	return raw
}

func TestComposeHeaders(t *testing.T) {
	raw := mustCompose(t, escalation())
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	h := mail.Header{Header: e.Header}
	for k, want := range map[string]string{
		"Auto-Submitted":           "auto-generated",
		"X-Loop":                   "triage@be.ch",
		"Message-Id":               "<escalation.p.123.abcdef@be.ch>",
		"X-Eiamtriage":             "escalation.p.123.abcdef",
		"X-Eiamtriage-Kind":        "escalation",
		"X-Eiamtriage-Case":        "p.123",
		"X-Auto-Response-Suppress": "All",
		"Importance":               "high",
		"X-Priority":               "1",
		"Mime-Version":             "1.0",
		"Date":                     "Sun, 29 Mar 2026 09:30:00 +0200",
		"From":                     `"eiamtriage" <triage@be.ch>`,
		"To":                       "<spiges@bfs.admin.ch>",
		"Reply-To":                 "<martina.graf@be.ch>",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if subj, err := h.Subject(); err != nil || subj != escalation().Subject {
		t.Errorf("Subject decodes to %q (%v), want %q", subj, err, escalation().Subject)
	}
	if raw := h.Get("Subject"); !strings.HasPrefix(raw, "=?utf-8?") {
		t.Errorf("Subject %q is not RFC 2047 encoded", raw)
	}
	cc, err := h.AddressList("Cc")
	if err != nil || len(cc) != 1 || cc[0].Name != "Martina Gräf" || cc[0].Address != "martina.graf@be.ch" {
		t.Errorf("Cc = %v (%v)", cc, err)
	}
	if id, _ := h.MessageID(); id != "escalation.p.123.abcdef@be.ch" {
		t.Errorf("MessageID() = %q", id)
	}
}

// part is a MIME leaf as a test sees it.
type part struct {
	path      []int
	mediaType string
	body      []byte
}

func leaves(t *testing.T, raw []byte) (top string, out []part) {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	top, _, _ = e.Header.ContentType()
	err = e.Walk(func(path []int, p *message.Entity, err error) error {
		if err != nil {
			return err
		}
		mt, _, _ := p.Header.ContentType()
		if strings.HasPrefix(mt, "multipart/") {
			out = append(out, part{path: append([]int(nil), path...), mediaType: mt})
			return nil
		}
		b, err := io.ReadAll(p.Body)
		out = append(out, part{path: append([]int(nil), path...), mediaType: mt, body: b})
		return err
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	return top, out
}

func TestComposeStructure(t *testing.T) {
	m := escalation()
	tests := []struct {
		name  string
		edit  func(*outbox.Message)
		top   string
		types []string
	}{
		{"text, html and attachment", func(*outbox.Message) {}, "multipart/mixed",
			[]string{"multipart/mixed", "multipart/alternative", "text/plain", "text/html", "message/rfc822"}},
		{"text and html", func(m *outbox.Message) { m.Attachment = nil }, "multipart/alternative",
			[]string{"multipart/alternative", "text/plain", "text/html"}},
		{"text and attachment", func(m *outbox.Message) { m.HTML = "" }, "multipart/mixed",
			[]string{"multipart/mixed", "text/plain", "message/rfc822"}},
		{"text only", func(m *outbox.Message) { m.HTML, m.Attachment = "", nil }, "text/plain",
			[]string{"text/plain"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mm := m
			tc.edit(&mm)
			raw := mustCompose(t, mm)
			top, ps := leaves(t, raw)
			if top != tc.top {
				t.Errorf("top media type %s, want %s", top, tc.top)
			}
			var types []string
			for _, p := range ps {
				types = append(types, p.mediaType)
				switch p.mediaType {
				case "text/plain":
					if string(p.body) != strings.ReplaceAll(mm.Text, "\n", "\r\n") {
						t.Errorf("text part decodes to %q, want the text with CRLF", p.body)
					}
				case "text/html":
					if string(p.body) != mm.HTML {
						t.Errorf("html part decodes to %q", p.body)
					}
				}
			}
			if strings.Join(types, " ") != strings.Join(tc.types, " ") {
				t.Errorf("parts %v, want %v", types, tc.types)
			}
			if enc := outbox.Transportable(raw); enc != "7bit" && enc != "8bit" {
				t.Errorf("the composed mail is not valid SMTP text (bare LF or a line over 998 octets)")
			}
		})
	}
}

func TestComposeDeterministic(t *testing.T) {
	a := mustCompose(t, escalation())
	b := mustCompose(t, escalation())
	if !bytes.Equal(a, b) {
		t.Fatal("two compositions of the same message at the same time differ")
	}
	later := escalation()
	c, err := outbox.Compose(later, from, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	da, dc := smtpsink.Header(a, "Date"), smtpsink.Header(c, "Date")
	if da == dc {
		t.Errorf("Date did not follow now: %q", da)
	}
	if !bytes.Equal(bytes.Replace(a, []byte(da), []byte(dc), 1), c) {
		t.Error("an hour later the mail differs in more than its Date")
	}
	other := escalation()
	other.Text += "x"
	d := mustCompose(t, other)
	if smtpsink.Header(d, "Message-Id") != smtpsink.Header(a, "Message-Id") {
		t.Error("the Message-ID depends on more than the id")
	}
}

func TestComposeAttachmentByteForByte(t *testing.T) {
	long := "X-Long: " + strings.Repeat("a", 1500) + "\r\n"
	tests := []struct {
		name      string
		raw       string
		mediaType string
		cte       string
	}{
		{"CRLF, 8 bit", notice, "message/rfc822", "8bit"},
		{"CRLF, ASCII", strings.ReplaceAll(notice, "Ä", "A"), "message/rfc822", "7bit"},
		{"a line of exactly 998 octets", "X-A: " + strings.Repeat("b", 993) + "\r\n\r\nbody\r\n", "message/rfc822", "7bit"},
		{"bare LF line ends (a saved .eml)", strings.ReplaceAll(notice, "\r\n", "\n"), "application/octet-stream", "base64"},
		{"one bare LF", strings.Replace(notice, "\r\n", "\n", 1), "application/octet-stream", "base64"},
		{"a line over 998 octets", long + notice, "application/octet-stream", "base64"},
		{"a bare CR", "Subject: x\r\n\r\na\rb\r\n", "application/octet-stream", "base64"},
		{"a NUL", "Subject: x\r\n\r\na\x00b\r\n", "application/octet-stream", "base64"},
		{"ends in CRLF", "Subject: x\r\n\r\nbody\r\n", "message/rfc822", "7bit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := escalation()
			m.Attachment = &outbox.Attachment{Filename: "notice.eml", Raw: []byte(tc.raw)}
			raw := mustCompose(t, m)
			mt, got, err := smtpsink.Attachment(raw)
			if err != nil {
				t.Fatal(err)
			}
			if mt != tc.mediaType {
				t.Errorf("attached as %s, want %s", mt, tc.mediaType)
			}
			if !bytes.Equal(got, []byte(tc.raw)) {
				t.Errorf("the attachment differs from the original:\n got %q\nwant %q", trim(got), trim([]byte(tc.raw)))
			}
			if !bytes.Contains(raw, []byte("Content-Transfer-Encoding: "+tc.cte+"\r\n")) {
				t.Errorf("no Content-Transfer-Encoding %s in the mail", tc.cte)
			}
			if outbox.Transportable(raw) == "" {
				t.Error("the composed mail is not valid SMTP text")
			}
		})
	}
}

func trim(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}

func TestComposeRefuses(t *testing.T) {
	tests := []struct {
		name string
		edit func(*outbox.Message)
		from string
	}{
		{"empty id", func(m *outbox.Message) { m.ID = "" }, from},
		{"id with a slash", func(m *outbox.Message) { m.ID = "a/b" }, from},
		{"id with a double dot", func(m *outbox.Message) { m.ID = "a..b" }, from},
		{"id with a leading dot", func(m *outbox.Message) { m.ID = ".a" }, from},
		{"id too long", func(m *outbox.Message) { m.ID = strings.Repeat("a", 201) }, from},
		{"no kind", func(m *outbox.Message) { m.Kind = "" }, from},
		{"no recipient", func(m *outbox.Message) { m.To = nil }, from},
		{"a line break in the subject", func(m *outbox.Message) { m.Subject = "x\r\nBcc: evil@example.org" }, from},
		{"a line break in the case", func(m *outbox.Message) { m.Case = "p.1\nX-Evil: 1" }, from},
		{"an address with a line break", func(m *outbox.Message) { m.To = []string{"a@b.ch\r\nBcc: evil@example.org"} }, from},
		{"not an address", func(m *outbox.Message) { m.Cc = []string{"nobody"} }, from},
		{"an address without a dot in its domain", func(m *outbox.Message) { m.ReplyTo = []string{"a@localhost"} }, from},
		{"no text", func(m *outbox.Message) { m.Text = "" }, from},
		{"no subject", func(m *outbox.Message) { m.Subject = " " }, from},
		{"a sender that is not an address", func(*outbox.Message) {}, "eiamtriage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := escalation()
			tc.edit(&m)
			raw, err := outbox.Compose(m, tc.from, now)
			if !errors.Is(err, outbox.ErrInvalid) {
				t.Fatalf("Compose = %d bytes, %v; want an error wrapping ErrInvalid", len(raw), err)
			}
		})
	}
}

func TestTransportable(t *testing.T) {
	for raw, want := range map[string]string{
		"":                                "7bit",
		"a\r\nb":                          "7bit",
		"ä\r\n":                           "8bit",
		"a\nb":                            "",
		"a\r":                             "",
		"a\rb":                            "",
		strings.Repeat("x", 998) + "\r\n": "7bit",
		strings.Repeat("x", 999) + "\r\n": "",
		strings.Repeat("x", 999):          "",
	} {
		if got := outbox.Transportable([]byte(raw)); got != want {
			t.Errorf("Transportable(%.20q… of %d) = %q, want %q", raw, len(raw), got, want)
		}
	}
}

func TestComposeSubjectEncoding(t *testing.T) {
	m := escalation()
	m.Subject = "Plain ASCII subject"
	raw := mustCompose(t, m)
	if got := smtpsink.Header(raw, "Subject"); got != m.Subject {
		t.Errorf("ASCII subject written as %q", got)
	}
	m.Subject = "Données utilisateur : « ça »"
	raw = mustCompose(t, m)
	dec, err := new(mime.WordDecoder).DecodeHeader(smtpsink.Header(raw, "Subject"))
	if err != nil || dec != m.Subject {
		t.Errorf("subject decodes to %q (%v)", dec, err)
	}
}

// BenchmarkCompose composes an escalation with a 50 KB original attached.
func BenchmarkCompose(b *testing.B) {
	m := escalation()
	var orig bytes.Buffer
	orig.WriteString(notice[:strings.Index(notice, "\r\n\r\n")+4])
	for orig.Len() < 50_000 {
		orig.WriteString("Zeile mit Umlauten äöü und etwas Text, um eine lange Nachricht zu füllen.\r\n")
	}
	m.Attachment = &outbox.Attachment{Raw: orig.Bytes()}
	b.ReportAllocs()
	b.SetBytes(int64(orig.Len()))
	for b.Loop() {
		if _, err := outbox.Compose(m, from, now); err != nil {
			b.Fatal(err)
		}
	}
}
