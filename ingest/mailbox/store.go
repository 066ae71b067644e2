package mailbox

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// Checkpoint is how far a folder has been taken in: every mail of
// UIDValidity with a UID up to UID has its mail-received event in
// JetStream (or its dead letter). It lives in the bucket
// pipeline.BucketMailboxCheckpoints under CheckpointKey.
type Checkpoint struct {
	UIDValidity uint32 `json:"uidvalidity"`
	UID         uint32 `json:"uid"`
	// Address and Username say which server and account the UIDs are of:
	// pointing the mailbox elsewhere reads the folder from the start.
	Address  string    `json:"address"`
	Username string    `json:"username"`
	At       time.Time `json:"at"`
}

// CheckpointKey is the key of a mailbox's folder in the checkpoint
// bucket: the mailbox name (already [a-z0-9-]+), a dot, and the folder's
// name in unpadded URL-safe base64, since a folder name may hold any
// character and KV keys only [-/_=.a-zA-Z0-9].
func CheckpointKey(mailbox, folder string) string {
	return mailbox + "." + base64.RawURLEncoding.EncodeToString([]byte(folder))
}

// errLeaseLost says another daemon took over the mailbox.
var errLeaseLost = errors.New("mailbox: another daemon took over the mailbox (its lease or checkpoint changed under this one)")

// checkpoints reads and writes one folder's checkpoint, compare-and-set on
// the revision it read, so that a daemon that lost its lease cannot move
// the checkpoint of the one that took over.
type checkpoints struct {
	kv  jetstream.KeyValue
	key string
	rev uint64
}

func openCheckpoints(ctx context.Context, js jetstream.JetStream, mailbox, folder string) (*checkpoints, error) {
	kv, err := js.KeyValue(ctx, pipeline.BucketMailboxCheckpoints)
	if err != nil {
		return nil, fmt.Errorf("mailbox %s: open the checkpoint bucket %s: %w", mailbox, pipeline.BucketMailboxCheckpoints, err)
	}
	return &checkpoints{kv: kv, key: CheckpointKey(mailbox, folder)}, nil
}

// load reads the checkpoint; the zero Checkpoint when there is none.
func (c *checkpoints) load(ctx context.Context) (Checkpoint, error) {
	e, err := c.kv.Get(ctx, c.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		c.rev = 0
		return Checkpoint{}, nil
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read checkpoint %s: %w", c.key, err)
	}
	var cp Checkpoint
	if err := json.Unmarshal(e.Value(), &cp); err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint %s is not readable (%v): delete the key to read the folder from the start", c.key, err)
	}
	c.rev = e.Revision()
	return cp, nil
}

// save writes cp over the revision last read or written.
func (c *checkpoints) save(ctx context.Context, cp Checkpoint) error {
	data, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	var rev uint64
	if c.rev == 0 {
		rev, err = c.kv.Create(ctx, c.key, data)
	} else {
		rev, err = c.kv.Update(ctx, c.key, data, c.rev)
	}
	if err != nil {
		if isConflict(err) {
			return fmt.Errorf("write checkpoint %s: %w", c.key, errLeaseLost)
		}
		return fmt.Errorf("write checkpoint %s: %w", c.key, err)
	}
	c.rev = rev
	return nil
}

// isConflict reports a compare-and-set failure: the key changed, or
// exists when it should not.
func isConflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) // the latter from R>1 streams
}

// Holder names a daemon that watches a mailbox.
type Holder struct {
	Host string `json:"host"`
	// Dir is the daemon's data directory: two daemons on one host differ
	// in it, and a daemon restarted on the same data recognises its own
	// lease.
	Dir   string    `json:"dir"`
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
}

func (h Holder) String() string { return fmt.Sprintf("%s pid %d (%s)", h.Host, h.PID, h.Dir) }

// ThisProcess returns the Holder of this process with data directory dir.
func ThisProcess(dir string, now time.Time) Holder {
	host, _ := os.Hostname()
	return Holder{Host: host, Dir: dir, PID: os.Getpid(), Since: now.UTC()}
}

// lease is one mailbox's entry in pipeline.BucketMailboxLeases. The
// bucket's TTL removes an entry its holder stopped renewing.
type lease struct {
	kv  jetstream.KeyValue
	key string
	me  Holder
	rev uint64 // of the entry this daemon wrote, 0 when it holds none
}

func openLease(ctx context.Context, js jetstream.JetStream, mailbox string, me Holder) (*lease, error) {
	kv, err := js.KeyValue(ctx, pipeline.BucketMailboxLeases)
	if err != nil {
		return nil, fmt.Errorf("mailbox %s: open the lease bucket %s: %w", mailbox, pipeline.BucketMailboxLeases, err)
	}
	return &lease{kv: kv, key: mailbox, me: me}, nil
}

// acquire takes the lease when nobody holds it, or when its holder is an
// earlier process on this host and data directory that is gone. held is
// false, with the holder, when another daemon has it.
func (l *lease) acquire(ctx context.Context) (held bool, holder Holder, err error) {
	data, err := json.Marshal(l.me)
	if err != nil {
		return false, Holder{}, err
	}
	rev, err := l.kv.Create(ctx, l.key, data)
	if err == nil {
		l.rev = rev
		return true, l.me, nil
	}
	if !isConflict(err) {
		return false, Holder{}, fmt.Errorf("take the lease %s: %w", l.key, err)
	}
	e, err := l.kv.Get(ctx, l.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, Holder{}, nil // expired just now: the next try takes it
	}
	if err != nil {
		return false, Holder{}, fmt.Errorf("read the lease %s: %w", l.key, err)
	}
	if err := json.Unmarshal(e.Value(), &holder); err != nil {
		return false, Holder{}, fmt.Errorf("the lease %s is not readable: %v", l.key, err)
	}
	if holder.Host == l.me.Host && holder.Dir == l.me.Dir && holder.PID != l.me.PID && !processAlive(holder.PID) {
		// This daemon's previous life, killed before it released the
		// lease: take it over without waiting for it to expire.
		rev, err := l.kv.Update(ctx, l.key, data, e.Revision())
		if err == nil {
			l.rev = rev
			return true, l.me, nil
		}
		if !isConflict(err) {
			return false, holder, fmt.Errorf("take over the lease %s of a process gone: %w", l.key, err)
		}
	}
	return false, holder, nil
}

// renew rewrites the entry, which restarts its TTL. errLeaseLost: it is
// no longer this daemon's.
func (l *lease) renew(ctx context.Context) error {
	data, err := json.Marshal(l.me)
	if err != nil {
		return err
	}
	rev, err := l.kv.Update(ctx, l.key, data, l.rev)
	if err != nil {
		if isConflict(err) || errors.Is(err, jetstream.ErrKeyNotFound) {
			l.rev = 0
			return fmt.Errorf("renew the lease %s: %w", l.key, errLeaseLost)
		}
		return fmt.Errorf("renew the lease %s: %w", l.key, err)
	}
	l.rev = rev
	return nil
}

// release deletes the entry if it is still this daemon's, so that a
// standby takes over at once.
func (l *lease) release(ctx context.Context) error {
	if l.rev == 0 {
		return nil
	}
	err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(l.rev))
	l.rev = 0
	if err != nil && !isConflict(err) {
		return fmt.Errorf("release the lease %s: %w", l.key, err)
	}
	return nil
}
