package actions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/actions/render"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
)

// capWindow counts the effects admitted against one cap of one mailbox in
// one clock hour (UTC), by their keys, so that a redelivered effect is
// counted once.
type capWindow struct {
	Effects []string `json:"effects"`
}

// hold is a cap of a mailbox that was exceeded: every further effect it
// caps is held until Release.
type hold struct {
	Mailbox string    `json:"mailbox"`
	Cap     string    `json:"cap"`
	Limit   int       `json:"limit"`
	Since   time.Time `json:"since"`
	// Alerted: the superusers were told (AlertMail).
	Alerted   bool   `json:"alerted"`
	AlertMail string `json:"alert_mail,omitempty"`
}

func holdKey(mailbox, capName string) string { return "hold." + mailbox + "." + capName }

func capWindowKey(mailbox, capName string, at time.Time) string {
	return "cap." + mailbox + "." + capName + "." + at.UTC().Format("2006010215")
}

func (s *Stage) capLimit(capName string) int {
	switch capName {
	case CapUserMail:
		return s.cfg.Actions.Caps.UserMail
	case CapEscalation:
		return s.cfg.Actions.Caps.Escalation
	default:
		return s.cfg.Actions.Caps.Deactivate
	}
}

// admit decides whether the effect key may go out under the cap: yes when
// it was counted before, or the mailbox's count in this hour is below the
// cap and no hold is on; no when a hold is on or the cap is reached, which
// puts the hold on and alerts the superusers and the log.
func (s *Stage) admit(ctx context.Context, mb *config.Mailbox, capName, key string) (bool, error) {
	var h hold
	rev, err := s.st.get(ctx, holdKey(mb.Name, capName), &h)
	if err == nil {
		return false, s.alertHold(ctx, mb, h, rev)
	}
	if !errors.Is(err, errNotFound) {
		return false, err
	}
	limit := s.capLimit(capName)
	wkey := capWindowKey(mb.Name, capName, s.now())
	over := false
	for attempt := 0; !over; attempt++ {
		if attempt >= 20 {
			return false, fmt.Errorf("actions: the count %s kept changing; retrying later", wkey)
		}
		var w capWindow
		rev, err := s.st.get(ctx, wkey, &w)
		if err != nil && !errors.Is(err, errNotFound) {
			return false, err
		}
		if slices.Contains(w.Effects, key) {
			return true, nil
		}
		if len(w.Effects) >= limit {
			over = true
			break
		}
		w.Effects = append(w.Effects, key)
		if errors.Is(err, errNotFound) {
			_, err = s.st.create(ctx, wkey, &w)
		} else {
			_, err = s.st.update(ctx, wkey, &w, rev)
		}
		if errors.Is(err, errConflict) {
			continue
		}
		if err != nil {
			return false, err
		}
		return true, nil
	}
	h = hold{Mailbox: mb.Name, Cap: capName, Limit: limit, Since: s.now().UTC()}
	rev, err = s.st.create(ctx, holdKey(mb.Name, capName), &h)
	if errors.Is(err, errConflict) {
		if rev, err = s.st.get(ctx, holdKey(mb.Name, capName), &h); err != nil {
			return false, err
		}
	} else if err != nil {
		return false, err
	} else {
		s.log.Error("cap reached: further actions of this kind are held until `eiamtriage actions release`",
			zap.String("mailbox", mb.Name), zap.String("cap", capName), zap.Int("per_hour", limit))
		s.m.held(mb.Name, capName)
	}
	return false, s.alertHold(ctx, mb, h, rev)
}

// alertHold tells the mailbox's superusers, once per hold, that actions
// are held.
func (s *Stage) alertHold(ctx context.Context, mb *config.Mailbox, h hold, rev uint64) error {
	if h.Alerted {
		return nil
	}
	id := fmt.Sprintf("hold.%s.%s.%d", mb.Name, strings.ReplaceAll(h.Cap, "_", "-"), h.Since.Unix())
	if len(mb.Superusers) == 0 {
		s.log.Error("actions held and mailbox has no superusers to alert", zap.String("mailbox", mb.Name), zap.String("cap", h.Cap))
	} else {
		v := &render.HoldView{Common: render.Common{DryRun: s.cfg.Actions.DryRun}, Mailbox: render.Clean(mb.Name), Action: h.Cap, Cap: h.Limit,
			Since: render.FormatTime(h.Since, s.loc), Command: "eiamtriage actions release --config FILE --mailbox " + render.Clean(mb.Name)}
		m, err := s.r.Render(render.KindHold, mb.Language, v)
		if err != nil {
			return err
		}
		if _, _, err := s.out.Enqueue(ctx, outbox.Message{ID: id, Kind: outbox.KindAlert, Mailbox: mb.Name, To: mb.Superusers,
			Subject: m.Subject, Text: m.Text, HTML: m.HTML, Urgent: true}); err != nil {
			return fmt.Errorf("actions: alert the superusers of mailbox %s that actions are held: %w", mb.Name, err)
		}
	}
	h.Alerted, h.AlertMail = true, id
	if _, err := s.st.update(ctx, holdKey(mb.Name, h.Cap), &h, rev); err != nil && !errors.Is(err, errConflict) {
		return err
	}
	return nil
}

// HeldEffects returns the effects held past a cap, of mailbox ("": every
// mailbox), oldest first.
func (s *Stage) HeldEffects(ctx context.Context, mailbox string) ([]Effect, error) {
	effects, err := s.effects(ctx, mailbox)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(effects, func(e Effect) bool { return e.State != StateHeld }), nil
}

// effects returns the effect records of mailbox ("": every mailbox),
// oldest first.
func (s *Stage) effects(ctx context.Context, mailbox string) ([]Effect, error) {
	filter := "effect.>"
	if mailbox != "" {
		filter = "effect." + mailbox + ".>"
	}
	keys, err := s.st.keys(ctx, filter)
	if err != nil {
		return nil, err
	}
	out := make([]Effect, 0, len(keys))
	for _, k := range keys {
		var e Effect
		if _, err := s.st.get(ctx, k, &e); errors.Is(err, errNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].Key < out[j].Key
	})
	return out, nil
}

// ReleaseResult says what Release did.
type ReleaseResult struct {
	// Released, Discarded and Failed count the held effects done,
	// discarded and failed; Holds names the holds lifted.
	Released, Discarded, Failed int
	Holds                       []string
	// Errors are the effects that could not be done now (they stay
	// held; run release again).
	Errors []error
}

// Release does the effects held past a cap in mailbox ("": every mailbox),
// or with discard records them as discarded instead, and lifts the holds:
// counting starts afresh in the current hour. by names who released them.
func (s *Stage) Release(ctx context.Context, mailbox string, discard bool, by string) (ReleaseResult, error) {
	var out ReleaseResult
	if mailbox != "" {
		if _, ok := s.mailboxes[mailbox]; !ok {
			return out, fmt.Errorf("actions: no mailbox %q is configured", mailbox)
		}
	}
	held, err := s.HeldEffects(ctx, mailbox)
	if err != nil {
		return out, err
	}
	now := s.now().UTC()
	for _, e := range held {
		mb, ok := s.mailboxes[e.Mailbox]
		if !ok {
			out.Errors = append(out.Errors, fmt.Errorf("effect %s: mailbox %s is not configured", e.Key, e.Mailbox))
			continue
		}
		if err := s.releaseOne(ctx, mb, e, discard, by, now, &out); err != nil {
			out.Errors = append(out.Errors, fmt.Errorf("effect %s: %w", e.Key, err))
		}
	}
	if len(out.Errors) > 0 {
		return out, nil // the holds stay: what is still held must not slip out unreleased
	}
	for name, mb := range s.mailboxes {
		if mailbox != "" && name != mailbox {
			continue
		}
		for _, c := range []string{CapUserMail, CapEscalation, CapDeactivate} {
			var h hold
			if _, err := s.st.get(ctx, holdKey(name, c), &h); err == nil {
				out.Holds = append(out.Holds, name+"/"+c)
				s.log.Warn("hold lifted", zap.String("mailbox", name), zap.String("cap", c), zap.Bool("discard", discard))
			}
			if err := s.st.delete(ctx, holdKey(name, c)); err != nil {
				return out, err
			}
			if err := s.st.delete(ctx, capWindowKey(mb.Name, c, now)); err != nil {
				return out, err
			}
		}
	}
	// An effect held while this ran, after the list was read, would stay
	// held with no hold on: release those too.
	late, err := s.HeldEffects(ctx, mailbox)
	if err != nil {
		return out, err
	}
	for _, e := range late {
		if mb, ok := s.mailboxes[e.Mailbox]; ok {
			if err := s.releaseOne(ctx, mb, e, discard, by, now, &out); err != nil {
				out.Errors = append(out.Errors, fmt.Errorf("effect %s: %w", e.Key, err))
			}
		}
	}
	sort.Strings(out.Holds)
	return out, nil
}

func (s *Stage) releaseOne(ctx context.Context, mb *config.Mailbox, e Effect, discard bool, by string, now time.Time, out *ReleaseResult) error {
	var cur Effect
	rev, err := s.st.get(ctx, e.Key, &cur)
	if err != nil {
		return err
	}
	if cur.State != StateHeld {
		return nil // released meanwhile
	}
	who := by
	if who == "" {
		who = "an operator"
	}
	if discard {
		cur.State, cur.Note = StateDiscarded, fmt.Sprintf("discarded by %s at %s", who, now.Format(time.RFC3339))
		cur.Updated = now
		if _, err := s.st.update(ctx, e.Key, &cur, rev); err != nil {
			return err
		}
		out.Discarded++
		s.m.effect(mb.Name, cur.Kind, StateDiscarded)
		return nil
	}
	c, _, err := s.cases.Get(ctx, cur.Case)
	if err != nil {
		return err
	}
	var ref *event.NoticeRef
	if cur.Cause != CauseDecision {
		ref = c.Ref(cur.Cause)
	}
	cc := *c
	cc.Class = cur.Class
	perr := s.perform(ctx, &cc, ref, mb, &cur, nil)
	var give errGiveUp
	switch {
	case errors.As(perr, &give):
		cur.State, cur.Note = StateFailed, perr.Error()
		out.Failed++
	case perr != nil:
		return perr
	default:
		cur.State, cur.Note = StateDone, fmt.Sprintf("released by %s at %s", who, now.Format(time.RFC3339))
		out.Released++
	}
	cur.Updated = now
	if _, err := s.st.update(ctx, e.Key, &cur, rev); err != nil {
		return err
	}
	s.m.effect(mb.Name, cur.Kind, cur.State)
	return nil
}

// hashAddress names an address in a key without writing it there.
func hashAddress(a string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(a)))
	return hex.EncodeToString(sum[:8])
}

// CaseEffects returns the effects recorded for case c, oldest first.
func (s *Stage) CaseEffects(ctx context.Context, c *event.Case) ([]Effect, error) {
	all, err := s.effects(ctx, c.Mailbox)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(e Effect) bool { return e.Case != c.ID }), nil
}
