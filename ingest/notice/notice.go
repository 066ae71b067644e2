// Package notice reads eIAM mismatch notices: a raw RFC 5322 message in, a
// typed Notice out, or an error that says why the message is not a notice.
//
// The package is pure: it performs no I/O beyond reading the bytes it is
// given, so the daemon's ingest stage and the offline classify command share
// it. Everything that is wording (subject patterns, labels, headings, trusted
// senders) is data in a Wording value, with the defaults of the contract in
// DefaultWording.
package notice

import (
	"errors"
	"time"
)

// Delivery says how a notice reached the mailbox.
type Delivery string

// The ways a notice arrives.
const (
	DeliveryDirect          Delivery = "direct"           // sent by eIAM to the mailbox
	DeliveryInlineForward   Delivery = "inline-forward"   // forwarded, notice quoted in the body
	DeliveryAttachedForward Delivery = "attached-forward" // forwarded as a message/rfc822 part
)

// Layout says how the compared attributes were laid out.
type Layout string

// The layouts of the comparison.
const (
	LayoutHTMLTable Layout = "html-table"
	LayoutTextTable Layout = "text-table"
	LayoutBlocks    Layout = "blocks"
)

// Person holds the three compared attributes of one side of a notice. An
// empty field means the value was missing or blank in the notice.
type Person struct {
	GivenName  string `json:"given_name"`
	FamilyName string `json:"family_name"`
	Email      string `json:"email"`
}

// Row is a "Label: value" row the parser kept without mapping it to a field
// (an unknown metadata row, or an extra attribute such as Sprache).
type Row struct {
	Label    string `json:"label"`
	Value    string `json:"value,omitempty"`
	Expected string `json:"expected,omitempty"` // for extra attribute rows: the entered value
	Actual   string `json:"actual,omitempty"`   // for extra attribute rows: the signed-in value
}

// Notice is one eIAM mismatch notice as read from a message.
//
// A Notice may be incomplete: when a message is recognisably a notice (a
// trusted eIAM sender and a notice subject) but parts of it cannot be read,
// Problems says what is missing and the classifier sends it to review.
type Notice struct {
	// Language of the notice: "de", "fr", "it" or "en".
	Language string `json:"language"`

	ProfileID    string `json:"profile_id,omitempty"`
	Application  string `json:"application,omitempty"`
	Organisation string `json:"organisation,omitempty"`
	// SignedInAt is the "signed in at" row read as Swiss local time; zero when
	// absent or unreadable (SignedInRaw keeps the text either way).
	SignedInAt  time.Time `json:"signed_in_at,omitzero"`
	SignedInRaw string    `json:"signed_in_raw,omitempty"`

	// Expected is what the superuser entered in the portal, Actual what the
	// login identity that redeemed the code carries.
	Expected Person `json:"expected"`
	Actual   Person `json:"actual"`

	// ExtraRows are rows kept but not mapped: unknown metadata rows and extra
	// attribute rows (language, ...). They never change the class.
	ExtraRows []Row `json:"extra_rows,omitempty"`

	// MessageID is the notice's own Message-ID, with its angle brackets:
	// the attached message's for an attached forward, empty for an inline
	// forward (a quoted notice has none; see OuterMessageID).
	MessageID string `json:"message_id,omitempty"`
	// From is the address of the notice's sender (the eIAM sender; the inner
	// From for a forward).
	From string `json:"from"`
	// Subject is the notice's subject, decoded; SubjectName the profile name
	// at its end.
	Subject     string    `json:"subject,omitempty"`
	SubjectName string    `json:"subject_name,omitempty"`
	Date        time.Time `json:"date,omitzero"`

	Delivery Delivery `json:"delivery"`
	// Forwarder is the address of the person who forwarded the notice (the
	// outer From); empty for a direct notice.
	Forwarder string `json:"forwarder,omitempty"`
	// OuterMessageID is the Message-ID of the message that carried the notice
	// when it was forwarded.
	OuterMessageID string `json:"outer_message_id,omitempty"`

	Layout Layout `json:"layout,omitempty"`

	// Problems lists what could not be read. A non-empty list makes the
	// notice unreadable in the sense of rule 1: it goes to review.
	Problems []string `json:"problems,omitempty"`
}

// Readable reports whether the notice was read without problems.
func (n *Notice) Readable() bool { return len(n.Problems) == 0 }

// ErrNotANotice is matched (with errors.Is) by every error that says a
// message is not an eIAM mismatch notice. Such a message is never a case.
var ErrNotANotice = errors.New("notice: not a mismatch notice")

// NotANoticeError says why a message is not a notice.
type NotANoticeError struct {
	// Kind is a short machine-readable tag: "auto-reply", "dsn",
	// "untrusted-sender", "no-notice-subject", "list-mail", "own-mail".
	Kind string
	// Reason is a sentence a superuser understands.
	Reason string
}

func (e *NotANoticeError) Error() string { return "notice: not a mismatch notice: " + e.Reason }

// Is makes errors.Is(err, ErrNotANotice) true.
func (e *NotANoticeError) Is(target error) bool { return target == ErrNotANotice }
