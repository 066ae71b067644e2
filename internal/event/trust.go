package event

// Trust is the verdict of sender authentication (docs/NOTICE.md section 5)
// on one mail, as package ingest/trust decides it: whether the mail may be
// acted on as a notice, and why. It travels in the mail-received event and
// is kept in the case (each notice's) and in the quarantine record.
type Trust struct {
	// Trusted is true when the mail may be acted on: the notice's sender
	// is an eIAM sender, a forward came from a superuser of the mailbox,
	// and the outermost sender is authenticated (or authentication is
	// switched off for the mailbox: then Method is "off").
	Trusted bool `json:"trusted"`
	// Kind tags an untrusted verdict for records and metrics:
	// "untrusted-sender" (the notice's From is not an eIAM sender),
	// "untrusted-forwarder" (forwarded by someone who is not a superuser
	// of the mailbox), "unauthenticated" (no counted Authentication-Results
	// header or DKIM signature passes for the sender's domain),
	// "ambiguous-sender" (not exactly one From field with one address, or
	// a non-ASCII address). Empty when Trusted.
	Kind string `json:"kind,omitempty"`
	// Method says what established trust: "dkim" or "dmarc" (from the
	// counted Authentication-Results header), "dkim-verified" (the
	// service verified a DKIM signature itself), "off" (authentication
	// switched off for the mailbox), or "content-only" (the offline
	// classify command, which applies the sender rule of section 2 alone).
	Method string `json:"method,omitempty"`
	// AuthservID is the authserv-id of the Authentication-Results header
	// that counted ("" for a Microsoft 365 header, which has none).
	AuthservID string `json:"authserv_id,omitempty"`
	// Sender is the address whose authentication was checked: the eIAM
	// sender of a direct notice, the outermost forwarder of a forward.
	Sender string `json:"sender,omitempty"`
	// Domain is the domain that passed (the DKIM signing domain, or the
	// DMARC header.from domain).
	Domain string `json:"domain,omitempty"`
	// Reasons say in words an operator understands what was checked and
	// what decided. Never empty.
	Reasons []string `json:"reasons"`
}
