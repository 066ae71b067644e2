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

	"github.com/eiamtriage/eiamtriage/classify"
	"github.com/eiamtriage/eiamtriage/ingest/notice"
)

// Change says what recording a notice did to its case.
type Change string

// The changes Record reports.
const (
	// Created: the notice opened a new case.
	Created Change = "created"
	// Joined: a further notice for the same profile joined the case; the
	// class stayed.
	Joined Change = "joined"
	// Escalated: a further notice joined and raised the case's class
	// (negligible < review < private-email < wrong-person).
	Escalated Change = "escalated"
	// Duplicate: the notice was already part of the case.
	Duplicate Change = "duplicate"
)

// NoticeRef is one notice that joined a case.
type NoticeRef struct {
	MailID string `json:"mail_id"`
	// SignedIn is the notice's "signed in at" row as written.
	SignedIn string `json:"signed_in,omitempty"`
	// ReceivedSeq is the sequence of the notice's mail-received event in
	// the notices stream: the event carries the original mail (or names
	// its object), for a forward byte for byte.
	ReceivedSeq uint64          `json:"received_seq,omitempty"`
	MessageID   string          `json:"message_id,omitempty"`
	Delivery    notice.Delivery `json:"delivery"`
	Forwarder   string          `json:"forwarder,omitempty"`
	Class       classify.Class  `json:"class"`
	Reasons     []string        `json:"reasons"`
	Expected    notice.Person   `json:"expected"`
	Actual      notice.Person   `json:"actual"`
	ReceivedAt  time.Time       `json:"received_at"`
	// Change is what this notice did to the case.
	Change Change `json:"change"`
	// Duplicates counts other mails that carried this same notice (it
	// arrived directly and forwarded, say); DuplicateMails names them.
	Duplicates     int      `json:"duplicates,omitempty"`
	DuplicateMails []string `json:"duplicate_mails,omitempty"`
}

// Case is the record of one profile's mismatch.
type Case struct {
	ID           string               `json:"id"`
	ProfileID    string               `json:"profile_id,omitempty"`
	Class        classify.Class       `json:"class"`
	Rule         int                  `json:"rule"`
	Names        classify.NameVerdict `json:"names,omitempty"`
	Language     string               `json:"language"`
	Application  string               `json:"application,omitempty"`
	Organisation string               `json:"organisation,omitempty"`
	SignedInAt   time.Time            `json:"signed_in_at,omitzero"`
	Expected     notice.Person        `json:"expected"`
	Actual       notice.Person        `json:"actual"`
	Reasons      []string             `json:"reasons"`
	Problems     []string             `json:"problems,omitempty"`
	Notices      []NoticeRef          `json:"notices"`
	Created      time.Time            `json:"created"`
	Updated      time.Time            `json:"updated"`
}

// Changed is the payload of the case events (event.TypeCaseClassified for
// created and escalated, event.TypeCaseJoined for joined), published on
// eiam.case.<class> whenever a notice opens, joins or escalates a case.
// Case is the record as stored after the change; MailID names the notice
// that caused it. The event id is EventID(case, mail): the stream drops a
// re-publication within its duplicate window, and consumers key their side
// effects by it.
type Changed struct {
	Change     Change    `json:"change"`
	MailID     string    `json:"mail_id"`
	ReceivedAt time.Time `json:"received_at"`
	Case       *Case     `json:"case"`
}

// EventID is the id of the case event caused by the mail mailID.
func EventID(caseID, mailID string) string { return "case-" + caseID + "-" + mailID }

// Severity orders the classes; a case takes the most severe class of its
// notices.
func Severity(c classify.Class) int {
	switch c {
	case classify.WrongPerson:
		return 4
	case classify.PrivateEmail:
		return 3
	case classify.Review:
		return 2
	case classify.Negligible:
		return 1
	}
	return 0
}

// KeyFor returns the case key of a notice: derived from the profile id, or
// from the mail when the notice has none (an unreadable notice is a case of
// its own). Keys hold only characters JetStream allows.
func KeyFor(n *notice.Notice, mailID string) string {
	if id := strings.TrimSpace(n.ProfileID); id != "" {
		return "p." + keySafe(strings.ToLower(id))
	}
	return "m." + mailID
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
func (s *Store) Get(ctx context.Context, id string) (*Case, uint64, error) {
	e, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("cases: read case %s: %w", id, err)
	}
	var c Case
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return nil, 0, fmt.Errorf("cases: case %s is not a valid record (revision %d): %w", id, e.Revision(), err)
	}
	return &c, e.Revision(), nil
}

// List returns every case, oldest first.
func (s *Store) List(ctx context.Context) ([]*Case, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("cases: list cases: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	var out []*Case
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

// Incoming is one classified notice to record.
type Incoming struct {
	MailID      string
	ReceivedSeq uint64
	ReceivedAt  time.Time
	Notice      *notice.Notice
	Verdict     classify.Verdict
}

// Record adds the notice to its case, creating the case when it is the
// first, and returns the case as stored and what changed. It is
// idempotent: recording the same mail (or the same notice Message-ID) again
// changes nothing but a duplicate counter and reports Duplicate.
func (s *Store) Record(ctx context.Context, in Incoming) (*Case, Change, error) {
	key := KeyFor(in.Notice, in.MailID)
	ref := NoticeRef{
		MailID: in.MailID, ReceivedSeq: in.ReceivedSeq, MessageID: in.Notice.MessageID, SignedIn: in.Notice.SignedInRaw, Delivery: in.Notice.Delivery,
		Forwarder: in.Notice.Forwarder, Class: in.Verdict.Class, Reasons: in.Verdict.Reasons,
		Expected: in.Notice.Expected, Actual: in.Notice.Actual, ReceivedAt: in.ReceivedAt,
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

// Ref returns the notice of the case recorded from the mail mailID, or nil
// when that mail only duplicated a notice recorded from another mail.
func (c *Case) Ref(mailID string) *NoticeRef {
	for i := range c.Notices {
		if c.Notices[i].MailID == mailID {
			return &c.Notices[i]
		}
	}
	return nil
}

func newCase(key string, in Incoming, ref NoticeRef, now time.Time) *Case {
	n, v := in.Notice, in.Verdict
	return &Case{
		ID: key, ProfileID: n.ProfileID, Class: v.Class, Rule: v.Rule, Names: v.Names,
		Language: n.Language, Application: n.Application, Organisation: n.Organisation,
		SignedInAt: n.SignedInAt, Expected: n.Expected, Actual: n.Actual,
		Reasons: v.Reasons, Problems: n.Problems, Notices: []NoticeRef{ref},
		Created: now, Updated: now,
	}
}

// join adds ref to c unless it is already there.
func join(c *Case, in Incoming, ref NoticeRef, now time.Time) (Change, bool) {
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
	if Severity(in.Verdict.Class) > Severity(c.Class) {
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
func sameNotice(a, b *NoticeRef) bool {
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

func sortCases(cs []*Case) {
	sort.SliceStable(cs, func(i, j int) bool {
		if !cs[i].Created.Equal(cs[j].Created) {
			return cs[i].Created.Before(cs[j].Created)
		}
		return cs[i].ID < cs[j].ID
	})
}
