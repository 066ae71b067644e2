package notice

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/classify"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
)

// notNoticeShape turns a shape into a mail that is not recognisably a
// notice: another subject, and no comparison anywhere in it.
func notNoticeShape(raw []byte) []byte {
	raw = bytes.Replace(raw, []byte("=?utf-8?q?eIAM=3A_Abweichende_Benutzerdaten_=E2=80=93_Anna_Muster?="), []byte("Hallo"), 1)
	return bytes.ReplaceAll(raw, []byte("Angemeldeter Benutzer"), []byte("Anderer Text here"))
}

// TestLimits: a mail beyond a limit is read no further, in one pass, and
// becomes a clear record: a notice with a Problem naming the limit when
// what was read is recognisably a notice (then review), unreadable-mail
// with the limit and its number otherwise.
func TestLimits(t *testing.T) {
	p := MustParser(config.DefaultWording(), nil)
	cl := classify.New(nil)
	bigHeader := append([]byte(shapeHead+"X-Filler: "), bytes.Repeat([]byte("a"), MaxHeaderBytes)...)
	bigHeader = append(bigHeader, "\r\nContent-Type: text/plain\r\n\r\n"+shapeNotice...)
	bigPart := []byte(shapeHead + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + shapeNotice + strings.Repeat("Noch eine Zeile Text.\r\n", (MaxPartBytes/23)+10))
	tests := []struct {
		name     string
		raw      []byte
		want     string // in the Problem or the Reason
		complete bool   // the comparison was read before the limit
	}{
		{"10,000 nested multiparts", shapeDeepNesting(10000 * 78), "more than 16 levels deep", false},
		{"200,000 parts", shapeManyParts(200000 * 40), "more than 500 MIME parts", true},
		{"10,000 attached messages", shapeManyAttached(9 << 20), "more than 20 attached messages", true},
		{"a header over 1 MiB", bigHeader, "header is longer than 1024 KiB", false},
		{"a text part over 4 MiB", bigPart, "longer than 4 MiB: only its first 4 MiB were read", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := p.Parse(t.Context(), tt.raw)
			var ne *NotANoticeError
			switch {
			case errors.As(err, &ne):
				if tt.complete || ne.Kind != "unreadable-mail" || !strings.Contains(ne.Reason, tt.want) {
					t.Fatalf("not a notice (%s): %s; want a notice with the problem %q", ne.Kind, ne.Reason, tt.want)
				}
			case err != nil:
				t.Fatal(err)
			default:
				if !containsProblem(n, tt.want) {
					t.Fatalf("problems %q, want one saying %q", n.Problems, tt.want)
				}
				if v := cl.Classify(n); v.Class != event.ClassReview {
					t.Errorf("class %s, want review (rule 1): %q", v.Class, v.Reasons)
				}
				if tt.complete && n.Actual.Email != "anna.muster@gmail.com" {
					t.Errorf("the comparison before the limit was not read: %+v", n.Actual)
				}
			}
			if tt.name == "a header over 1 MiB" {
				return // no body to make a non-notice of
			}
			// The same shape without a notice in it: unreadable-mail,
			// saying which limit.
			_, err = p.Parse(t.Context(), notNoticeShape(tt.raw))
			if !errors.As(err, &ne) || ne.Kind != "unreadable-mail" || !strings.Contains(ne.Reason, tt.want) {
				if tt.name == "a text part over 4 MiB" && errors.As(err, &ne) && ne.Kind == "no-notice-subject" {
					return // a long part is cut, not unreadable: the mail is read as far as it matters
				}
				t.Fatalf("without a notice: %v, want unreadable-mail saying %q", err, tt.want)
			}
		})
	}
}

func containsProblem(n *event.Notice, s string) bool {
	for _, p := range n.Problems {
		if strings.Contains(p, s) {
			return true
		}
	}
	return false
}

// countdownCtx is a context whose Err starts to report Canceled after a
// number of calls: it ends the context in the middle of a parse,
// deterministically.
type countdownCtx struct {
	context.Context
	left  atomic.Int64
	after atomic.Int64 // calls of Err after the end
}

func (c *countdownCtx) Err() error {
	if c.left.Add(-1) >= 0 {
		return nil
	}
	c.after.Add(1)
	return context.Canceled
}

func (c *countdownCtx) Done() <-chan struct{} { return nil }

// TestParseHonoursContext: Parse stops soon after its context ends, in the
// MIME walk and in the long loops of the layouts (a huge HTML part, many
// text parts), and says so with the context's error.
func TestParseHonoursContext(t *testing.T) {
	p := MustParser(config.DefaultWording(), nil)
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			size := 2 << 20
			if s.name == "long-headers" {
				size = MaxHeaderBytes * 9 / 10 // a header within the limit
			}
			raw := s.build(size)
			ctx := &countdownCtx{Context: context.Background()}
			ctx.left.Store(3)
			_, err := p.Parse(ctx, raw)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			// After the end, a few more checks unwind the parse; a loop
			// that ignored the context would go on checking nothing.
			if got := ctx.after.Load(); got > 5 {
				t.Errorf("%d checks of the context after it ended: the parse went on", got)
			}
		})
	}
	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := p.Parse(ctx, []byte(shapeHead+"\r\n"+shapeNotice)); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("a deadline", func(t *testing.T) {
		ctx, cancel := context.WithDeadline(t.Context(), time.Unix(0, 0))
		defer cancel()
		if _, err := p.Parse(ctx, shapeManyTextParts(1<<20)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
	})
}

// TestUndecodableText: text that cannot be decoded cannot be compared: a
// notice with it has a Problem (rule 1, review), never a false
// wrong-person from "J\uFFFDrg" against "Juerg".
func TestUndecodableText(t *testing.T) {
	p := MustParser(config.DefaultWording(), nil)
	cl := classify.New(nil)
	body := "Attribut | Im eIAM-Portal erfasst | Angemeldeter Benutzer\r\nVorname | J\xfcrg | Juerg\r\nNachname | M\xfcller | Mueller\r\nE-Mail | j@be.ch | j@be.ch\r\n"
	tests := []struct {
		name, ctype, cte, body, want string
	}{
		{"latin-1 bytes declared utf-8", "text/plain; charset=utf-8", "8bit", body, "declares utf-8 but holds bytes that are not valid in it"},
		{"latin-1 bytes without a charset", "text/plain", "8bit", body, "declares no charset (US-ASCII)"},
		{"an unknown charset", "text/plain; charset=x-klingon", "8bit", body, `unknown charset "x-klingon"`},
		{"a replacement character", "text/plain; charset=utf-8", "8bit", strings.ReplaceAll(body, "\xfc", "\uFFFD"), "U+FFFD"},
		{"base64 utf-8 with latin-1 bytes", "text/html; charset=UTF-8", "base64",
			b64("<table><tr><th>Attribut</th><th>Im eIAM-Portal erfasst</th><th>Angemeldeter Benutzer</th></tr><tr><td>Vorname</td><td>J\xfcrg</td><td>Juerg</td></tr><tr><td>Nachname</td><td>M\xfcller</td><td>Mueller</td></tr><tr><td>E-Mail</td><td>j@be.ch</td><td>j@be.ch</td></tr></table>"),
			"not valid"},
		{"an unknown transfer encoding", "text/plain; charset=utf-8", "x-uuencode", body, `unknown transfer encoding "x-uuencode"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := shapeHead + "Content-Type: " + tt.ctype + "\r\nContent-Transfer-Encoding: " + tt.cte + "\r\n\r\n" + tt.body
			n, err := p.Parse(t.Context(), []byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			if !containsProblem(n, tt.want) {
				t.Errorf("problems %q, want one saying %q", n.Problems, tt.want)
			}
			if v := cl.Classify(n); v.Class != event.ClassReview {
				t.Errorf("class %s (%q), want review", v.Class, v.Reasons)
			}
		})
	}
	t.Run("windows-1252 decodes", func(t *testing.T) {
		raw := shapeHead + "Content-Type: text/plain; charset=windows-1252\r\n\r\n" + body
		n, err := p.Parse(t.Context(), []byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		if !n.Readable() || n.Expected.GivenName != "Jürg" {
			t.Errorf("problems %q, given name %q", n.Problems, n.Expected.GivenName)
		}
	})
}

func b64(s string) string {
	var b strings.Builder
	enc := []byte(encodeBase64(s))
	for len(enc) > 76 {
		b.Write(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	b.Write(enc)
	b.WriteString("\r\n")
	return b.String()
}

// TestCROnlyLineEndings: a notice written with bare CRs (old Mac mail
// programs, some gateways) is read like any other.
func TestCROnlyLineEndings(t *testing.T) {
	p := MustParser(config.DefaultWording(), nil)
	for name, raw := range map[string]string{
		"plain": shapeHead + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + shapeNotice,
		"multipart": shapeHead + "Content-Type: multipart/alternative; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain; charset=utf-8\r\n" +
			"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + strings.ReplaceAll(shapeNotice, "=", "=3D") + "--zz--\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			cr := strings.ReplaceAll(raw, "\r\n", "\r")
			n, err := p.Parse(t.Context(), []byte(cr))
			if err != nil {
				t.Fatal(err)
			}
			if !n.Readable() || n.Actual.Email != "anna.muster@gmail.com" || n.ProfileID != "0f2b-shape" {
				t.Errorf("problems %q, actual %+v, profile %q", n.Problems, n.Actual, n.ProfileID)
			}
		})
	}
}

func encodeBase64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
