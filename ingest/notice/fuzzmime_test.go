package notice

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"mime/quotedprintable"
	"strings"
	"testing"

	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/mailstore"
)

// mimeBuilder turns fuzzer bytes into a well-formed MIME mail: each byte
// chooses the next entity (a multipart, a run of many tiny parts, a text
// or HTML part with a transfer encoding and a charset, an attached
// message, a binary attachment) or its options, so that the fuzzer reaches
// nesting, part counts, attached messages, encodings and charsets that
// random bytes almost never form.
type mimeBuilder struct {
	data  []byte
	i     int
	eol   string
	nextB int
	// The outer message's own structure (attached messages aside): its
	// parts and how deep they nest.
	inAttached int
	parts      int
	depth      int
}

func (m *mimeBuilder) byte() byte {
	if m.i >= len(m.data) {
		return 0
	}
	c := m.data[m.i]
	m.i++
	return c
}

// chunk takes up to n bytes of the input as content.
func (m *mimeBuilder) chunk(n int) []byte {
	n = min(n, len(m.data)-m.i)
	c := m.data[m.i : m.i+n]
	m.i += n
	return c
}

func (m *mimeBuilder) line(b *bytes.Buffer, s string) {
	b.WriteString(s)
	b.WriteString(m.eol)
}

const fuzzNoticeText = "Profil-ID: fz-1\nAnmeldung am: 20.07.2026 19:49\n\nAttribut | Im eIAM-Portal erfasst | Angemeldeter Benutzer\n" +
	"Vorname | Jürg | Juerg\nNachname | Müller | Mueller\nE-Mail | j@be.ch | j@gmail.com\n"

const fuzzNoticeHTML = "<p>Profil-ID: fz-1</p><table><tr><th>Attribut</th><th>Im eIAM-Portal erfasst</th><th>Angemeldeter Benutzer</th></tr>" +
	"<tr><td>Vorname</td><td>J&uuml;rg</td><td>Juerg</td></tr><tr><td>Nachname</td><td>Müller</td><td>Mueller</td></tr>" +
	"<tr><td>E-Mail</td><td>j@be.ch</td><td>j@gmail.com</td></tr></table>"

// message writes a message: a header, then one entity.
func (m *mimeBuilder) message(b *bytes.Buffer, depth int) {
	switch m.byte() % 4 {
	case 0:
		m.line(b, "From: eIAM <noreply@eiam.admin.ch>")
	case 1:
		m.line(b, "From: Martina Graf <martina.graf@be.ch>")
	case 2:
		m.line(b, "From: x@example.org")
	}
	m.line(b, "To: martina.graf@be.ch")
	if m.byte()%3 != 0 {
		m.line(b, "Subject: =?utf-8?q?WG=3A_eIAM=3A_Abweichende_Benutzerdaten_=E2=80=93_J=C3=BCrg_M=C3=BCller?=")
	} else {
		m.line(b, "Subject: Hallo")
	}
	m.line(b, fmt.Sprintf("Message-ID: <fz%d.%d@example.org>", depth, m.i))
	m.line(b, "MIME-Version: 1.0")
	m.entity(b, depth)
}

// entity writes the rest of an entity's header, a blank line and its body.
func (m *mimeBuilder) entity(b *bytes.Buffer, depth int) {
	op := m.byte() % 8
	if depth > 40 {
		op = 2
	}
	if m.inAttached == 0 {
		m.parts++
		m.depth = max(m.depth, depth)
	}
	switch op {
	case 0, 1: // a multipart of a few parts
		m.nextB++
		bd := fmt.Sprintf("b%d", m.nextB)
		sub := []string{"mixed", "alternative", "related"}[m.byte()%3]
		m.line(b, "Content-Type: multipart/"+sub+"; boundary=\""+bd+"\"")
		m.line(b, "")
		m.line(b, "preamble")
		for range int(m.byte() % 5) {
			m.line(b, "--"+bd)
			m.entity(b, depth+1)
			m.line(b, "")
		}
		m.line(b, "--"+bd+"--")
		m.line(b, "epilogue")
	case 2, 3: // a text part
		html := op == 3
		ct := "text/plain"
		text := fuzzNoticeText
		if html {
			ct, text = "text/html", fuzzNoticeHTML
		}
		if m.byte()%4 == 0 {
			text = string(m.chunk(int(m.byte())))
		}
		cs := []string{"utf-8", "iso-8859-1", "windows-1252", "", "x-unknown", "us-ascii"}[m.byte()%6]
		data := []byte(text)
		if cs == "iso-8859-1" || cs == "windows-1252" {
			data = latin1(text)
		}
		if cs != "" {
			ct += "; charset=" + cs
		}
		if !html && m.byte()%5 == 0 {
			ct += "; format=flowed"
		}
		m.line(b, "Content-Type: "+ct)
		m.body(b, data)
	case 4: // an attached message
		m.line(b, "Content-Type: message/rfc822")
		var inner bytes.Buffer
		m.inAttached++
		m.message(&inner, depth+1)
		m.inAttached--
		if m.byte()%4 == 0 && inner.Len() < 64<<10 { // nested base64 would grow the mail exponentially
			m.line(b, "Content-Transfer-Encoding: base64")
			m.line(b, "")
			m.base64(b, inner.Bytes())
			return
		}
		m.line(b, "")
		b.Write(inner.Bytes())
	case 5: // a binary attachment
		m.line(b, "Content-Type: application/octet-stream")
		m.line(b, "Content-Disposition: attachment; filename=x.bin")
		m.line(b, "Content-Transfer-Encoding: base64")
		m.line(b, "")
		m.base64(b, m.chunk(int(m.byte())*4))
	case 6: // many tiny parts
		m.nextB++
		bd := fmt.Sprintf("m%d", m.nextB)
		m.line(b, "Content-Type: multipart/mixed; boundary="+bd)
		m.line(b, "")
		for range int(m.byte()) * 4 {
			if m.inAttached == 0 {
				m.parts++
			}
			m.line(b, "--"+bd)
			m.line(b, "")
			m.line(b, "x")
		}
		m.line(b, "--"+bd+"--")
	default: // raw input as the body of a part
		m.line(b, "Content-Type: text/plain; charset=utf-8")
		m.line(b, "")
		b.Write(m.chunk(int(m.byte())))
		m.line(b, "")
	}
}

// body writes the rest of a text part's header and its body in a
// transfer encoding the input chooses.
func (m *mimeBuilder) body(b *bytes.Buffer, data []byte) {
	switch m.byte() % 4 {
	case 0:
		m.line(b, "Content-Transfer-Encoding: quoted-printable")
		m.line(b, "")
		var q bytes.Buffer
		w := quotedprintable.NewWriter(&q)
		_, _ = w.Write(data)
		_ = w.Close()
		b.Write(q.Bytes())
		m.line(b, "")
	case 1:
		m.line(b, "Content-Transfer-Encoding: base64")
		m.line(b, "")
		m.base64(b, data)
	default:
		m.line(b, "Content-Transfer-Encoding: 8bit")
		m.line(b, "")
		b.WriteString(strings.ReplaceAll(string(data), "\n", m.eol))
		m.line(b, "")
	}
}

func (m *mimeBuilder) base64(b *bytes.Buffer, data []byte) {
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		m.line(b, enc[:76])
		enc = enc[76:]
	}
	m.line(b, enc)
}

func latin1(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r < 0x100 {
			out = append(out, byte(r))
		} else {
			out = append(out, '?')
		}
	}
	return out
}

// buildMIME makes a mail of the fuzzer's bytes; the first byte chooses the
// line endings. overLimit says the mail's own structure is beyond MaxParts
// or MaxDepth.
func buildMIME(data []byte) (raw []byte, overLimit bool) {
	m := &mimeBuilder{data: data, eol: "\r\n"}
	switch m.byte() % 3 {
	case 1:
		m.eol = "\n"
	case 2:
		m.eol = "\r"
	}
	var b bytes.Buffer
	m.message(&b, 0)
	return b.Bytes(), m.parts > MaxParts || m.depth > MaxDepth
}

// FuzzMIME builds MIME structure from the fuzzer's bytes (see
// mimeBuilder) and parses it. Beyond what FuzzParse checks: a limit that
// was reached is always said (a Problem or an unreadable-mail reason), and
// an attached notice's Part names, in internal/mailstore's numbering, the
// very message the notice was read from.
func FuzzMIME(f *testing.F) {
	for _, seed := range []string{
		"\x00\x00\x01\x02\x01\x00\x01\x02",                                                                                                 // a plain notice
		"\x00\x00\x01\x00\x01\x02\x02\x01\x00\x01\x02\x03\x01\x00\x00",                                                                     // an alternative
		"\x00\x01\x01\x00\x00\x02\x02\x01\x00\x01\x02\x04\x00\x01\x02\x01\x00\x01\x02\x01",                                                 // an attached forward
		"\x00\x00\x01\x00\x00\x02\x02\x01\x00\x01\x02\x06\xff",                                                                             // many tiny parts
		"\x00\x00\x01" + strings.Repeat("\x00\x00\x01", 30) + "\x02\x01\x00\x01\x02",                                                       // deep nesting
		"\x02\x00\x01\x02\x01\x00\x01\x02",                                                                                                 // CR line endings
		"\x00\x01\x01\x00\x00\x02\x02\x01\x00\x01\x02\x04\x01\x01\x00\x00\x02\x02\x01\x00\x01\x02\x04\x00\x01\x02\x01\x00\x01\x02\x01\x01", // attached in attached
	} {
		f.Add([]byte(seed))
	}
	p := MustParser(config.DefaultWording(), nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		raw, overLimit := buildMIME(data)
		n, err := parseWithin(t, p, raw)
		var ne *NotANoticeError
		if errors.As(err, &ne) {
			switch ne.Kind {
			case "auto-reply", "dsn", "list-mail", "own-mail":
				return // decided by the header, before the structure is read
			case "no-notice-subject", "unreadable-mail":
			default:
				t.Fatalf("unknown not-a-notice kind %q", ne.Kind)
			}
			if overLimit && ne.Kind == "no-notice-subject" {
				t.Fatalf("a mail beyond the limits read as %s: %s", ne.Kind, ne.Reason)
			}
			return
		}
		if err != nil {
			t.Fatalf("a built mail gave the error %v", err)
		}
		if overLimit && n.Readable() {
			t.Fatalf("a notice beyond the limits without a problem: %+v", n)
		}
		checkSenders(t, n)
		switch n.Delivery {
		case event.DeliveryDirect, event.DeliveryInlineForward:
			if n.Part != "" {
				t.Fatalf("%s notice with part %q", n.Delivery, n.Part)
			}
		case event.DeliveryAttachedForward:
			if n.Part == "" {
				t.Fatal("an attached notice without its part number")
			}
			if !bytes.Equal(normaliseCR(raw), raw) {
				return // mailstore reads CRLF and LF mail only, not bare CRs
			}
			inner, err := mailstore.Part(raw, n.Part)
			if err != nil {
				t.Fatalf("mailstore.Part(%q): %v", n.Part, err)
			}
			m, err := p.Parse(t.Context(), inner)
			if err != nil {
				t.Fatalf("the message at part %s is not the notice: %v", n.Part, err)
			}
			if n.Readable() && m.Readable() && (m.Expected != n.Expected || m.Actual != n.Actual || m.ProfileID != n.ProfileID || m.MessageID != n.MessageID) {
				t.Fatalf("the message at part %s reads %+v/%+v, the notice %+v/%+v", n.Part, m.Expected, m.Actual, n.Expected, n.Actual)
			}
		default:
			t.Fatalf("unknown delivery %q", n.Delivery)
		}
	})
}
