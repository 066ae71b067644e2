package event

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNewMarshalParseDecode(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 30, 0, 0, time.FixedZone("CET", 3600))
	in := MailReceived{MailID: strings.Repeat("ab", 32), Object: "mail/ab", Size: 42, Source: "publish:/tmp/x.eml", ReceivedAt: now.UTC()}
	e, err := New(TypeMailReceived, "eiamtriage/ingest", "mail-1", now, in)
	if err != nil {
		t.Fatal(err)
	}
	if e.SpecVersion != "1.0" || e.DataContentType != "application/json" || e.Time.Location() != time.UTC {
		t.Errorf("envelope = %+v", e)
	}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"specversion":"1.0"`, `"id":"mail-1"`, `"type":"ch.eiamtriage.mail.received.v2"`, `"datacontenttype":"application/json"`, `"mail_id":"abab`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
	if strings.Contains(string(b), `"subject"`) {
		t.Errorf("empty subject written: %s", b)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	var out MailReceived
	if err := got.Decode(&out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("decoded %+v, want %+v", out, in)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name, in string
		invalid  bool
	}{
		{"not json", `garbage`, false},
		{"no id", `{"specversion":"1.0","source":"s","type":"t"}`, true},
		{"wrong version", `{"specversion":"0.3","id":"1","source":"s","type":"t"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatal("Parse accepted it")
			}
			if !strings.HasPrefix(err.Error(), "event: ") {
				t.Errorf("error %q does not start with the package name", err)
			}
			if got := errors.Is(err, ErrInvalid); got != tt.invalid {
				t.Errorf("errors.Is(err, ErrInvalid) = %v, want %v (%v)", got, tt.invalid, err)
			}
		})
	}
}

func TestDecodeErrorNamesEvent(t *testing.T) {
	e, err := New(TypeCaseJoined, "src", "ev-7", time.Now(), map[string]int{"mail_id": 3})
	if err != nil {
		t.Fatal(err)
	}
	var out MailReceived
	err = e.Decode(&out)
	if err == nil || !strings.Contains(err.Error(), "ev-7") || !strings.Contains(err.Error(), TypeCaseJoined) {
		t.Fatalf("Decode error %v should name the id and type", err)
	}
	noData, err := New(TypeMailIgnored, "src", "ev-8", time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := noData.Decode(&out); err == nil || !strings.Contains(err.Error(), "ev-8") {
		t.Fatalf("Decode of an event without data: %v", err)
	}
}

func TestNewRequiresAttributes(t *testing.T) {
	if _, err := New("", "src", "id", time.Now(), nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("New without type: %v", err)
	}
	if _, err := New("t", "src", "id", time.Now(), func() {}); err == nil {
		t.Fatal("New accepted unmarshallable data")
	}
}

func TestSubjects(t *testing.T) {
	tests := map[string]string{
		CaseSubject(ClassPrivateEmail): "eiam.case.private-email",
		CaseSubject(ClassReview):       "eiam.case.review",
		TaskSubject("mail"):            "eiam.task.mail",
		ActionSubject("forward"):       "eiam.action.forward",
		DeadSubject("classify"):        "eiam.dead.classify",
	}
	for got, want := range tests {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	for _, ok := range []string{string(ClassNegligible), string(ClassPrivateEmail), string(ClassWrongPerson), string(ClassReview), "ingest", "a_b"} {
		if err := ValidToken(ok); err != nil {
			t.Errorf("ValidToken(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a.b", "*", ">", "a b", "a\tb"} {
		if err := ValidToken(bad); err == nil {
			t.Errorf("ValidToken(%q) accepted it", bad)
		}
	}
}

func TestDeadLetterOriginal(t *testing.T) {
	var d DeadLetter
	d.SetOriginal([]byte(`{"a":1}`))
	if string(d.OriginalData) != `{"a":1}` || d.OriginalBytes != nil {
		t.Errorf("JSON body: %+v", d)
	}
	raw := []byte{0xff, 'x', 0}
	d.SetOriginal(raw)
	if d.OriginalData != nil || string(d.Original()) != string(raw) {
		t.Errorf("binary body: %+v", d)
	}
	e, err := New(TypeDead, "src", "d1", time.Now(), d)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := e.Marshal()
	back, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	var d2 DeadLetter
	if err := back.Decode(&d2); err != nil {
		t.Fatal(err)
	}
	if string(d2.Original()) != string(raw) {
		t.Errorf("binary body did not survive: %q", d2.Original())
	}
}

// TestMarshalEscapes checks the hand-written envelope against encoding/json:
// quotes, backslashes, control characters, non-ASCII and invalid UTF-8 in
// the attributes come back as they went in (invalid UTF-8 replaced).
func TestMarshalEscapes(t *testing.T) {
	for _, s := range []string{`plain`, `a"b\c`, "tab\there\nnl\x01", "Zürich – ‘x’ \u2028", "bad\xffutf8"} {
		t.Run(s, func(t *testing.T) {
			e, err := New("t.v1", "src/"+s, "id-"+s, time.Unix(0, 5).UTC(), map[string]string{"k": s})
			if err != nil {
				t.Fatal(err)
			}
			e.Subject = s
			b, err := e.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(b) {
				t.Fatalf("invalid JSON: %s", b)
			}
			got, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			var ref Event
			ja, _ := json.Marshal(e)
			if err := json.Unmarshal(ja, &ref); err != nil {
				t.Fatal(err)
			}
			if got.ID != ref.ID || got.Source != ref.Source || got.Subject != ref.Subject || !got.Time.Equal(ref.Time) || string(got.Data) != string(ref.Data) {
				t.Errorf("hand-written %+v, encoding/json %+v", got, ref)
			}
		})
	}
}

// TestParseInto reads the same event as Parse followed by Decode, and fails
// like them on a bad envelope or data of the wrong shape.
func TestParseInto(t *testing.T) {
	in := MailReceived{MailID: "ab", Raw: []byte("From: x\r\n\r\nbody\xff"), Size: 14, Source: "s", ReceivedAt: time.Unix(7, 0).UTC()}
	e, err := New(TypeMailReceived, "src", "id-1", time.Unix(8, 0), in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var out MailReceived
	got, err := ParseInto(b, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) || got.ID != "id-1" || got.Type != TypeMailReceived || got.Data != nil {
		t.Errorf("got %+v / %+v", got, out)
	}
	if _, err := ParseInto([]byte(`{"specversion":"1.0","id":"x","source":"s","type":"t","data":{"size":"big"}}`), &out); err == nil {
		t.Error("data of the wrong shape accepted")
	}
	if _, err := ParseInto([]byte(`{"specversion":"0.3","id":"x","source":"s","type":"t"}`), &out); !errors.Is(err, ErrInvalid) {
		t.Errorf("spec version 0.3: %v", err)
	}
}

func TestClasses(t *testing.T) {
	prev := 0
	for _, c := range Classes() {
		if c.Severity() <= prev {
			t.Errorf("%s has severity %d after %d: Classes must be in order of severity", c, c.Severity(), prev)
		}
		prev = c.Severity()
		if got, err := ParseClass(string(c)); err != nil || got != c {
			t.Errorf("ParseClass(%q) = %q, %v", c, got, err)
		}
	}
	if ClassWrongPerson.Severity() != len(Classes()) || ClassNegligible.Severity() != 1 {
		t.Errorf("wrong-person must be the most severe and negligible the least")
	}
	_, err := ParseClass("bogus")
	if err == nil || !strings.Contains(err.Error(), "negligible, review, private-email, wrong-person") {
		t.Errorf("ParseClass(bogus) = %v, want an error naming the known classes", err)
	}
	if Class("bogus").Severity() != 0 {
		t.Error("an unknown class has a severity")
	}
}
