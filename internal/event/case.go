package event

import "time"

// Change says what recording a notice did to its case.
type Change string

// The changes a notice makes to its case.
const (
	// ChangeCreated: the notice opened a new case.
	ChangeCreated Change = "created"
	// ChangeJoined: a further notice for the same profile joined the case;
	// the class stayed.
	ChangeJoined Change = "joined"
	// ChangeEscalated: a further notice joined and raised the case's class
	// (Class.Severity).
	ChangeEscalated Change = "escalated"
	// ChangeDuplicate: the notice was already part of the case.
	ChangeDuplicate Change = "duplicate"
)

// NoticeRef is one notice that joined a case: where it came from, who
// sent and forwarded it, how it was authenticated and classified.
type NoticeRef struct {
	MailID string `json:"mail_id"`
	// Mailbox is the mailbox the notice came in through.
	Mailbox string `json:"mailbox"`
	// SignedIn is the notice's "signed in at" row as written.
	SignedIn string `json:"signed_in,omitempty"`
	// ReceivedSeq is the sequence of the notice's mail-received event in
	// the notices stream: the event carries the original mail (or names
	// its object), for a forward byte for byte.
	ReceivedSeq uint64   `json:"received_seq,omitempty"`
	MessageID   string   `json:"message_id,omitempty"`
	Delivery    Delivery `json:"delivery"`
	// Part is Notice.Part: where in the mail an attached notice is.
	Part string `json:"part,omitempty"`
	// AddressedTo is the superuser of the mailbox the notice was sent to
	// (one of its To addresses), or "" when it names none of them.
	AddressedTo string `json:"addressed_to,omitempty"`
	// Forwarders are who forwarded the notice, outermost first.
	Forwarders []string `json:"forwarders,omitempty"`
	// Trust is the sender authentication verdict on the notice's mail.
	Trust      Trust     `json:"trust"`
	Class      Class     `json:"class"`
	Rule       int       `json:"rule"`
	Reasons    []string  `json:"reasons"`
	Expected   Person    `json:"expected"`
	Actual     Person    `json:"actual"`
	ReceivedAt time.Time `json:"received_at"`
	// Change is what this notice did to the case.
	Change Change `json:"change"`
	// Duplicates counts other mails that carried this same notice (it
	// arrived directly and forwarded, say); DuplicateMails names them.
	Duplicates     int      `json:"duplicates,omitempty"`
	DuplicateMails []string `json:"duplicate_mails,omitempty"`
}

// Case is the record of one profile's mismatch: the class of its most
// severe notice with that notice's values and reasons, and every notice
// that joined.
type Case struct {
	ID        string `json:"id"`
	ProfileID string `json:"profile_id,omitempty"`
	// Mailbox is the mailbox of the case's first notice.
	Mailbox string `json:"mailbox"`
	Class   Class  `json:"class"`
	Rule    int    `json:"rule"`
	// Names is the name verdict (same, partial, different), empty when
	// rule 1 decided.
	Names        string      `json:"names,omitempty"`
	Language     string      `json:"language"`
	Application  string      `json:"application,omitempty"`
	Organisation string      `json:"organisation,omitempty"`
	SignedInAt   time.Time   `json:"signed_in_at,omitzero"`
	Expected     Person      `json:"expected"`
	Actual       Person      `json:"actual"`
	Reasons      []string    `json:"reasons"`
	Problems     []string    `json:"problems,omitempty"`
	Notices      []NoticeRef `json:"notices"`
	Created      time.Time   `json:"created"`
	Updated      time.Time   `json:"updated"`
}

// Ref returns the notice of the case recorded from the mail mailID, or nil
// when that mail only duplicated a notice recorded from another mail.
func (c *Case) Ref(mailID string) *NoticeRef {
	for i := range c.Notices {
		if c.Notices[i].MailID == mailID {
			return &c.Notices[i]
		}
	}
	return nil
}

// CaseChanged is the payload of the case events (TypeCaseClassified for
// created and escalated, TypeCaseJoined for joined), published on
// eiam.case.<class> whenever a notice opens, joins or escalates a case.
// Case is the record as stored after the change; MailID names the notice
// that caused it. The event id is CaseEventID(case, mail): the stream drops
// a re-publication within its duplicate window, and consumers key their
// side effects by it.
type CaseChanged struct {
	Change     Change    `json:"change"`
	MailID     string    `json:"mail_id"`
	ReceivedAt time.Time `json:"received_at"`
	Case       *Case     `json:"case"`
}

// CaseEventID is the id of the case event caused by the mail mailID.
func CaseEventID(caseID, mailID string) string { return "case-" + caseID + "-" + mailID }
