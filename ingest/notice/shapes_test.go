package notice

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
)

// Hostile and degenerate mail shapes, built to a size in bytes: the
// benchmarks, the tests of the limits and the fuzz seeds use them. Each
// carries the header of a German notice (eIAM sender, notice subject), so
// that the parser cannot settle it by the header alone, and a notice body
// in its first text part where the shape has one.

const shapeHead = "From: eIAM <noreply@eiam.admin.ch>\r\nTo: martina.graf@be.ch\r\n" +
	"Subject: =?utf-8?q?eIAM=3A_Abweichende_Benutzerdaten_=E2=80=93_Anna_Muster?=\r\n" +
	"Date: Mon, 20 Jul 2026 19:49:00 +0200\r\nMessage-ID: <shape@eiam.admin.ch>\r\nMIME-Version: 1.0\r\n"

const shapeNotice = "Guten Tag\r\n\r\nProfil-ID: 0f2b-shape\r\nAnwendung: SpiGes\r\nAnmeldung am: 20.07.2026 19:49\r\n\r\n" +
	"Attribut | Im eIAM-Portal erfasst | Angemeldeter Benutzer\r\n" +
	"Vorname  | Anna                   | Anna\r\n" +
	"Nachname | Muster                 | Muster\r\n" +
	"E-Mail   | anna.muster@be.ch      | anna.muster@gmail.com\r\n"

type shape struct {
	name  string
	build func(size int) []byte
}

// shapes are the hostile shapes of issue 7 and two large but ordinary
// mails, each a function of the mail's size.
var shapes = []shape{
	{"deep-nesting", shapeDeepNesting},
	{"many-parts", shapeManyParts},
	{"many-attached", shapeManyAttached},
	{"long-headers", shapeLongHeaders},
	{"huge-html", shapeHugeHTML},
	{"big-attachment", shapeBigAttachment},
	{"many-text-parts", shapeManyTextParts},
}

// shapeDeepNesting nests multipart/mixed inside multipart/mixed, each with
// a boundary of its own, until the mail has size bytes (about 65 a level:
// 10,000 levels in 650 KiB).
func shapeDeepNesting(size int) []byte {
	var b bytes.Buffer
	b.WriteString(shapeHead)
	const perLevel = len("--b0000000\r\nContent-Type: multipart/mixed; boundary=b0000001\r\n\r\n") + len("--b0000000--\r\n")
	levels := max(1, (size-len(shapeHead)-len(shapeNotice)-100)/perLevel)
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%07d\r\n\r\n", 0)
	for i := 0; i < levels; i++ {
		fmt.Fprintf(&b, "--b%07d\r\nContent-Type: multipart/mixed; boundary=b%07d\r\n\r\n", i, i+1)
	}
	fmt.Fprintf(&b, "--b%07d\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s", levels, shapeNotice)
	for i := levels; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%07d--\r\n", i)
	}
	return b.Bytes()
}

// shapeManyParts is one multipart/mixed of tiny text parts (about 40 bytes
// each: 200,000 parts in 8 MB), the notice in the first.
func shapeManyParts(size int) []byte {
	var b bytes.Buffer
	b.WriteString(shapeHead)
	b.WriteString("Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString(shapeNotice)
	for b.Len() < size {
		b.WriteString("--zz\r\nContent-Type: text/plain\r\n\r\nx\r\n")
	}
	b.WriteString("--zz--\r\n")
	return b.Bytes()
}

// shapeManyAttached attaches small messages (about 900 bytes each: 10,000
// in 9 MiB) to a mail whose first part is the notice.
func shapeManyAttached(size int) []byte {
	var b bytes.Buffer
	b.WriteString(shapeHead)
	b.WriteString("Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString(shapeNotice)
	inner := "--zz\r\nContent-Type: message/rfc822\r\n\r\nFrom: someone@example.org\r\nSubject: attached %d\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n" + strings.Repeat("Ein Satz, der nichts bedeutet, in einer angehängten Nachricht.\r\n", 12) + "\r\n"
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, inner, i)
	}
	b.WriteString("--zz--\r\n")
	return b.Bytes()
}

// shapeLongHeaders fills the header with Received fields and a To field of
// thousands of addresses, then a plain notice body.
func shapeLongHeaders(size int) []byte {
	var b bytes.Buffer
	b.WriteString(strings.Replace(shapeHead, "To: martina.graf@be.ch\r\n", "", 1))
	b.WriteString("To: martina.graf@be.ch")
	for i := 0; b.Len() < size/4; i++ {
		fmt.Fprintf(&b, ",\r\n Person %d <person.%d@example.org>", i, i)
	}
	b.WriteString("\r\n")
	for i := 0; b.Len() < size-len(shapeNotice)-64; i++ {
		fmt.Fprintf(&b, "Received: from host%d.example.org (host%d.example.org [192.0.2.%d]) by mx.be.ch with ESMTPS id %08x; Mon, 20 Jul 2026 19:49:00 +0200\r\n", i, i, i%250, i)
	}
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString(shapeNotice)
	return b.Bytes()
}

// shapeHugeHTML is one text/html part of size bytes: the notice's table in
// the middle of nested layout tables, divs and entities.
func shapeHugeHTML(size int) []byte {
	var b bytes.Buffer
	b.WriteString(shapeHead)
	b.WriteString("Content-Type: text/html; charset=utf-8\r\n\r\n<html><body>")
	table := "<table><tr><th>Attribut</th><th>Im eIAM-Portal erfasst</th><th>Angemeldeter Benutzer</th></tr>" +
		"<tr><td>Vorname</td><td>Anna</td><td>Anna</td></tr><tr><td>Nachname</td><td>Muster</td><td>Muster</td></tr>" +
		"<tr><td>E-Mail</td><td>anna.muster@be.ch</td><td>anna.muster@gmail.com</td></tr></table>\r\n"
	filler := "<div><span style=\"font-family:Arial\">Gr&uuml;&szlig;e &amp; &#8203;mehr&nbsp;Text</span><br></div>\r\n"
	half := size / 2
	for depth := 0; b.Len() < half; depth++ {
		if depth%50 < 40 {
			b.WriteString("<table><tr><td>")
		}
		b.WriteString(filler)
	}
	b.WriteString("<p>Profil-ID: 0f2b-shape</p>" + table)
	for b.Len() < size-16 {
		b.WriteString(filler)
	}
	b.WriteString("</body></html>\r\n")
	return b.Bytes()
}

// shapeBigAttachment is an ordinary large mail: the notice as text, and a
// base64 attachment that makes up the size.
func shapeBigAttachment(size int) []byte {
	var b bytes.Buffer
	b.WriteString(shapeHead)
	b.WriteString("Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString(shapeNotice)
	b.WriteString("--zz\r\nContent-Type: application/pdf; name=x.pdf\r\nContent-Disposition: attachment; filename=x.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	line := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x25, 0x50, 0x44, 0x46, 0xe2}, 57/5*3)[:57]) + "\r\n"
	for b.Len() < size-16 {
		b.WriteString(line)
	}
	b.WriteString("--zz--\r\n")
	return b.Bytes()
}

// shapeManyTextParts has 400 text parts (under the part limit) of equal
// size: quoted-printable text with label-like lines, every one read.
func shapeManyTextParts(size int) []byte {
	var b bytes.Buffer
	b.WriteString(shapeHead)
	b.WriteString("Content-Type: multipart/mixed; boundary=zz\r\n\r\n")
	const parts = 400
	per := max(200, size/parts)
	para := "Vorname: Anna=0D=0ANachname: Muster=0D=0AZeile mit Umlauten: =C3=A4=C3=B6=C3=BC und mehr Text=\r\n fortgesetzt.\r\n"
	for i := 0; i < parts; i++ {
		b.WriteString("--zz\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		if i == parts-1 {
			b.WriteString(strings.ReplaceAll(shapeNotice, "=", "=3D"))
		}
		for n := 0; n < per; n += len(para) {
			b.WriteString(para)
		}
	}
	b.WriteString("--zz--\r\n")
	return b.Bytes()
}
