package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/nats-io/nats.go/jetstream"
)

// Names of the streams and buckets EnsureStreams creates.
const (
	StreamNotices = "EIAM_NOTICES" // eiam.notice.>
	StreamCases   = "EIAM_CASES"   // eiam.case.>
	StreamTasks   = "EIAM_TASKS"   // eiam.task.>, eiam.action.>
	StreamDead    = "EIAM_DEAD"    // eiam.dead.>

	// BucketCases is the key-value bucket of case state.
	BucketCases = "eiam_cases"
	// BucketMail is the object store of original mails, byte for byte.
	BucketMail = "eiam_mail"
)

// DuplicateWindow is how long the streams remember event IDs
// (Nats-Msg-Id) to drop re-published duplicates.
const DuplicateWindow = 10 * time.Minute

// CaseHistory is how many revisions per key the case bucket keeps.
const CaseHistory = 5

// StreamConfig parametrises EnsureStreams. The zero value suits a single
// embedded server.
type StreamConfig struct {
	// Replicas of every stream and bucket: 1 (default) for an embedded
	// server, 3 in a three-node cluster. At most 5.
	Replicas int
}

// Streams returns the stream configurations EnsureStreams applies: file
// storage, limits retention (several consumers may read a stream, so not
// work-queue), a DuplicateWindow de-duplication window.
func Streams(cfg StreamConfig) []jetstream.StreamConfig {
	r := max(cfg.Replicas, 1)
	mk := func(name, desc string, subjects ...string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    subjects,
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    r,
			Duplicates:  DuplicateWindow,
			Discard:     jetstream.DiscardOld,
		}
	}
	return []jetstream.StreamConfig{
		mk(StreamNotices, "eiamtriage: mails received or ignored", event.SubjectNotices),
		mk(StreamCases, "eiamtriage: classified cases", event.SubjectCases),
		mk(StreamTasks, "eiamtriage: tasks and actions", event.SubjectTasks, event.SubjectActions),
		mk(StreamDead, "eiamtriage: dead letters of every stage", event.SubjectDead),
	}
}

// EnsureStreams creates the streams (Streams), the case bucket and the mail
// object store, or updates them to cfg when they exist. It is idempotent
// and safe to run at every start. Changing the storage type or lowering
// limits of an existing stream may be refused by the server: the error says
// which stream.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) error {
	if cfg.Replicas < 0 || cfg.Replicas > 5 {
		return fmt.Errorf("pipeline: %d replicas: use 1 for a single server or 3 for a three-node cluster", cfg.Replicas)
	}
	r := max(cfg.Replicas, 1)
	for _, sc := range Streams(cfg) {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("pipeline: create or update stream %s (subjects %v, %d replicas): %w", sc.Name, sc.Subjects, sc.Replicas, err)
		}
	}
	// nats.go creates buckets with direct get allowed, so that any replica
	// answers reads: in a cluster a replica that has not applied a write
	// yet then says a case or a mail does not exist right after it was
	// written (a mail dead-lettered as "not in the object store", seen in
	// the three-node test). Reads must go to the stream leader. A bucket
	// that exists is therefore updated as a stream, never through nats.go's
	// CreateOrUpdate, which would turn direct get on again for a moment,
	// long enough for a handle bound then to read from replicas for good.
	kvExists, err := updateBucket(ctx, js, "KV_"+BucketCases, r)
	if err != nil {
		return err
	}
	if !kvExists {
		if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      BucketCases,
			Description: "eiamtriage: case state",
			History:     CaseHistory,
			Storage:     jetstream.FileStorage,
			Replicas:    r,
		}); err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
			return fmt.Errorf("pipeline: create key-value bucket %s (%d replicas): %w", BucketCases, r, err)
		}
		if _, err := updateBucket(ctx, js, "KV_"+BucketCases, r); err != nil {
			return err
		}
	}
	objExists, err := updateBucket(ctx, js, "OBJ_"+BucketMail, r)
	if err != nil {
		return err
	}
	if !objExists {
		if _, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      BucketMail,
			Description: "eiamtriage: mails too large to travel in their event, byte for byte",
			Storage:     jetstream.FileStorage,
			Replicas:    r,
		}); err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
			return fmt.Errorf("pipeline: create object store %s (%d replicas): %w", BucketMail, r, err)
		}
		if _, err := updateBucket(ctx, js, "OBJ_"+BucketMail, r); err != nil {
			return err
		}
	}
	return ensureMailboxBuckets(ctx, js, r)
}

// The buckets of the mailbox watchers (package ingest/mailbox).
const (
	// BucketMailboxCheckpoints holds per mailbox and folder the
	// UIDVALIDITY and the last UID taken in.
	BucketMailboxCheckpoints = "eiam_mailbox_checkpoints"
	// BucketMailboxLeases holds per mailbox which daemon watches it. An
	// entry lives MailboxLeaseTTL after its last renewal.
	BucketMailboxLeases = "eiam_mailbox_leases"
)

// MailboxLeaseTTL is how long a mailbox stays with a daemon that stopped
// renewing its lease (killed, cut off from NATS) before another takes it.
const MailboxLeaseTTL = 15 * time.Second

// ensureMailboxBuckets creates the watchers' buckets or gives them
// replicas and leader-only reads, as EnsureStreams does for the others.
func ensureMailboxBuckets(ctx context.Context, js jetstream.JetStream, replicas int) error {
	for _, kc := range []jetstream.KeyValueConfig{
		{Bucket: BucketMailboxCheckpoints, Description: "eiamtriage: the last UID taken in, per mailbox and folder", History: 5},
		{Bucket: BucketMailboxLeases, Description: "eiamtriage: which daemon watches each mailbox", History: 1, TTL: MailboxLeaseTTL},
	} {
		kc.Storage, kc.Replicas = jetstream.FileStorage, replicas
		exists, err := updateBucket(ctx, js, "KV_"+kc.Bucket, replicas)
		if err != nil || exists {
			if err != nil {
				return err
			}
			continue
		}
		if _, err := js.CreateKeyValue(ctx, kc); err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
			return fmt.Errorf("pipeline: create key-value bucket %s (%d replicas): %w", kc.Bucket, replicas, err)
		}
		if _, err := updateBucket(ctx, js, "KV_"+kc.Bucket, replicas); err != nil {
			return err
		}
	}
	return nil
}

// updateBucket gives the stream under a bucket its replicas and leader-only
// reads (no direct get). exists is false when there is no such stream yet.
func updateBucket(ctx context.Context, js jetstream.JetStream, name string, replicas int) (exists bool, err error) {
	st, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pipeline: stream %s: %w", name, err)
	}
	cfg := st.CachedInfo().Config
	if !cfg.AllowDirect && cfg.Replicas == replicas {
		return true, nil
	}
	cfg.AllowDirect, cfg.Replicas = false, replicas
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return true, fmt.Errorf("pipeline: stream %s: set %d replicas and leader-only reads: %w", name, replicas, err)
	}
	return true, nil
}
