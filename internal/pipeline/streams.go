package pipeline

import (
	"context"
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
	// MaxAge bounds how long stream messages are kept; 0 keeps them until
	// deleted (the streams are eiamtriage's audit trail).
	MaxAge time.Duration
	// MailBucketMaxBytes bounds the total size of the mail object store;
	// 0 means no bound beyond the server's store limit.
	MailBucketMaxBytes int64
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
			MaxAge:      cfg.MaxAge,
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
	if _, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketCases,
		Description: "eiamtriage: case state",
		History:     CaseHistory,
		Storage:     jetstream.FileStorage,
		Replicas:    r,
	}); err != nil {
		return fmt.Errorf("pipeline: create or update key-value bucket %s (%d replicas): %w", BucketCases, r, err)
	}
	if _, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      BucketMail,
		Description: "eiamtriage: original mails, byte for byte",
		Storage:     jetstream.FileStorage,
		Replicas:    r,
		MaxBytes:    cfg.MailBucketMaxBytes,
	}); err != nil {
		return fmt.Errorf("pipeline: create or update object store %s (%d replicas): %w", BucketMail, r, err)
	}
	// nats.go creates buckets with direct get allowed, so that any replica
	// answers reads: in a cluster a replica that has not applied a write
	// yet then says a case or a mail does not exist right after it was
	// written (a mail dead-lettered as "not in the object store", seen in
	// the three-node test). Reads go to the stream leader instead.
	for _, name := range []string{"KV_" + BucketCases, "OBJ_" + BucketMail} {
		if err := leaderReads(ctx, js, name); err != nil {
			return err
		}
	}
	return nil
}

// leaderReads turns off direct get on the stream name.
func leaderReads(ctx context.Context, js jetstream.JetStream, name string) error {
	st, err := js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("pipeline: stream %s: %w", name, err)
	}
	cfg := st.CachedInfo().Config
	if !cfg.AllowDirect {
		return nil
	}
	cfg.AllowDirect = false
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("pipeline: stream %s: turn off direct get: %w", name, err)
	}
	return nil
}
