package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/eiamtriage/eiamtriage/ingest/notice"
	"github.com/eiamtriage/eiamtriage/ingest/trust"
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

// ErrTemporary is returned by Read when sender authentication failed for a
// reason that may pass (DNS): take the mail in again later.
var ErrTemporary = errors.New("ingest: sender authentication failed temporarily")

// ErrUnknownMailbox is returned by Read for a mailbox the reader was not
// given.
var ErrUnknownMailbox = errors.New("ingest: unknown mailbox")

// Read parses raw and, when it is a notice, authenticates its sender for
// the mailbox. It fails only for an unknown mailbox, when ctx ends, or with
// ErrTemporary; a mail that cannot be read is a Reading of kind
// unreadable-mail.
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
	if t.Temporary {
		return event.Reading{}, fmt.Errorf("%w: mailbox %s: %s", ErrTemporary, mailbox, strings.Join(t.Reasons, "; "))
	}
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
// its wording, and each mailbox's sender authentication (package
// ingest/trust, by PolicyFor).
func ReaderFor(cfg *config.Config) (*Reader, error) {
	var own []string
	if a := cfg.SMTP.FromAddress(); a != "" {
		own = append(own, a) // the service's own mail coming back is no notice
	}
	parser, err := notice.NewParser(cfg.Wording, &notice.Options{OwnAddresses: own})
	if err != nil {
		return nil, err
	}
	mbs := make([]Mailbox, len(cfg.Mailboxes))
	for i := range cfg.Mailboxes {
		m := &cfg.Mailboxes[i]
		p := PolicyFor(cfg, m)
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("ingest: mailbox %s: %w", m.Name, err)
		}
		mbs[i] = Mailbox{Name: m.Name, Superusers: foldAll(m.Superusers), Trust: policyChecker{p}}
	}
	return NewReader(parser, mbs)
}

// PolicyFor returns the sender authentication policy of the mailbox m.
func PolicyFor(cfg *config.Config, m *config.Mailbox) *trust.Policy {
	return &trust.Policy{
		Mailbox:      m.Name,
		Off:          m.AuthenticationIsOff(),
		AuthservIDs:  slices.Clone(m.AuthservID),
		Microsoft365: m.Microsoft365,
		Senders:      slices.Clone(cfg.Wording.TrustedSenders),
		Superusers:   slices.Clone(m.Superusers),
		VerifyDKIM:   m.VerifyDKIM,
	}
}

// policyChecker checks a mail's sender by a trust policy.
type policyChecker struct{ p *trust.Policy }

func (c policyChecker) Check(ctx context.Context, raw []byte, n *event.Notice) event.Trust {
	return trust.Check(ctx, c.p, raw, trust.Chain{NoticeFrom: n.From, Forwarders: n.Forwarders})
}

func foldAll(as []string) []string {
	out := make([]string, len(as))
	for i, a := range as {
		f, ok := trust.Address(a)
		if !ok {
			f = a // config validation refuses such an address
		}
		out[i] = f
	}
	return out
}
