package actions

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eiamtriage/eiamtriage/internal/cases"
	"github.com/eiamtriage/eiamtriage/internal/event"
)

// Decision is a person's decision on a review case.
type Decision struct {
	Case     string      `json:"case"`
	Mailbox  string      `json:"mailbox"`
	Class    event.Class `json:"class"`
	Previous event.Class `json:"previous"`
	By       string      `json:"by"`
	Why      string      `json:"why"`
	At       time.Time   `json:"at"`
}

// ErrNotReview and ErrDecided are Decide's errors for a case that is not
// for review, and for one decided otherwise before.
var (
	ErrNotReview = errors.New("actions: the case is not for review")
	ErrDecided   = errors.New("actions: the case is decided already")
)

func decisionKey(caseID string) string { return "decision." + caseID }

// Decide records a person's decision that the review case id (its case id
// or the eIAM profile id) is of class, and runs that class's actions,
// each once. Deciding the same again runs what is unfinished; deciding
// otherwise is ErrDecided.
func (s *Stage) Decide(ctx context.Context, id string, class event.Class, by, why string) (Decision, *event.Case, error) {
	by, why = strings.TrimSpace(by), strings.TrimSpace(why)
	if by == "" || why == "" {
		return Decision{}, nil, errors.New("actions: a decision needs who decided (--by NAME) and why (--why TEXT)")
	}
	if class.Severity() == 0 || class == event.ClassReview {
		return Decision{}, nil, fmt.Errorf("actions: decide %q: use negligible, private-email or wrong-person", class)
	}
	c, err := s.findCase(ctx, id)
	if err != nil {
		return Decision{}, nil, err
	}
	if c.Class != event.ClassReview {
		return Decision{}, c, fmt.Errorf("%w: case %s is %s; its actions ran when it was classified", ErrNotReview, c.ID, c.Class)
	}
	mb, ok := s.mailboxes[c.Mailbox]
	if !ok {
		return Decision{}, c, fmt.Errorf("actions: case %s is of mailbox %q, which is not configured", c.ID, c.Mailbox)
	}
	d := Decision{Case: c.ID, Mailbox: c.Mailbox, Class: class, Previous: c.Class, By: by, Why: why, At: s.now().UTC()}
	if _, err := s.st.create(ctx, decisionKey(c.ID), &d); errors.Is(err, errConflict) {
		var prev Decision
		if _, err := s.st.get(ctx, decisionKey(c.ID), &prev); err != nil {
			return Decision{}, c, err
		}
		if prev.Class != class {
			return prev, c, fmt.Errorf("%w: %s decided %s at %s (%s)", ErrDecided, prev.By, prev.Class, prev.At.Format(time.RFC3339), prev.Why)
		}
		d = prev // the same decision again: finish its actions
	} else if err != nil {
		return Decision{}, c, err
	}
	log := s.log.With(zap.String("mailbox", mb.Name), zap.String("case", c.ID), zap.String("class", string(class)), zap.String("change", "decided"))
	log.Info("decision recorded")
	decided := *c
	decided.Class = class
	return d, c, s.run(ctx, log, &decided, nil, CauseDecision, "decision-"+c.ID, class, mb)
}

// Decisions reads every recorded decision, by case id, from the actions
// bucket of js (for `cases list` and `cases show`, beside the cases).
func Decisions(ctx context.Context, js jetstream.JetStream) (map[string]Decision, error) {
	st, err := openStore(ctx, js)
	if err != nil {
		return nil, err
	}
	return st.decisions(ctx)
}

// decisions returns every decision the bucket holds, by case id.
func (st store) decisions(ctx context.Context) (map[string]Decision, error) {
	keys, err := st.keys(ctx, "decision.>")
	if err != nil {
		return nil, err
	}
	out := make(map[string]Decision, len(keys))
	for _, k := range keys {
		var d Decision
		if _, err := st.get(ctx, k, &d); errors.Is(err, errNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		out[d.Case] = d
	}
	return out, nil
}

// findCase reads a case by its id or the eIAM profile id.
func (s *Stage) findCase(ctx context.Context, id string) (*event.Case, error) {
	c, _, err := s.cases.Get(ctx, id)
	if errors.Is(err, cases.ErrNotFound) {
		if key := cases.KeyForProfile(id); key != "" && key != id {
			c, _, err = s.cases.Get(ctx, key)
		}
	}
	return c, err
}
