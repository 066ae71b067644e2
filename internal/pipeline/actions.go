package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// The actions stage's storage (package actions): one key-value bucket that
// records every effect of a case (keyed by the case event and the kind of
// effect), the tasks, the per-hour counts of capped actions and their
// holds, the decisions of people, and the summaries sent per period. Its
// task events travel on eiam.task.> in StreamTasks.
const (
	// BucketActions is the key-value bucket of the actions stage.
	BucketActions = "eiam_actions"
	// ActionsHistory is how many revisions per key the bucket keeps.
	ActionsHistory = 5
)

// EnsureActions creates the actions bucket, or gives an existing one cfg's
// replicas and leader-only reads (see EnsureStreams). It is idempotent and
// safe to run at every start.
func EnsureActions(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) error {
	if cfg.Replicas < 0 || cfg.Replicas > 5 {
		return fmt.Errorf("pipeline: %d replicas: use 1 for a single server or 3 for a three-node cluster", cfg.Replicas)
	}
	r := max(cfg.Replicas, 1)
	exists, err := updateBucket(ctx, js, "KV_"+BucketActions, r)
	if err != nil || exists {
		return err
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketActions,
		Description: "eiamtriage: effects, tasks, caps, decisions and summaries of the actions stage",
		History:     ActionsHistory,
		Storage:     jetstream.FileStorage,
		Replicas:    r,
	}); err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
		return fmt.Errorf("pipeline: create key-value bucket %s (%d replicas): %w", BucketActions, r, err)
	}
	_, err = updateBucket(ctx, js, "KV_"+BucketActions, r)
	return err
}
