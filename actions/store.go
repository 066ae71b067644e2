package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// store is the actions bucket (pipeline.BucketActions): JSON records under
// keys of these families, each token [-_a-zA-Z0-9]:
//
//	effect.<mailbox>.<case>.<cause>.<kind>   an Effect
//	task.<task id>                           an event.Task
//	cap.<mailbox>.<cap>.<YYYYMMDDHH>         a capWindow (UTC hour)
//	hold.<mailbox>.<cap>                     a hold
//	decision.<case>                          a Decision
//	summary.<mailbox>.<slot label>           a period
//	summarystate.<mailbox>                   a summaryState
type store struct{ kv jetstream.KeyValue }

func openStore(ctx context.Context, js jetstream.JetStream) (store, error) {
	kv, err := js.KeyValue(ctx, pipeline.BucketActions)
	if err != nil {
		return store{}, fmt.Errorf("actions: open the bucket %s: %w (pipeline.EnsureActions creates it; has `eiamtriage serve` run with this configuration?)", pipeline.BucketActions, err)
	}
	return store{kv: kv}, nil
}

// errNotFound: no record under the key.
var errNotFound = errors.New("actions: no such record")

// errConflict: the record changed under an update, or exists on a create.
var errConflict = errors.New("actions: the record changed meanwhile")

// get reads key into v and returns its revision.
func (s store) get(ctx context.Context, key string, v any) (uint64, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, fmt.Errorf("%w: %s", errNotFound, key)
	}
	if err != nil {
		return 0, fmt.Errorf("actions: read %s: %w", key, err)
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return 0, fmt.Errorf("actions: record %s (revision %d) does not decode: %w", key, e.Revision(), err)
	}
	return e.Revision(), nil
}

// create writes v under key unless the key exists (errConflict then).
func (s store) create(ctx context.Context, key string, v any) (uint64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("actions: encode %s: %w", key, err)
	}
	rev, err := s.kv.Create(ctx, key, b)
	if err == nil {
		return rev, nil
	}
	if isConflict(err) {
		return 0, fmt.Errorf("%w: %s exists", errConflict, key)
	}
	// R>1 buckets answer a taken key with a code ErrKeyExists does not
	// match: look.
	if _, gerr := s.kv.Get(ctx, key); gerr == nil {
		return 0, fmt.Errorf("%w: %s exists", errConflict, key)
	}
	return 0, fmt.Errorf("actions: create %s: %w", key, err)
}

// update writes v over revision rev (errConflict when it changed).
func (s store) update(ctx context.Context, key string, v any, rev uint64) (uint64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("actions: encode %s: %w", key, err)
	}
	nrev, err := s.kv.Update(ctx, key, b, rev)
	if err == nil {
		return nrev, nil
	}
	if isConflict(err) {
		return 0, fmt.Errorf("%w: %s", errConflict, key)
	}
	return 0, fmt.Errorf("actions: update %s at revision %d: %w", key, rev, err)
}

// delete removes key (absent is fine).
func (s store) delete(ctx context.Context, key string) error {
	if err := s.kv.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("actions: delete %s: %w", key, err)
	}
	return nil
}

// keys lists the keys matching filter (a subject filter such as
// "effect.be.>").
func (s store) keys(ctx context.Context, filter string) ([]string, error) {
	l, err := s.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("actions: list %s: %w", filter, err)
	}
	var out []string
	for k := range l.Keys() {
		out = append(out, k)
	}
	return out, nil
}

func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return true
	}
	return errors.Is(err, jetstream.ErrKeyExists) || strings.Contains(err.Error(), "wrong last sequence")
}
