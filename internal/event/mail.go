package event

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// SubjectQuarantine is where mail that looked like a notice but failed
// sender authentication is recorded (TypeMailQuarantined).
const SubjectQuarantine = "eiam.dead.quarantine"

// SubjectUnreadable is where mail the ingest could not read (a Reading of
// KindUnreadable) is recorded, with TypeMailIgnored: beside the dead
// letters, where an operator (`eiamtriage dead list`) looks, since it may
// have been a notice.
const SubjectUnreadable = "eiam.dead.unreadable"

// KindUnreadable is the Reading kind of a mail that cannot be read as a
// mail at all, or exceeds what the parser reads.
const KindUnreadable = "unreadable-mail"

// MailID returns the identity of a raw mail: the lower-case hex SHA-256 of
// its bytes. The same bytes are the same mail, whichever way they came.
func MailID(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// MailReceived is the payload of TypeMailReceived: one mail taken in from a
// mailbox (or put in with `eiamtriage publish` as if it came from one),
// with what the ingest read of it.
type MailReceived struct {
	// MailID is MailID of the raw mail bytes.
	MailID string `json:"mail_id"`
	// Mailbox is the name of the configured mailbox the mail came from.
	Mailbox string `json:"mailbox"`
	// Raw is the mail itself, byte for byte (base64 in JSON), when it is
	// small enough to travel in the event (InlineMax); Object is then
	// empty.
	Raw []byte `json:"raw,omitempty"`
	// Object is the name of the raw mail in the mail object store, for a
	// mail too large to travel in the event.
	Object string `json:"object,omitempty"`
	// Size is the raw mail's length in bytes.
	Size int64 `json:"size"`
	// Source says where the mail came from: "publish:<path>" or
	// "imap:<mailbox>/<folder>/<uidvalidity>/<uid>".
	Source string `json:"source"`
	// ReceivedAt is when eiamtriage took the mail in.
	ReceivedAt time.Time `json:"received_at"`
	// Reading is what the ingest read of the mail: the notice and the
	// verdict of sender authentication, or why it is not a notice.
	Reading Reading `json:"reading"`
}

// Reading is what the ingest read of a mail before it announced it: the
// notice parser's result and, for a notice, the verdict of sender
// authentication. Exactly one of Notice and Kind is set.
type Reading struct {
	// Notice is the notice the mail carries, nil when it is not one.
	Notice *Notice `json:"notice,omitempty"`
	// Trust is the sender authentication verdict on a notice (nil when
	// the mail is not one). Only a notice whose Trust.Trusted is true
	// becomes a case; any other is quarantined.
	Trust *Trust `json:"trust,omitempty"`
	// Kind says why the mail is not a notice: auto-reply, dsn,
	// list-mail, own-mail, no-notice-subject, or unreadable-mail (it
	// cannot be read as a mail at all, or exceeds what the parser reads).
	Kind string `json:"kind,omitempty"`
	// Reason says it in words a superuser understands.
	Reason string `json:"reason,omitempty"`
	// AddressedTo is the superuser of the mailbox the notice was sent to
	// (the first of its To addresses that is one), "" when it names none.
	AddressedTo string `json:"addressed_to,omitempty"`
}

// InlineMax is the largest mail carried in its MailReceived event; larger
// ones go to the object store. With base64 and the envelope the event stays
// well under NATS' default 1 MiB payload limit.
const InlineMax = 512 << 10

// MailIgnored is the payload of TypeMailIgnored and TypeMailQuarantined: a
// mail that is not a notice, or a notice that failed sender
// authentication. It is recorded, never acted on.
type MailIgnored struct {
	MailID  string `json:"mail_id"`
	Mailbox string `json:"mailbox"`
	Source  string `json:"source"`
	// ReceivedSeq is the sequence of the mail's mail-received event in the
	// notices stream, which holds the mail itself.
	ReceivedSeq uint64 `json:"received_seq,omitempty"`
	// Kind is the reading's kind (auto-reply, dsn, list-mail, own-mail,
	// no-notice-subject, unreadable-mail) or, for a quarantined mail, the
	// trust verdict's (untrusted-sender, untrusted-forwarder,
	// unauthenticated, ambiguous-sender).
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
	// Suspicious is true for a quarantined mail: it looked like a notice
	// but its sender is not trusted, possibly forged; shown to the
	// superuser as such.
	Suspicious bool `json:"suspicious,omitempty"`
	// Trust is the verdict that quarantined it, and Notice what it claimed
	// (hostile values: escape them before showing them).
	Trust  *Trust    `json:"trust,omitempty"`
	Notice *Notice   `json:"notice,omitempty"`
	At     time.Time `json:"at"`
}
