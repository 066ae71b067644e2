package event

import "time"

// Delivery says how a notice reached the mailbox.
type Delivery string

// The ways a notice arrives.
const (
	DeliveryDirect          Delivery = "direct"           // sent by eIAM to the mailbox
	DeliveryInlineForward   Delivery = "inline-forward"   // forwarded, the notice quoted in the body
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

// Notice is one eIAM mismatch notice as the ingest read it from a mail
// (package ingest/notice): what the classifier compares and what the case
// records. Every value comes from the mail, whoever wrote it: nothing here
// is trusted before the Trust verdict of the mail says so, and nothing is
// shown to a person unescaped.
//
// A Notice may be incomplete: when a mail is recognisably a notice but
// parts of it cannot be read, Problems says what is missing and the
// classifier sends it to review.
type Notice struct {
	// Language of the notice: "de", "fr", "it" or "en".
	Language string `json:"language"`

	ProfileID    string `json:"profile_id,omitempty"`
	Application  string `json:"application,omitempty"`
	Organisation string `json:"organisation,omitempty"`
	// SignedInAt is the "signed in at" row read as Swiss local time; zero
	// when absent or unreadable (SignedInRaw keeps the text either way).
	SignedInAt  time.Time `json:"signed_in_at,omitzero"`
	SignedInRaw string    `json:"signed_in_raw,omitempty"`

	// Expected is what the superuser entered in the portal, Actual what
	// the login identity that redeemed the code carries.
	Expected Person `json:"expected"`
	Actual   Person `json:"actual"`

	// ExtraRows are rows kept but not mapped: unknown metadata rows and
	// extra attribute rows (language, ...). They never change the class.
	ExtraRows []Row `json:"extra_rows,omitempty"`

	// MessageID is the notice's own Message-ID, with its angle brackets:
	// the attached message's for an attached forward, empty for an inline
	// forward (a quoted notice has none; see OuterMessageID).
	MessageID string `json:"message_id,omitempty"`
	// From is the address of the notice's own sender (the innermost From
	// of a forward), folded to lower case in ASCII only; empty when that
	// From was not exactly one address.
	From string `json:"from"`
	// To are the addresses the notice itself was sent to (for a forward,
	// the quoted or attached notice's recipients, when it names them).
	To []string `json:"to,omitempty"`
	// Subject is the notice's subject, decoded; SubjectName the profile
	// name at its end.
	Subject     string    `json:"subject,omitempty"`
	SubjectName string    `json:"subject_name,omitempty"`
	Date        time.Time `json:"date,omitzero"`

	Delivery Delivery `json:"delivery"`
	// Forwarders are the people who forwarded the notice, outermost first
	// (the outer mail's From, then each quoted or attached forward's
	// sender down to the notice); empty for a direct notice.
	Forwarders []string `json:"forwarders,omitempty"`
	// OuterMessageID is the Message-ID of the mail that carried the notice
	// when it was forwarded.
	OuterMessageID string `json:"outer_message_id,omitempty"`
	// Part is the MIME part number, as IMAP numbers parts ("2", "2.1"), of
	// the message/rfc822 part that holds the notice itself, for an
	// attached forward: the mail store reads the notice's own bytes from
	// it. Empty when the notice is the mail itself or quoted inline.
	Part string `json:"part,omitempty"`

	Layout Layout `json:"layout,omitempty"`

	// Problems lists what could not be read. A non-empty list makes the
	// notice unreadable in the sense of rule 1: it goes to review.
	Problems []string `json:"problems,omitempty"`
}

// Readable reports whether the notice was read without problems.
func (n *Notice) Readable() bool { return len(n.Problems) == 0 }

// Forwarder returns the outermost forwarder, or "" for a direct notice.
func (n *Notice) Forwarder() string {
	if len(n.Forwarders) == 0 {
		return ""
	}
	return n.Forwarders[0]
}
