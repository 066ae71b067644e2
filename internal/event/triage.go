package event

import "time"

// SubjectQuarantine is where mail that looked like a notice from an
// untrusted sender is recorded (TypeMailQuarantined).
const SubjectQuarantine = "eiam.dead.quarantine"

// MailIgnored is the payload of TypeMailIgnored and TypeMailQuarantined: a
// mail the classify stage judged not to be a notice. It is recorded, never
// acted on.
type MailIgnored struct {
	MailID string `json:"mail_id"`
	Source string `json:"source"`
	// Kind is the parser's tag: auto-reply, dsn, list-mail,
	// untrusted-sender, no-notice-subject, own-mail; untrusted-forwarder
	// for a notice forwarded by somebody who is not a superuser; or
	// unreadable-mail when the message could not be read as a mail at all.
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
	// Suspicious is true when the mail looked like a notice from a sender
	// or forwarder that is not trusted: possibly forged, quarantined, to be
	// shown to the superuser.
	Suspicious bool      `json:"suspicious,omitempty"`
	At         time.Time `json:"at"`
}
