// Package ingest takes mail into the pipeline. A Reader reads each raw mail
// (the notice parser of ingest/notice, then sender authentication), and the
// Intake announces it with a mail-received event that carries the mail
// byte for byte with its reading (a mail over event.InlineMax goes to the
// JetStream object store and the event names it). The stream keeps the
// events, and with them the originals. The mailbox watcher and the
// `publish` command share both, so a saved .eml goes exactly the way a mail
// from the mailbox goes.
package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// ErrTooLarge is returned by Submit for a mail over the size limit.
var ErrTooLarge = errors.New("ingest: mail too large")

// Intake reads mails and publishes their mail-received events.
type Intake struct {
	js      jetstream.JetStream
	store   jetstream.ObjectStore
	reader  *Reader
	maxSize int64
	now     func() time.Time
	source  string
}

// NewIntake returns an intake that reads with reader and stores large
// mails in the pipeline's mail object store. maxSize bounds one mail (0: no
// bound); now is the clock (nil: time.Now). The streams and the bucket must
// exist (pipeline.EnsureStreams).
func NewIntake(ctx context.Context, js jetstream.JetStream, reader *Reader, maxSize int64, now func() time.Time) (*Intake, error) {
	if reader == nil {
		return nil, errors.New("ingest: an intake needs a reader")
	}
	store, err := js.ObjectStore(ctx, pipeline.BucketMail)
	if err != nil {
		return nil, fmt.Errorf("ingest: open the mail object store %s: %w (has `eiamtriage serve` created the streams?)", pipeline.BucketMail, err)
	}
	if now == nil {
		now = time.Now
	}
	return &Intake{js: js, store: store, reader: reader, maxSize: maxSize, now: now, source: "eiamtriage/ingest"}, nil
}

// Submit reads raw as a mail of the mailbox and publishes it with its
// reading in its mail-received event on eiam.notice.received (storing it in
// the object store first when it is large). It is idempotent: an object is
// named by the mail's hash and the event's id (its Nats-Msg-Id) is derived
// from the mailbox and the hash, so a mail submitted twice within the
// streams' duplicate window is one event, and a later second submission is
// recognised by the classify stage as a notice that already joined its
// case. source says where the mail came from ("publish:<path>",
// "imap:<mailbox>/<folder>/<uidvalidity>/<uid>").
func (in *Intake) Submit(ctx context.Context, raw []byte, mailbox, source string) (Receipt, error) {
	if len(raw) == 0 {
		return Receipt{}, fmt.Errorf("ingest: %s: empty mail, nothing to submit", source)
	}
	if in.maxSize > 0 && int64(len(raw)) > in.maxSize {
		return Receipt{}, fmt.Errorf("%w: %s is %d bytes, the limit (pipeline.max_mail_size) is %d", ErrTooLarge, source, len(raw), in.maxSize)
	}
	reading, err := in.reader.Read(ctx, raw, mailbox)
	if err != nil {
		return Receipt{}, fmt.Errorf("ingest: %s: %w", source, err)
	}
	id := event.MailID(raw)
	mr := event.MailReceived{MailID: id, Mailbox: mailbox, Size: int64(len(raw)), Source: source, ReceivedAt: in.now().UTC(), Reading: reading}
	if len(raw) <= event.InlineMax {
		mr.Raw = raw
	} else {
		mr.Object = id
		if info, err := in.store.GetInfo(ctx, id); err != nil || info.Size != uint64(len(raw)) {
			if _, err := in.store.Put(ctx, jetstream.ObjectMeta{Name: id, Description: source}, bytes.NewReader(raw)); err != nil {
				return Receipt{MailReceived: mr}, fmt.Errorf("ingest: store mail %s (%s) in %s: %w", id, source, pipeline.BucketMail, err)
			}
		}
	}
	ev, err := event.New(event.TypeMailReceived, in.source, MailEventID(mailbox, id), mr.ReceivedAt, mr)
	if err != nil {
		return Receipt{MailReceived: mr}, fmt.Errorf("ingest: mail %s: %w", id, err)
	}
	stored, err := pipeline.PublishNew(ctx, in.js, event.SubjectNoticeReceived, ev)
	if err != nil {
		return Receipt{MailReceived: mr}, fmt.Errorf("ingest: announce mail %s (%s): %w", id, source, err)
	}
	return Receipt{MailReceived: mr, Duplicate: !stored}, nil
}

// MailEventID is the id of the mail-received event of the mail mailID taken
// in from mailbox.
func MailEventID(mailbox, mailID string) string { return "mail-" + mailbox + "-" + mailID }

// Receipt says what Submit did with a mail.
type Receipt struct {
	event.MailReceived
	// Duplicate is true when the same mail was taken in shortly before
	// (within the streams' duplicate window): nothing new was announced.
	Duplicate bool
}
