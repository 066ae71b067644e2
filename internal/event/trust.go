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
	// header or DKIM signature passes for the sender's domain, or the
	// counted header cannot be read whole; a temporary DNS failure of the
	// service's own DKIM verification is this kind too, its reason says
	// so), "ambiguous-sender" (the header cannot be read, not exactly one
	// From field with one address, a non-ASCII address, or the parser's
	// senders differ from the header's). Empty when Trusted.
	Kind string `json:"kind,omitempty"`
	// Method says what established trust: "dkim" or "dmarc" (from the
	// counted Authentication-Results header), "dkim-verified" (the
	// service verified a DKIM signature itself), "off" (authentication
	// switched off for the mailbox), or "content-only" (the offline
	// classify command, which applies the sender rule of section 2 alone).
	// Empty when not Trusted.
	Method string `json:"method,omitempty"`
	// AuthservID is the authserv-id of the Authentication-Results header
	// that established trust, as written there ("" for a Microsoft 365
	// header, which has none, and for the methods other than "dkim" and
	// "dmarc"). Empty when not Trusted.
	AuthservID string `json:"authserv_id,omitempty"`
	// Sender is the address whose authentication was checked, folded to
	// lower case: the eIAM sender of a direct notice, the outermost
	// forwarder of a forward; for "content-only", the notice's From. Set
	// on untrusted verdicts too once the From was read as a plain ASCII
	// address; "" before.
	Sender string `json:"sender,omitempty"`
	// Domain is the domain that passed, folded to lower case: the DKIM
	// signing domain (aligned with Sender's domain, not necessarily equal
	// to it: admin.ch signs for eiam.admin.ch), or the DMARC header.from
	// domain. Empty for "off" and "content-only" and when not Trusted.
	Domain string `json:"domain,omitempty"`
	// Temporary is true when the verdict may change on a retry (a DNS
	// lookup for the service's own DKIM check failed temporarily): the
	// ingest retries such a mail instead of quarantining it.
	Temporary bool `json:"temporary,omitempty"`
	// Reasons say in words an operator understands what was checked and
	// what decided, the decisive reason first. Never empty. Values taken
	// from the mail are quoted and escaped (no control or non-ASCII
	// characters), and lists are bounded.
	Reasons []string `json:"reasons"`
}
