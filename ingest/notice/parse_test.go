package notice

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/config"

	"github.com/eiamtriage/eiamtriage/internal/event"
)

func mustParse(t *testing.T, raw string) (*event.Notice, error) {
	t.Helper()
	p := MustParser(config.DefaultWording(), nil)
	return p.Parse(t.Context(), []byte(strings.ReplaceAll(raw, "\n", "\r\n")))
}

const directHead = "From: eIAM <noreply@eiam.admin.ch>\nTo: su@be.ch\nMessage-ID: <a@eiam.admin.ch>\nDate: Mon, 20 Jul 2026 19:49:00 +0100\nMIME-Version: 1.0\n"

func TestSubjects(t *testing.T) {
	p := MustParser(config.DefaultWording(), nil)
	tests := []struct {
		subject, lang, name string
		ok                  bool
	}{
		{"eIAM: Abweichende Benutzerdaten – Anna Muster", "de", "Anna Muster", true},
		{"eIAM: Abweichende Benutzerdaten - Anna Muster-Keller", "de", "Anna Muster-Keller", true},
		{"eIAM : Incohérence des données utilisateur – Anna Muster", "fr", "Anna Muster", true},
		{"eIAM: Incohérence des données utilisateur – Anna", "fr", "Anna", true},
		{"TR : eIAM : Incohérence des données utilisateur – Anna", "fr", "Anna", true},
		{"WG: AW: fwd:eIAM: Dati utente non corrispondenti – Lia Rossi", "it", "Lia Rossi", true},
		{"I: eIAM: Dati utente non corrispondenti – Lia Rossi", "it", "Lia Rossi", true},
		{"FW : eIAM: User data mismatch — John Smith", "en", "John Smith", true},
		{"eiam:   user DATA mismatch – x", "en", "x", true},
		{"eIAM:User data mismatch – x", "en", "x", true},
		{"RE: eIAM: User data mismatch – John", "", "", false},
		{"eIAM: User data mismatches – John", "", "", false},
		{"Info: eIAM: User data mismatch – John", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			l, name, ok := p.matchSubject(tt.subject)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if l.code != tt.lang || name != tt.name {
				t.Errorf("got %s %q, want %s %q", l.code, name, tt.lang, tt.name)
			}
		})
	}
}

func TestUnflow(t *testing.T) {
	tests := []struct {
		name, in, want string
		delSp          bool
	}{
		{"soft break joined", "Guten \nTag\n", "Guten Tag\n", false},
		{"delsp drops the space", "Abwei\nchung \nfest\n", "Abwei\nchungfest\n", true},
		{"space stuffing removed", " From here\n", "From here\n", false},
		{"signature separator kept", "-- \nname\n", "-- \nname\n", false},
		{"quote depth change ends a paragraph", "> a \nb\n", "> a \nb\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unflow(tt.in, tt.delSp); got != tt.want {
				t.Errorf("unflow(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestLabelTraps(t *testing.T) {
	// The same three rows mean different fields by language: Nom is the
	// family name in French, Nome the given name in Italian, Name the
	// family name in German.
	tests := []struct {
		name, subject, body string
		want                event.Person
	}{
		{"fr Nom is the family name", "eIAM : Incohérence des données utilisateur – A B",
			"Saisi dans le portail eIAM:\n  Prénom: Anne\n  Nom: Blanc\n  Courriel: a@vd.ch\n\nUtilisateur connecté:\n  Prénom: Anne\n  Nom: Blanc\n  Courriel: a@vd.ch\n",
			event.Person{GivenName: "Anne", FamilyName: "Blanc", Email: "a@vd.ch"}},
		{"it Nome is the given name", "eIAM: Dati utente non corrispondenti – A B",
			"Registrato nel portale eIAM:\n  Cognome: Rossi\n  Nome: Lia\n  E-mail: l@ti.ch\n\nUtente connesso:\n  Nome: Lia\n  Cognome: Rossi\n  E-mail: l@ti.ch\n",
			event.Person{GivenName: "Lia", FamilyName: "Rossi", Email: "l@ti.ch"}},
		{"de Name is the family name, labels in odd case with NBSP", "eIAM: Abweichende Benutzerdaten – A B",
			"Im eIAM-Portal erfasst:\n  VORNAME\u00a0:  Jürg\n  name: Käser\n  e-mail-adresse: j@be.ch\n\nAngemeldeter Benutzer :\n  Vorname: Jürg\n  Name: Käser\n  E-Mail: j@be.ch\n",
			event.Person{GivenName: "Jürg", FamilyName: "Käser", Email: "j@be.ch"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := mustParse(t, directHead+"Subject: "+tt.subject+"\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"+tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if n.Expected != tt.want || n.Actual != tt.want {
				t.Errorf("expected %+v actual %+v, want %+v", n.Expected, n.Actual, tt.want)
			}
			if n.Layout != event.LayoutBlocks || !n.Readable() {
				t.Errorf("layout %q problems %v", n.Layout, n.Problems)
			}
		})
	}
}

func TestTableColumnsSwappedAndEmptyCells(t *testing.T) {
	body := "<table><tr><th>Attribute</th><th>Signed-in user</th><th>Entered in the eIAM portal</th></tr>" +
		"<tr><td>First name</td><td>&nbsp;</td><td>Anna</td></tr>" +
		"<tr><td>Surname</td><td>Muster</td><td>Muster</td></tr>" +
		"<tr><td>Language</td><td>English</td><td>German</td></tr>" +
		"<tr><td>Email address</td><td><a href='mailto:a@gmail.com'>a@gmail.com</a></td><td>a@be.ch</td></tr></table>"
	n, err := mustParse(t, directHead+"Subject: eIAM: User data mismatch – Anna Muster\nContent-Type: text/html; charset=utf-8\n\n"+body)
	if err != nil {
		t.Fatal(err)
	}
	want := event.Person{GivenName: "Anna", FamilyName: "Muster", Email: "a@be.ch"}
	if n.Expected != want {
		t.Errorf("expected = %+v, want %+v", n.Expected, want)
	}
	if n.Actual.GivenName != "" || n.Actual.Email != "a@gmail.com" {
		t.Errorf("actual = %+v", n.Actual)
	}
	if len(n.ExtraRows) != 1 || n.ExtraRows[0].Expected != "German" || n.ExtraRows[0].Actual != "English" {
		t.Errorf("extra rows = %+v", n.ExtraRows)
	}
}

func TestNotANotice(t *testing.T) {
	notice := "Subject: eIAM: User data mismatch – A B\nContent-Type: text/plain\n\nEntered in the eIAM portal:\n First name: A\n Last name: B\n E-mail: a@b.ch\n\nSigned-in user:\n First name: A\n Last name: B\n E-mail: a@b.ch\n"
	tests := []struct {
		name, raw, kind string
	}{
		{"auto reply", "From: a@be.ch\nAuto-Submitted: auto-replied\n" + notice, "auto-reply"},
		{"own mail", "From: eiamtriage@be.ch\nX-Eiamtriage: 1\n" + notice, "own-mail"},
		{"dsn", "From: MAILER-DAEMON@be.ch\nSubject: Undelivered\nContent-Type: multipart/report; report-type=delivery-status; boundary=x\n\n--x\nContent-Type: text/plain\n\nfailed\n--x--\n", "dsn"},
		{"newsletter", "From: news@bfs.admin.ch\nList-Unsubscribe: <mailto:u@bfs.admin.ch>\nSubject: News\n\nVorname: Nachname:\n", "list-mail"},
		{"a person", "From: kollege@be.ch\nSubject: Frage\n\nWas heisst Vorname: und Nachname: hier?\n", "no-notice-subject"},
		{"eIAM but another mail", "From: noreply@eiam.admin.ch\nSubject: Ihr Onboarding-Code\n\nCode: 1234\n", "no-notice-subject"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := mustParse(t, tt.raw)
			var ne *NotANoticeError
			if !errors.As(err, &ne) || !errors.Is(err, ErrNotANotice) {
				t.Fatalf("got notice %+v err %v, want not-a-notice", n, err)
			}
			if ne.Kind != tt.kind {
				t.Errorf("kind = %q (%s), want %q", ne.Kind, ne.Reason, tt.kind)
			}
		})
	}
}

func TestUnreadableNoticeGoesToReview(t *testing.T) {
	n, err := mustParse(t, directHead+"Subject: eIAM: Abweichende Benutzerdaten – A B\nContent-Type: text/plain\n\nGuten Tag, leider fehlt hier alles.\n")
	if err != nil {
		t.Fatal(err)
	}
	if n.Readable() || n.Language != "de" {
		t.Errorf("want an unreadable German notice, got %+v", n)
	}
}

func TestInlineForwardCutsTheHeaderBlock(t *testing.T) {
	raw := "From: sara@ti.ch\nSubject: WG: eIAM: Abweichende Benutzerdaten – A B\nMessage-ID: <o@ti.ch>\nContent-Type: text/plain; charset=utf-8\n\n" +
		"Bitte triagieren.\n\nVon: eIAM [mailto:noreply@eiam.admin.ch]\nGesendet: Montag, 20. Juli 2026 19:49\nAn: Sara\nBetreff: eIAM: Abweichende Benutzerdaten – A B\n\n" +
		"Profil-ID: p-1\nAnmeldung am: 20.07.2026 19:49\n\nAttribut | Im eIAM-Portal erfasst | Angemeldeter Benutzer\n---------+----+----\nVorname | A | A\nNachname | B | B\nE-Mail | a@be.ch | a@gmail.com\n"
	n, err := mustParse(t, raw)
	if err != nil {
		t.Fatal(err)
	}
	if n.Delivery != event.DeliveryInlineForward || n.Forwarder() != "sara@ti.ch" || n.From != "noreply@eiam.admin.ch" {
		t.Errorf("delivery %q forwarder %q from %q", n.Delivery, n.Forwarder(), n.From)
	}
	if n.ProfileID != "p-1" || len(n.ExtraRows) != 0 {
		t.Errorf("profile %q extra %+v: the forward header block leaked into the metadata", n.ProfileID, n.ExtraRows)
	}
	if n.SignedInAt.IsZero() || n.SignedInAt.Location().String() != "Europe/Zurich" {
		t.Errorf("signed in at = %v", n.SignedInAt)
	}
	if n.Actual.Email != "a@gmail.com" || n.Layout != event.LayoutTextTable {
		t.Errorf("actual %+v layout %q", n.Actual, n.Layout)
	}
}

// TestPathologicalInputsEnd feeds inputs shaped to make a careless parser
// quadratic: a subject of dashes after a notice subject, thousands of
// forward-header lines without an address, thousands of table rows. Each
// must be read (whatever the verdict) well within the deadline.
func TestPathologicalInputsEnd(t *testing.T) {
	rows := strings.Repeat("Vorname | A | B\n", 20000)
	tests := map[string]string{
		"dashes in the subject":        directHead + "Subject: eIAM: User data mismatch " + strings.Repeat("- ", 100000) + "\n\nx\n",
		"address-less forward headers": "From: a@be.ch\nSubject: x\n\n" + strings.Repeat("Von: @\n", 50000),
		"a huge table":                 directHead + "Subject: eIAM: Abweichende Benutzerdaten – A\n\nAttribut | Im eIAM-Portal erfasst | Angemeldeter Benutzer\n" + rows,
		"many headings":                directHead + "Subject: x\n\n" + strings.Repeat("Im eIAM-Portal erfasst:\nAngemeldeter Benutzer:\n", 20000),
	}
	p := MustParser(config.DefaultWording(), nil)
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) {
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, _ = p.Parse(t.Context(), []byte(raw))
			}()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("Parse of %d bytes has not ended after 20 s", len(raw))
			}
		})
	}
}

// TestSendersAsWritten: the parser reads every notice-shaped mail whoever
// sent it, and names its sender as written, ASCII-folded only: a
// look-alike stays a look-alike (trust decides), and a From that is not
// exactly one address, directly or quoted, is no sender at all ("").
func TestSendersAsWritten(t *testing.T) {
	body := "Subject: eIAM: User data mismatch – A B\nContent-Type: text/plain; charset=utf-8\n\nEntered in the eIAM portal:\n First name: A\n Last name: B\n E-mail: a@b.ch\n\nSigned-in user:\n First name: A\n Last name: B\n E-mail: a@b.ch\n"
	for from, want := range map[string]string{
		"eIAM <noreply@eiam-admin.ch>":                "noreply@eiam-admin.ch",
		`"noreply@eiam.admin.ch" <x@evil.example>`:    "x@evil.example",
		"eIAM <NoReply@EIAM.Admin.CH>":                "noreply@eiam.admin.ch",
		"eIAM <noreply@eİam.admİn.ch>":                "noreply@eİam.admİn.ch",
		`"noreply@eiam.admin.ch" evil@x.com`:          "",
		`noreply@eiam.admin.ch <evil@x.com`:           "",
		`noreply@eiam.admin.ch, evil@x.com`:           "",
		`eIAM <noreply@eiam.admin.ch>, <evil@x.com>`:  "",
		"=?utf-8?q?eIAM?= <noreply@eiam.admin.ch>":    "noreply@eiam.admin.ch",
		"Sara Bianchi <sara.b\u0130anchi@t\u0130.ch>": "sara.b\u0130anchi@t\u0130.ch",
	} {
		t.Run(from, func(t *testing.T) {
			n, err := mustParse(t, "From: "+from+"\n"+body)
			if err != nil {
				t.Fatal(err)
			}
			if n.From != want || n.Delivery != event.DeliveryDirect {
				t.Errorf("From %q delivery %s, want %q direct", n.From, n.Delivery, want)
			}
		})
	}
	for quoted, want := range map[string]string{
		"noreply@eiam.admin.ch <evil@x.com":   "",
		"noreply@eiam.admin.ch evil@x.com":    "",
		"eIAM [mailto:noreply@eiam.admin.ch]": "noreply@eiam.admin.ch",
		"eIAM <noreply@eİam.admİn.ch>":        "noreply@eİam.admİn.ch",
		"eIAM":                                "",
	} {
		t.Run("quoted "+quoted, func(t *testing.T) {
			raw := "From: sara@ti.ch\nSubject: WG: x\n\nVon: " + quoted + "\nBetreff: eIAM: User data mismatch – A B\n\n" + body[strings.Index(body, "Entered"):]
			n, err := mustParse(t, raw)
			if err != nil {
				t.Fatal(err)
			}
			if n.From != want || n.Delivery != event.DeliveryInlineForward || n.Forwarder() != "sara@ti.ch" {
				t.Errorf("From %q delivery %s forwarder %q, want %q inline from sara@ti.ch", n.From, n.Delivery, n.Forwarder(), want)
			}
		})
	}
}

// TestForwardChains: a notice quoted under several header blocks is the
// innermost block's, every block above it names a forwarder, and beyond
// MaxForwards the parser follows no further and says so.
func TestForwardChains(t *testing.T) {
	notice := "Profil-ID: p-1\nAnmeldung am: 20.07.2026 19:49\n\nAttribut | Im eIAM-Portal erfasst | Angemeldeter Benutzer\nVorname | A | A\nNachname | B | B\nE-Mail | a@be.ch | a@gmail.com\n"
	block := func(from, to string) string {
		return "Bitte ansehen.\n\nVon: " + from + "\nGesendet: Montag, 20. Juli 2026 19:49\nAn: " + to + "\nBetreff: WG: eIAM: Abweichende Benutzerdaten – A B\n\n"
	}
	chain := func(hops int) string {
		body := "Von: eIAM <noreply@eiam.admin.ch>\nGesendet: Montag, 20. Juli 2026 19:49\nAn: Urs <u0@be.ch>\nBetreff: eIAM: Abweichende Benutzerdaten – A B\n\n" + notice
		for i := 1; i < hops; i++ {
			body = block(fmt.Sprintf("U%d <u%d@be.ch>", i, i), fmt.Sprintf("<u%d@be.ch>", i+1)) + body
		}
		return "From: Martina Graf <martina.graf@be.ch>\nSubject: WG: x\nContent-Type: text/plain; charset=utf-8\n\n" + body
	}
	n, err := mustParse(t, chain(3))
	if err != nil {
		t.Fatal(err)
	}
	if n.From != "noreply@eiam.admin.ch" || !slices.Equal(n.Forwarders, []string{"martina.graf@be.ch", "u2@be.ch", "u1@be.ch"}) ||
		!slices.Equal(n.To, []string{"u0@be.ch"}) || n.Delivery != event.DeliveryInlineForward || !n.Readable() || n.Actual.Email != "a@gmail.com" {
		t.Errorf("from %q forwarders %q to %q delivery %s problems %q actual %+v", n.From, n.Forwarders, n.To, n.Delivery, n.Problems, n.Actual)
	}
	n, err = mustParse(t, chain(MaxForwards+2))
	if err != nil {
		t.Fatal(err)
	}
	if n.Readable() || !strings.Contains(strings.Join(n.Problems, " "), "forwarded through more than 8 messages") {
		t.Errorf("a chain of %d: problems %q", MaxForwards+2, n.Problems)
	}
}
