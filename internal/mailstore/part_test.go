package mailstore

import (
	"encoding/base64"
	"strings"
	"testing"
)

const innermost = "From: noreply@eiam.admin.ch\r\nSubject: eIAM: Abweichende Benutzerdaten \xe2\x80\x93 Anna Muster\r\n\r\nthe notice\r\n"

func TestPart(t *testing.T) {
	inner := "From: colleague@be.ch\r\nContent-Type: multipart/mixed; boundary=\"in\"\r\n\r\n" +
		"--in\r\nContent-Type: text/plain\r\n\r\nsee below\r\n" +
		"--in\r\nContent-Type: message/rfc822\r\n\r\n" + innermost + "\r\n--in--\r\n"
	outer := "From: martina.graf@be.ch\r\nContent-Type: multipart/mixed; boundary=\"out\"\r\n\r\npreamble\r\n" +
		"--out\r\nContent-Type: text/plain\r\n\r\nFYI\r\n" +
		"--out\r\nContent-Type: message/rfc822\r\n\r\n" + inner + "\r\n--out--\r\nepilogue\r\n"
	b64 := "From: x@be.ch\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n" +
		wrap(base64.StdEncoding.EncodeToString([]byte(innermost))) + "\n--b--\n"
	// The boundary b1 begins the boundary b10 of the multipart inside it.
	prefixed := "From: x@be.ch\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\n" +
		"Content-Type: multipart/mixed; boundary=b10\r\n\r\n--b10\r\nContent-Type: text/plain\r\n\r\nnote\r\n" +
		"--b10\r\nContent-Type: message/rfc822\r\n\r\n" + innermost + "\r\n--b10--\r\n\r\n--b1--\r\n"
	tests := []struct {
		name, raw, part, want, err string
	}{
		{"first part", outer, "1", "FYI", ""},
		{"the attached message", outer, "2", inner, ""},
		{"inside the attached message", outer, "2.1", "see below", ""},
		{"attached in attached", outer, "2.2", innermost, ""},
		{"base64 attached message", b64, "1", innermost, ""},
		{"no such part", outer, "3", "", "there are 2 parts, not 3"},
		{"not a multipart", outer, "1.1", "", "text/plain is not a multipart"},
		{"not a number", outer, "x", "", `"x" is not a part number`},
		{"zero", outer, "0", "", `"0" is not a part number`},
		{"too deep", outer, strings.Repeat("1.", 40) + "1", "", "deeper than 32 levels"},
		{"no header end", "From: x", "1", "", "the header has no end"},
		{"a boundary that begins another", prefixed, "1.2", innermost, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Part([]byte(tt.raw), tt.part)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Part(%q) error %v, want %q", tt.part, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Part(%q) =\n%q\nwant\n%q", tt.part, got, tt.want)
			}
		})
	}
}

func wrap(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\n")
		s = s[76:]
	}
	b.WriteString(s)
	return b.String()
}
