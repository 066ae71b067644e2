// Package cases keeps the case records: one case per eIAM profile, in a
// JetStream key-value bucket. A notice joins the case of its profile; the
// same notice twice (the same mail, or the same notice arriving directly
// and forwarded, see sameNotice) is recorded once.
//
// The store is safe for several instances of the service at once: records
// are created with Create (fails if the key exists) and changed with Update
// at the revision read (fails if another instance changed it meanwhile),
// and both are retried on conflict.
package cases

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eiamtriage/eiamtriage/internal/event"
)

// The changes Record reports (aliases of the event vocabulary's, for
// callers of this package).
const (
	Created   = event.ChangeCreated
	Joined    = event.ChangeJoined
	Escalated = event.ChangeEscalated
	Duplicate = event.ChangeDuplicate
)

// KeyFor returns the case key of a notice: derived from the profile id, or
// from the mail when the notice has none (an unreadable notice is a case of
// its own). Keys hold only characters JetStream allows.
func KeyFor(n *event.Notice, mailID string) string {
	if k := KeyForProfile(n.ProfileID); k != "" {
		return k
	}
	return "m." + mailID
}

// KeyForProfile returns the case key of an eIAM profile id, "" for a
// blank one.
func KeyForProfile(profileID string) string {
	if id := strings.TrimSpace(profileID); id != "" {
		return "p." + keySafe(strings.ToLower(id))
	}
	return ""
}

func keySafe(s string) string {
	ok := len(s) <= 200
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "h" + hex.EncodeToString(sum[:16])
}

// Store reads and writes case records.
type Store struct {
	kv  jetstream.KeyValue
	now func() time.Time
}

// NewStore returns a store on the bucket kv. now is the clock (nil: time.Now).
func NewStore(kv jetstream.KeyValue, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{kv: kv, now: now}
}

// ErrNotFound is returned by Get for an unknown case.
var ErrNotFound = errors.New("cases: no such case")

// Get returns the case with the key id.
func (s *Store) Get(ctx context.Context, id string) (*event.Case, uint64, error) {
	e, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("cases: read case %s: %w", id, err)
	}
	var c event.Case
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return nil, 0, fmt.Errorf("cases: case %s is not a valid record (revision %d): %w", id, e.Revision(), err)
	}
	return &c, e.Revision(), nil
}

// List returns every case, oldest first.
func (s *Store) List(ctx context.Context) ([]*event.Case, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("cases: list cases: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	var out []*event.Case
	for _, k := range keys {
		c, _, err := s.Get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	sortCases(out)
	return out, nil
}

// Incoming is one classified, trusted notice to record.
type Incoming struct {
	MailID      string
	Mailbox     string
	ReceivedSeq uint64
	ReceivedAt  time.Time
	Notice      *event.Notice
	Trust       event.Trust
	// AddressedTo is the superuser of the mailbox the notice was sent to,
	// "" when it names none of them.
	AddressedTo string
	Verdict     Verdict
}

// Verdict is what the classifier said of the notice.
type Verdict struct {
	Class   event.Class
	Rule    int
	Names   string
	Reasons []string
}

// Record adds the notice to its case, creating the case when it is the
// first, and returns the case as stored and what changed. It is
// idempotent: recording the same mail (or the same notice Message-ID) again
// changes nothing but a duplicate counter and reports Duplicate.
func (s *Store) Record(ctx context.Context, in Incoming) (*event.Case, event.Change, error) {
	key := KeyFor(in.Notice, in.MailID)
	n := in.Notice
	ref := event.NoticeRef{
		MailID: in.MailID, Mailbox: in.Mailbox, ReceivedSeq: in.ReceivedSeq, MessageID: n.MessageID, SignedIn: n.SignedInRaw,
		Delivery: n.Delivery, Part: n.Part, AddressedTo: in.AddressedTo, Forwarders: n.Forwarders, Trust: in.Trust,
		Class: in.Verdict.Class, Rule: in.Verdict.Rule, Reasons: in.Verdict.Reasons,
		Expected: n.Expected, Actual: n.Actual, ReceivedAt: in.ReceivedAt,
	}
	// Most notices open a case: try to create it first, and read the
	// existing case only when there is one.
	created := ref
	created.Change = Created
	fresh := newCase(key, in, created, s.now())
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, "", fmt.Errorf("cases: record mail %s in case %s: %w", in.MailID, key, err)
		}
		if _, err := s.kv.Create(ctx, key, mustJSON(fresh)); err == nil {
			return fresh, Created, nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, "", fmt.Errorf("cases: create case %s: %w", key, err)
		}
		c, rev, err := s.Get(ctx, key)
		if errors.Is(err, ErrNotFound) && attempt < 20 {
			continue // deleted meanwhile: create it again
		}
		if err != nil {
			return nil, "", err
		}
		change, modified := join(c, in, ref, s.now())
		if !modified {
			return c, change, nil // nothing to write
		}
		if _, err := s.kv.Update(ctx, key, mustJSON(c), rev); err != nil {
			if isConflict(err) && attempt < 20 {
				continue
			}
			return nil, "", fmt.Errorf("cases: update case %s at revision %d: %w", key, rev, err)
		}
		return c, change, nil
	}
}

func newCase(key string, in Incoming, ref event.NoticeRef, now time.Time) *event.Case {
	n, v := in.Notice, in.Verdict
	return &event.Case{
		ID: key, ProfileID: n.ProfileID, Mailbox: in.Mailbox, Class: v.Class, Rule: v.Rule, Names: v.Names,
		Language: n.Language, Application: n.Application, Organisation: n.Organisation,
		SignedInAt: n.SignedInAt, Expected: n.Expected, Actual: n.Actual,
		Reasons: v.Reasons, Problems: n.Problems, Notices: []event.NoticeRef{ref},
		Created: now, Updated: now,
	}
}

// join adds ref to c unless it is already there.
func join(c *event.Case, in Incoming, ref event.NoticeRef, now time.Time) (event.Change, bool) {
	for i := range c.Notices {
		r := &c.Notices[i]
		if r.MailID == ref.MailID {
			return Duplicate, false
		}
		if sameNotice(r, &ref) {
			if slices.Contains(r.DuplicateMails, ref.MailID) {
				return Duplicate, false
			}
			r.DuplicateMails = append(r.DuplicateMails, ref.MailID)
			r.Duplicates = len(r.DuplicateMails)
			c.Updated = now
			return Duplicate, true
		}
	}
	c.Updated = now
	if in.Verdict.Class.Severity() > c.Class.Severity() {
		ref.Change = Escalated
		c.Notices = append(c.Notices, ref)
		v, n := in.Verdict, in.Notice
		c.Class, c.Rule, c.Names, c.Reasons = v.Class, v.Rule, v.Names, v.Reasons
		c.Expected, c.Actual, c.Problems = n.Expected, n.Actual, n.Problems
		if n.Language != "" {
			c.Language = n.Language
		}
		return Escalated, true
	}
	ref.Change = Joined
	c.Notices = append(c.Notices, ref)
	return Joined, true
}

// sameNotice reports whether b is the notice a in another mail: delivered
// directly and forwarded, say. The compared values must be equal, and the
// Message-IDs when both mails carry the notice's own (an inline forward
// does not: then the signed-in time, which eIAM writes to the minute, must
// be equal and known). A different notice that reuses a Message-ID joins.
func sameNotice(a, b *event.NoticeRef) bool {
	if a.Expected != b.Expected || a.Actual != b.Actual {
		return false
	}
	if a.MessageID != "" && b.MessageID != "" {
		return a.MessageID == b.MessageID
	}
	return a.SignedIn != "" && a.SignedIn == b.SignedIn
}

func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return true
	}
	return errors.Is(err, jetstream.ErrKeyExists) || strings.Contains(err.Error(), "wrong last sequence")
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("cases: marshal: %v", err)) // only plain data: cannot fail
	}
	return b
}

func sortCases(cs []*event.Case) {
	sort.SliceStable(cs, func(i, j int) bool {
		if !cs[i].Created.Equal(cs[j].Created) {
			return cs[i].Created.Before(cs[j].Created)
		}
		return cs[i].ID < cs[j].ID
	})
}
