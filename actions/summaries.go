package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/actions/render"
	"github.com/eiamtriage/eiamtriage/actions/summary"
	"github.com/eiamtriage/eiamtriage/internal/cron"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// Clock is the time the schedule runs on: Now, and a channel that fires
// after d. The daemon's is the real one; tests inject their own.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// maxWait bounds one wait of the schedule loop, so that a changed wall
// clock (or a suspended host) is noticed within it.
const maxWait = time.Minute

// period is the record of one summary run of a mailbox, keyed by its slot
// label: the first instance to create it fixes the period [From, Until)
// that every instance then summarises, and marks it done.
type period struct {
	Mailbox string    `json:"mailbox"`
	Label   string    `json:"label"`
	Slot    time.Time `json:"slot"`
	From    time.Time `json:"from"`
	Until   time.Time `json:"until"`
	Done    bool      `json:"done"`
	// Empty: there was nothing to say, nothing was sent.
	Empty bool      `json:"empty,omitempty"`
	Sent  []string  `json:"sent,omitempty"`
	At    time.Time `json:"at"`
}

// summaryState is a mailbox's summary watermark: the end of the last
// period summarised, and since when the service schedules its summaries
// (slots before are never caught up).
type summaryState struct {
	Mailbox   string    `json:"mailbox"`
	Since     time.Time `json:"since"`
	LastLabel string    `json:"last_label,omitempty"`
	LastUntil time.Time `json:"last_until,omitzero"`
}

func periodKey(mailbox, label string) string { return "summary." + mailbox + "." + label }
func stateKey(mailbox string) string         { return "summarystate." + mailbox }

// SummaryResult says what a summary run of a mailbox did.
type SummaryResult struct {
	Mailbox string
	// Period is the slot label; From and Until bound the period.
	Period      string
	From, Until time.Time
	// Sent are the outbox ids of the summaries (one per superuser).
	Sent []string
	// Empty: nothing to say, nothing sent. AlreadyDone: the period was
	// summarised before (by the schedule, another instance or an earlier
	// command), nothing sent now.
	Empty, AlreadyDone bool
}

// SendSummaries sends the due summaries of mailbox ("": every mailbox)
// now, exactly as the schedule would: the summary of the period that
// ends at the next slot of the schedule, ended now. The schedule then
// finds that slot done and sends nothing for it; what comes later goes
// into the next period. Running it twice sends nothing the second time.
func (s *Stage) SendSummaries(ctx context.Context, mailbox string) ([]SummaryResult, error) {
	slot, ok := s.spec.Next(s.now(), s.loc)
	if !ok {
		return nil, fmt.Errorf("actions: the schedule %q never fires", s.spec)
	}
	var out []SummaryResult
	for _, name := range s.mailboxNames() {
		if mailbox != "" && name != mailbox {
			continue
		}
		res, err := s.runPeriod(ctx, name, slot)
		if err != nil {
			return out, err
		}
		out = append(out, res)
	}
	if mailbox != "" && len(out) == 0 {
		return nil, fmt.Errorf("actions: no mailbox %q is configured", mailbox)
	}
	return out, nil
}

func (s *Stage) mailboxNames() []string {
	names := make([]string, 0, len(s.mailboxes))
	for n := range s.mailboxes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// RunSummaries runs the summary schedule until ctx ends: at each slot
// (summaries.schedule in summaries.time_zone) every mailbox's period is
// summarised, once however many instances run. A slot missed while no
// instance ran, or whose run failed, is caught up at the next check (at
// most maxWait later), but never one from before the mailbox was first
// scheduled. clock nil is the real clock.
func (s *Stage) RunSummaries(ctx context.Context, clock Clock) error {
	if clock == nil {
		clock = realClock{}
	}
	for {
		now := clock.Now()
		for _, name := range s.mailboxNames() {
			if err := s.catchUp(ctx, name, now); err != nil && ctx.Err() == nil {
				s.log.Error("summary run failed; trying again", zap.String("mailbox", name), zap.Error(err), zap.Duration("retry_in", maxWait))
				s.m.summary(name, "failed")
			}
		}
		wait := maxWait
		if next, ok := s.spec.Next(now, s.loc); ok && next.At.Sub(now) < wait {
			wait = next.At.Sub(now)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-clock.After(wait):
		}
	}
}

// catchUp summarises the mailbox's latest slot at or before now unless it
// is done or older than the mailbox's schedule.
func (s *Stage) catchUp(ctx context.Context, mailbox string, now time.Time) error {
	st, err := s.summaryState(ctx, mailbox, now)
	if err != nil {
		return err
	}
	prev, ok := s.spec.Prev(now, s.loc)
	if !ok || !prev.At.After(st.Since) || st.LastLabel == prev.Label() {
		return nil
	}
	var p period
	if _, err := s.st.get(ctx, periodKey(mailbox, prev.Label()), &p); err == nil && p.Done {
		return nil
	} else if err != nil && !errors.Is(err, errNotFound) {
		return err
	}
	_, err = s.runPeriod(ctx, mailbox, prev)
	return err
}

// summaryState reads the mailbox's watermark, creating it (since now)
// when there is none.
func (s *Stage) summaryState(ctx context.Context, mailbox string, now time.Time) (summaryState, error) {
	for range 5 {
		var st summaryState
		_, err := s.st.get(ctx, stateKey(mailbox), &st)
		if err == nil {
			return st, nil
		}
		if !errors.Is(err, errNotFound) {
			return st, err
		}
		st = summaryState{Mailbox: mailbox, Since: now.UTC()}
		if _, err := s.st.create(ctx, stateKey(mailbox), &st); err == nil {
			return st, nil
		} else if !errors.Is(err, errConflict) {
			return st, err
		}
	}
	return summaryState{}, fmt.Errorf("actions: the summary state of mailbox %s kept changing", mailbox)
}

// runPeriod summarises the mailbox's period ending at slot: one mail per
// superuser (none when there is nothing to say), under ids derived from
// the slot, so that any number of runs of the same slot send each once.
func (s *Stage) runPeriod(ctx context.Context, mailbox string, slot cron.Slot) (SummaryResult, error) {
	mb := s.mailboxes[mailbox]
	label := slot.Label()
	key := periodKey(mailbox, label)
	var p period
	rev, err := s.st.get(ctx, key, &p)
	if errors.Is(err, errNotFound) {
		st, err := s.summaryState(ctx, mailbox, s.now())
		if err != nil {
			return SummaryResult{}, err
		}
		p = period{Mailbox: mailbox, Label: label, Slot: slot.At.UTC(), From: st.LastUntil, Until: s.now().UTC(), At: s.now().UTC()}
		if rev, err = s.st.create(ctx, key, &p); errors.Is(err, errConflict) {
			rev, err = s.st.get(ctx, key, &p)
		}
		if err != nil {
			return SummaryResult{}, err
		}
	} else if err != nil {
		return SummaryResult{}, err
	}
	res := SummaryResult{Mailbox: mailbox, Period: label, From: p.From, Until: p.Until}
	if p.Done {
		res.AlreadyDone, res.Empty, res.Sent = true, p.Empty, p.Sent
		return res, nil
	}
	in, err := s.summaryInput(ctx, mailbox, p.From, p.Until)
	if err != nil {
		return res, err
	}
	log := s.log.With(zap.String("mailbox", mailbox), zap.String("period", label))
	for _, su := range mb.Superusers {
		in.Superuser = su
		v := summary.Build(in)
		if v.Empty() {
			res.Empty = true
			break
		}
		m, err := s.r.Render(render.KindSummary, mb.Language, &v)
		if err != nil {
			return res, err
		}
		id := "summary." + mailbox + "." + hashAddress(su) + "." + label
		if _, _, err := s.out.Enqueue(ctx, outbox.Message{ID: id, Kind: outbox.KindSummary, Mailbox: mailbox, To: []string{su},
			Subject: m.Subject, Text: m.Text, HTML: m.HTML}); err != nil {
			return res, fmt.Errorf("actions: summary %s of mailbox %s: %w", label, mailbox, err)
		}
		res.Sent = append(res.Sent, id)
	}
	if len(mb.Superusers) == 0 {
		log.Warn("mailbox has no superusers: no summary to send")
	}
	p.Done, p.Empty, p.Sent, p.At = true, res.Empty, res.Sent, s.now().UTC()
	if _, err := s.st.update(ctx, key, &p, rev); err != nil && !errors.Is(err, errConflict) {
		return res, err
	}
	if err := s.advance(ctx, mailbox, label, p.Until); err != nil {
		return res, err
	}
	outcome := "sent"
	if res.Empty {
		outcome = "empty"
	}
	s.m.summary(mailbox, outcome)
	log.Info("summary period done", zap.Bool("empty", res.Empty), zap.Int("mails", len(res.Sent)))
	return res, nil
}

// advance moves the mailbox's watermark to until.
func (s *Stage) advance(ctx context.Context, mailbox, label string, until time.Time) error {
	for range 10 {
		var st summaryState
		rev, err := s.st.get(ctx, stateKey(mailbox), &st)
		if err != nil {
			return err
		}
		if !until.After(st.LastUntil) {
			return nil
		}
		st.LastUntil, st.LastLabel = until, label
		if _, err := s.st.update(ctx, stateKey(mailbox), &st, rev); errors.Is(err, errConflict) {
			continue
		} else if err != nil {
			return err
		}
		return nil
	}
	return fmt.Errorf("actions: the summary state of mailbox %s kept changing", mailbox)
}

// summaryInput reads what the mailbox's summaries of [from, until) show.
func (s *Stage) summaryInput(ctx context.Context, mailbox string, from, until time.Time) (summary.Input, error) {
	in := summary.Input{Mailbox: mailbox, From: from, Until: until, Loc: s.loc, DryRun: s.cfg.Actions.DryRun,
		Done: map[string][]summary.Done{}, Decisions: map[string]summary.Decided{}}
	all, err := s.cases.List(ctx)
	if err != nil {
		return in, err
	}
	for _, c := range all {
		if c.Mailbox == mailbox {
			in.Cases = append(in.Cases, c)
		}
	}
	entries, err := s.out.List(ctx, outbox.Filter{Mailbox: mailbox})
	if err != nil {
		return in, err
	}
	mails := map[string]outbox.Entry{}
	for _, e := range entries {
		mails[e.ID] = e
		if slices.Contains(outbox.ProblemStates, e.State) {
			in.Failed = append(in.Failed, summary.Failed{ID: e.ID, Kind: e.Kind, Subject: e.Subject, State: string(e.State), Error: e.LastError, To: e.To, At: e.Updated})
		}
	}
	tasks, err := s.Tasks(ctx, mailbox, true)
	if err != nil {
		return in, err
	}
	taskState := map[string]event.TaskState{}
	for _, t := range tasks {
		taskState[t.ID] = t.State
	}
	in.Tasks = tasks
	effects, err := s.effects(ctx, mailbox)
	if err != nil {
		return in, err
	}
	for _, e := range effects {
		d := summary.Done{Kind: string(e.Kind), State: string(e.State), To: e.To, At: e.Created}
		switch {
		case e.State == StateHeld:
			in.Held = append(in.Held, summary.Held{Kind: string(e.Kind), Case: e.Case, Since: e.Created})
		case e.Kind == EffectRecord:
			d.State = "recorded"
		case e.Mail != "" && e.State == StateDone:
			if m, ok := mails[e.Mail]; ok {
				d.State, d.Note = string(m.State), m.LastError
			}
		case e.Task != "" && e.State == StateDone:
			if ts, ok := taskState[e.Task]; ok {
				d.State = string(ts)
			}
		case e.State == StateFailed:
			d.Note = e.Note
		}
		in.Done[e.Case] = append(in.Done[e.Case], d)
	}
	decisions, err := s.st.decisions(ctx)
	if err != nil {
		return in, err
	}
	for id, d := range decisions {
		in.Decisions[id] = summary.Decided{Class: d.Class, By: d.By, Why: d.Why, At: d.At}
	}
	dead, err := pipeline.ReadDead(ctx, s.js, 0)
	if err != nil {
		return in, err
	}
	for _, r := range dead {
		switch {
		case r.Quarantined != nil:
			in.Quarantined = append(in.Quarantined, *r.Quarantined)
		case r.Letter != nil && r.Letter.Stage != outbox.Name && deadOf(r.Letter, mailbox):
			in.Dead = append(in.Dead, *r.Letter)
		}
	}
	return in, nil
}

// deadOf reports whether a dead letter may concern mailbox: its original
// event names the mailbox (as a mail-received or case event does), or
// names none (then every mailbox's summary shows it).
func deadOf(dl *event.DeadLetter, mailbox string) bool {
	var orig struct {
		Data struct {
			Mailbox string `json:"mailbox"`
			Case    *struct {
				Mailbox string `json:"mailbox"`
			} `json:"case"`
		} `json:"data"`
	}
	if len(dl.OriginalData) == 0 || json.Unmarshal(dl.OriginalData, &orig) != nil {
		return true
	}
	mb := orig.Data.Mailbox
	if mb == "" && orig.Data.Case != nil {
		mb = orig.Data.Case.Mailbox
	}
	return mb == "" || mb == mailbox
}
