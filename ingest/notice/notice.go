// Package notice reads eIAM mismatch notices: a raw RFC 5322 message in, a
// typed event.Notice out, or an error that says why the message is not a notice.
//
// The package is pure: it performs no I/O beyond reading the bytes it is
// given, so the daemon's ingest stage and the offline classify command share
// it. It reads every mail shaped like a notice, whoever sent it, and says who
// did (the notice's own sender, its forwarders); whether they are trusted is
// package ingest/trust's decision. Everything that is wording (subject
// patterns, labels, headings, forward markers) is data in a config.Wording
// value, with the defaults of the contract in config.DefaultWording.
package notice

import "errors"

// ErrNotANotice is matched (with errors.Is) by every error that says a
// message is not an eIAM mismatch notice. Such a message is never a case.
var ErrNotANotice = errors.New("notice: not a mismatch notice")

// NotANoticeError says why a message is not a notice.
type NotANoticeError struct {
	// Kind is a short machine-readable tag: "auto-reply", "dsn",
	// "list-mail", "own-mail", "no-notice-subject", "unreadable-mail" (the
	// mail cannot be read whole: beyond a limit, or its header too long).
	Kind string
	// Reason is a sentence a superuser understands.
	Reason string
}

func (e *NotANoticeError) Error() string { return "notice: not a mismatch notice: " + e.Reason }

// Is makes errors.Is(err, ErrNotANotice) true.
func (e *NotANoticeError) Is(target error) bool { return target == ErrNotANotice }
