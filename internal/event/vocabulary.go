package event

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Subjects. Each stage publishes on one of these and the streams in package
// pipeline capture them by prefix.
const (
	// SubjectNoticeReceived carries a MailReceived: a raw mail, taken in,
	// awaits classification.
	SubjectNoticeReceived = "eiam.notice.received"
	// SubjectNoticeIgnored records a mail judged not to be a notice.
	SubjectNoticeIgnored = "eiam.notice.ignored"

	// SubjectNotices, SubjectCases, SubjectTasks, SubjectActions and
	// SubjectDead match every subject of their family, for stream and
	// consumer filters.
	SubjectNotices = "eiam.notice.>"
	SubjectCases   = "eiam.case.>"
	SubjectTasks   = "eiam.task.>"
	SubjectActions = "eiam.action.>"
	SubjectDead    = "eiam.dead.>"
)

// Event types. The trailing version changes when a payload changes
// incompatibly; readers switch on the full type.
const (
	// TypeMailReceived has a MailReceived payload: a mail taken in, with
	// what the ingest read of it (v2: the reading and the mailbox).
	TypeMailReceived = "ch.eiamtriage.mail.received.v2"
	// TypeMailIgnored marks a mail recorded as not-a-notice.
	TypeMailIgnored = "ch.eiamtriage.mail.ignored.v2"
	// TypeMailQuarantined marks a mail that looked like a notice from a
	// sender that is not trusted (possibly forged): recorded on
	// eiam.dead.quarantine with a MailIgnored payload, never acted on,
	// shown to the superuser as suspicious.
	TypeMailQuarantined = "ch.eiamtriage.mail.quarantined.v2"
	// TypeCaseClassified announces a new case with its class.
	TypeCaseClassified = "ch.eiamtriage.case.classified.v2"
	// TypeCaseJoined announces that a later notice joined an existing case.
	TypeCaseJoined = "ch.eiamtriage.case.joined.v2"
	// TypeDead has a DeadLetter payload.
	TypeDead = "ch.eiamtriage.dead.v1"
)

// CaseSubject returns the subject of a case of the given class, for example
// "eiam.case.review".
func CaseSubject(class Class) string { return "eiam.case." + string(class) }

// TaskSubject returns "eiam.task.<kind>". kind must be a single token.
func TaskSubject(kind string) string { return "eiam.task." + kind }

// ActionSubject returns "eiam.action.<kind>". kind must be a single token.
func ActionSubject(kind string) string { return "eiam.action." + kind }

// DeadSubject returns "eiam.dead.<stage>", where package pipeline puts the
// dead letters of stage. stage must be a single token.
func DeadSubject(stage string) string { return "eiam.dead." + stage }

// ValidToken reports whether tok can stand as one token of a NATS subject:
// not empty, and without '.', wildcards ('*', '>') or white space. Callers
// that build subjects from configuration check their tokens with it once at
// start-up.
func ValidToken(tok string) error {
	if tok == "" {
		return fmt.Errorf("event: empty subject token; name the class, kind or stage")
	}
	if i := strings.IndexFunc(tok, func(r rune) bool {
		return r == '.' || r == '*' || r == '>' || r <= ' ' || r == 0x7f
	}); i >= 0 {
		return fmt.Errorf("event: subject token %q contains %q at byte %d; use letters, digits, '-' or '_'", tok, tok[i], i)
	}
	return nil
}

// DeadLetter is the payload of TypeDead: a message that a stage gave up on,
// with everything needed to understand and replay it.
type DeadLetter struct {
	// Stage is the stage that gave up.
	Stage string `json:"stage"`
	// Reason is the last error of the stage's handler.
	Reason string `json:"reason"`
	// Permanent is true when the handler said the message can never
	// succeed (or panicked), false when retries ran out.
	Permanent bool `json:"permanent"`
	// Deliveries is how often the message was delivered to the stage.
	Deliveries uint64 `json:"deliveries"`
	// OriginalSubject is the subject the message was consumed from.
	OriginalSubject string `json:"original_subject"`
	// OriginalData is the message body verbatim when it is valid JSON
	// (usually an event); otherwise it is empty and OriginalBytes holds
	// the body (base64 in JSON). Use SetOriginal to fill them.
	OriginalData  json.RawMessage `json:"original_data,omitempty"`
	OriginalBytes []byte          `json:"original_bytes,omitempty"`
	// Headers are the original message's NATS headers.
	Headers map[string][]string `json:"headers,omitempty"`
	// At is when the stage gave up.
	At time.Time `json:"at"`
}

// SetOriginal stores the original message body in OriginalData when it is
// valid JSON and in OriginalBytes otherwise, so that any body survives the
// JSON encoding of the dead letter.
func (d *DeadLetter) SetOriginal(body []byte) {
	d.OriginalData, d.OriginalBytes = nil, nil
	if json.Valid(body) {
		d.OriginalData = append(json.RawMessage(nil), body...)
		return
	}
	d.OriginalBytes = append([]byte(nil), body...)
}

// Original returns the original message body, from whichever field holds it.
func (d DeadLetter) Original() []byte {
	if d.OriginalData != nil {
		return d.OriginalData
	}
	return d.OriginalBytes
}
