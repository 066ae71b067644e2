package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// The outbox's storage (package actions/outbox): the ledger of every mail
// the service sends, one key per mail id, and the rendered mails, byte for
// byte. Its delivery work travels on eiam.action.outbox in StreamTasks.
const (
	// BucketOutbox is the key-value bucket of the outbox ledger.
	BucketOutbox = "eiam_outbox"
	// BucketOutboxMail is the object store of the rendered mails.
	BucketOutboxMail = "eiam_outbox_mail"
	// OutboxHistory is how many revisions per mail the ledger keeps
	// (queued, sending, sent and the like).
	OutboxHistory = 10
)

// EnsureOutbox creates the outbox's ledger bucket and mail object store,
// or gives existing ones cfg's replicas and leader-only reads (see
// EnsureStreams, which creates the stream the delivery work travels in).
// It is idempotent and safe to run at every start.
func EnsureOutbox(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) error {
	if cfg.Replicas < 0 || cfg.Replicas > 5 {
		return fmt.Errorf("pipeline: %d replicas: use 1 for a single server or 3 for a three-node cluster", cfg.Replicas)
	}
	r := max(cfg.Replicas, 1)
	exists, err := updateBucket(ctx, js, "KV_"+BucketOutbox, r)
	if err != nil {
		return err
	}
	if !exists {
		if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      BucketOutbox,
			Description: "eiamtriage: the outbox ledger, one entry per mail",
			History:     OutboxHistory,
			Storage:     jetstream.FileStorage,
			Replicas:    r,
		}); err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
			return fmt.Errorf("pipeline: create key-value bucket %s (%d replicas): %w", BucketOutbox, r, err)
		}
		if _, err := updateBucket(ctx, js, "KV_"+BucketOutbox, r); err != nil {
			return err
		}
	}
	exists, err = updateBucket(ctx, js, "OBJ_"+BucketOutboxMail, r)
	if err != nil {
		return err
	}
	if !exists {
		if _, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      BucketOutboxMail,
			Description: "eiamtriage: every mail the outbox sends, as rendered",
			Storage:     jetstream.FileStorage,
			Replicas:    r,
		}); err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
			return fmt.Errorf("pipeline: create object store %s (%d replicas): %w", BucketOutboxMail, r, err)
		}
		if _, err := updateBucket(ctx, js, "OBJ_"+BucketOutboxMail, r); err != nil {
			return err
		}
	}
	return nil
}
