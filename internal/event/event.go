// Package event defines the envelope and the vocabulary (subjects, types and
// payloads) of the events that eiamtriage's stages exchange over NATS
// JetStream.
//
// An event is a CloudEvents 1.0 event in the structured JSON content mode
// (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/formats/json-format.md):
// the whole envelope, attributes and data, is the NATS message body. The
// event ID doubles as the Nats-Msg-Id header when publishing, so publishing
// the same event twice within the stream's duplicate window stores it once:
// producers derive IDs from their input (a mail's hash, a case key) rather
// than drawing random ones when a retry must not duplicate the event.
package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// SpecVersion is the CloudEvents specification version written and accepted.
const SpecVersion = "1.0"

// ContentTypeJSON is the data content type of every event eiamtriage writes.
const ContentTypeJSON = "application/json"

// Event is a CloudEvents 1.0 envelope. Data holds the JSON payload as is;
// use Decode to read it into a payload struct.
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data,omitempty"`
}

// ErrInvalid is wrapped by every error that reports an envelope missing a
// required attribute or carrying an unsupported spec version.
var ErrInvalid = errors.New("invalid event")

// New builds an event of type typ from source with the given id, stamped
// with now (in UTC), whose data is data marshalled to JSON. A nil data gives
// an event without data. typ, source and id must not be empty; the id must
// be unique per source and stable across retries of the same fact (it is
// the de-duplication key).
func New(typ, source, id string, now time.Time, data any) (Event, error) {
	e := Event{
		SpecVersion:     SpecVersion,
		ID:              id,
		Source:          source,
		Type:            typ,
		Time:            now.UTC(),
		DataContentType: ContentTypeJSON,
	}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return Event{}, fmt.Errorf("event: marshal data of new %s event %q from %s: %w", typ, id, source, err)
		}
		e.Data = b
	}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// Validate reports whether e has the required CloudEvents attributes
// (specversion 1.0, id, source, type). The error wraps ErrInvalid.
func (e Event) Validate() error {
	var missing []string
	if e.ID == "" {
		missing = append(missing, "id")
	}
	if e.Source == "" {
		missing = append(missing, "source")
	}
	if e.Type == "" {
		missing = append(missing, "type")
	}
	if len(missing) > 0 {
		return fmt.Errorf("event: %w: event %q of type %q from %q lacks %v; set them when creating the event", ErrInvalid, e.ID, e.Type, e.Source, missing)
	}
	if e.SpecVersion != SpecVersion {
		return fmt.Errorf("event: %w: event %q of type %q has specversion %q, want %q", ErrInvalid, e.ID, e.Type, e.SpecVersion, SpecVersion)
	}
	return nil
}

// Decode unmarshals the event's data into v. It fails, naming the event's id
// and type, when the event has no data, when its content type is not JSON or
// when the data does not fit v. Unknown fields are ignored so that a v1
// payload can gain optional fields without breaking older readers.
func (e Event) Decode(v any) error {
	if len(e.Data) == 0 {
		return fmt.Errorf("event: decode event %q of type %s: the event has no data", e.ID, e.Type)
	}
	if e.DataContentType != "" && e.DataContentType != ContentTypeJSON {
		return fmt.Errorf("event: decode event %q of type %s: data content type %q is not %s", e.ID, e.Type, e.DataContentType, ContentTypeJSON)
	}
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("event: decode data of event %q of type %s into %T: %w", e.ID, e.Type, v, err)
	}
	return nil
}

// Marshal returns the structured-mode JSON encoding of e, the body of the
// NATS message. It validates e first. Data is written as it is: it must be
// valid JSON, as New and Parse make it (json.Marshal would scan and compact
// it again, which for a mail carried in its event is most of the cost).
func (e Event) Marshal() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 192+len(e.ID)+len(e.Source)+len(e.Type)+len(e.Subject)+len(e.Data))
	b = append(b, `{"specversion":`...)
	b = appendString(b, e.SpecVersion)
	b = append(b, `,"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"source":`...)
	b = appendString(b, e.Source)
	b = append(b, `,"type":`...)
	b = appendString(b, e.Type)
	if e.Subject != "" {
		b = append(b, `,"subject":`...)
		b = appendString(b, e.Subject)
	}
	b = append(b, `,"time":`...)
	t, err := e.Time.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("event: marshal event %q of type %s: time: %w", e.ID, e.Type, err)
	}
	b = append(b, t...)
	b = append(b, `,"datacontenttype":`...)
	b = appendString(b, e.DataContentType)
	if len(e.Data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, e.Data...)
	}
	return append(b, '}'), nil
}

// appendString appends s as a JSON string. Invalid UTF-8 goes through
// encoding/json, which replaces it.
func appendString(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		q, _ := json.Marshal(s) // a string always marshals
		return append(b, q...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// Parse decodes a structured-mode JSON event and validates it. The error
// wraps ErrInvalid when the JSON is well formed but the envelope is not a
// valid CloudEvents 1.0 event.
func Parse(b []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, fmt.Errorf("event: parse %d bytes starting %q as a CloudEvents JSON event: %w", len(b), prefix(b, 40), err)
	}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// ParseInto decodes a structured-mode JSON event and its data in one pass:
// the data goes straight into v (as Decode would put it), the returned
// Event has the attributes and no Data. It is Parse followed by Decode for
// a reader that knows the payload type, without scanning the data three
// more times (for a mail carried in its event, the bulk of the work).
func ParseInto(b []byte, v any) (Event, error) {
	var e struct {
		SpecVersion     string    `json:"specversion"`
		ID              string    `json:"id"`
		Source          string    `json:"source"`
		Type            string    `json:"type"`
		Subject         string    `json:"subject"`
		Time            time.Time `json:"time"`
		DataContentType string    `json:"datacontenttype"`
		Data            any       `json:"data"`
	}
	e.Data = v
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, fmt.Errorf("event: parse %d bytes starting %q as a CloudEvents JSON event with %T data: %w", len(b), prefix(b, 40), v, err)
	}
	ev := Event{SpecVersion: e.SpecVersion, ID: e.ID, Source: e.Source, Type: e.Type, Subject: e.Subject, Time: e.Time, DataContentType: e.DataContentType}
	if err := ev.Validate(); err != nil {
		return Event{}, err
	}
	if ev.DataContentType != "" && ev.DataContentType != ContentTypeJSON {
		return Event{}, fmt.Errorf("event: event %q of type %s: data content type %q is not %s", ev.ID, ev.Type, ev.DataContentType, ContentTypeJSON)
	}
	return ev, nil
}

func prefix(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}
