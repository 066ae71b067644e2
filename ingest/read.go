package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/eiamtriage/eiamtriage/ingest/notice"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
)

// Checker decides sender authentication for one mailbox: whether the mail
// raw may be acted on as the notice n it carries (package ingest/trust).
type Checker interface {
	Check(ctx context.Context, raw []byte, n *event.Notice) event.Trust
}

// CheckerFunc adapts a function to Checker.
type CheckerFunc func(ctx context.Context, raw []byte, n *event.Notice) event.Trust

// Check calls f.
func (f CheckerFunc) Check(ctx context.Context, raw []byte, n *event.Notice) event.Trust {
	return f(ctx, raw, n)
}

// Mailbox is what the reader needs of one configured mailbox.
type Mailbox struct {
	Name string
	// Superusers name who a notice may be addressed to (AddressedTo),
	// folded to lower case.
	Superusers []string
	// Trust authenticates the mail's sender.
	Trust Checker
}

// Reader reads a raw mail as the pipeline needs it read, before the mail
// is announced: the notice parser, then sender authentication by the
// mailbox's policy. Every intake (the mailbox watcher, `publish`) reads
// through it, so that no mail reaches a case unauthenticated. It is safe
// for concurrent use.
type Reader struct {
	parser    *notice.Parser
	mailboxes map[string]Mailbox
}

// NewReader returns a reader with the parser and the mailboxes.
func NewReader(parser *notice.Parser, mailboxes []Mailbox) (*Reader, error) {
	if parser == nil {
		return nil, errors.New("ingest: a reader needs a notice parser")
	}
	r := &Reader{parser: parser, mailboxes: make(map[string]Mailbox, len(mailboxes))}
	for _, m := range mailboxes {
		if m.Trust == nil {
			return nil, fmt.Errorf("ingest: mailbox %s has no sender authentication", m.Name)
		}
		r.mailboxes[m.Name] = m
	}
	return r, nil
}

// ErrUnknownMailbox is returned by Read for a mailbox the reader was not
// given.
var ErrUnknownMailbox = errors.New("ingest: unknown mailbox")

// Read parses raw and, when it is a notice, authenticates its sender for
// the mailbox. It fails only for an unknown mailbox or when ctx ends; a
// mail that cannot be read is a Reading of kind unreadable-mail.
func (r *Reader) Read(ctx context.Context, raw []byte, mailbox string) (event.Reading, error) {
	mb, ok := r.mailboxes[mailbox]
	if !ok {
		return event.Reading{}, fmt.Errorf("%w %q", ErrUnknownMailbox, mailbox)
	}
	n, err := r.parser.Parse(ctx, raw)
	if cerr := ctx.Err(); cerr != nil {
		return event.Reading{}, fmt.Errorf("ingest: read a mail for mailbox %s: %w", mailbox, cerr)
	}
	if err != nil {
		var nn *notice.NotANoticeError
		if errors.As(err, &nn) {
			return event.Reading{Kind: nn.Kind, Reason: nn.Reason}, nil
		}
		return event.Reading{Kind: "unreadable-mail", Reason: err.Error()}, nil
	}
	t := mb.Trust.Check(ctx, raw, n)
	return event.Reading{Notice: n, Trust: &t, AddressedTo: addressedTo(n, mb.Superusers)}, nil
}

// addressedTo returns the first of the notice's recipients that is a
// superuser of the mailbox.
func addressedTo(n *event.Notice, superusers []string) string {
	for _, to := range n.To {
		for _, su := range superusers {
			if to == su {
				return su
			}
		}
	}
	return ""
}

// ReaderFor builds the reader the configuration describes: the parser with
// its wording, and each mailbox's sender authentication.
func ReaderFor(cfg *config.Config) (*Reader, error) {
	parser, err := notice.NewParser(cfg.Wording, nil)
	if err != nil {
		return nil, err
	}
	mbs := make([]Mailbox, len(cfg.Mailboxes))
	for i, m := range cfg.Mailboxes {
		mbs[i] = Mailbox{Name: m.Name, Superusers: foldAll(m.Superusers), Trust: superusersOnly(m)}
	}
	return NewReader(parser, mbs)
}

// superusersOnly is the sender check of the previous release, kept until
// package ingest/trust lands: the parser has applied the eIAM sender rule,
// and a forward is trusted only from a superuser of the mailbox.
// Authentication-Results are not read yet.
func superusersOnly(m config.Mailbox) Checker {
	su := map[string]bool{}
	for _, a := range foldAll(m.Superusers) {
		su[a] = true
	}
	return CheckerFunc(func(_ context.Context, _ []byte, n *event.Notice) event.Trust {
		if n.Delivery == event.DeliveryDirect {
			return event.Trust{Trusted: true, Method: "content-only", Sender: n.From, Reasons: []string{"sent by the eIAM sender " + n.From + " (Authentication-Results not checked yet)"}}
		}
		if f := n.Forwarder(); su[f] {
			return event.Trust{Trusted: true, Method: "content-only", Sender: f, Reasons: []string{"forwarded by the superuser " + f + " of mailbox " + m.Name}}
		}
		return event.Trust{Kind: "untrusted-forwarder", Sender: n.Forwarder(), Reasons: []string{fmt.Sprintf(
			"a notice forwarded by %+q, who is not a superuser of mailbox %s: possibly forged, not acted on", n.Forwarder(), m.Name)}}
	})
}

func foldAll(as []string) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = strings.ToLower(strings.TrimSpace(a))
	}
	return out
}
