// Package actions is the actions stage: what each class of case causes
// (docs/NOTICE.md section 6, docs/actions.md), each side effect done once
// and recorded. It consumes the case events (stream EIAM_CASES, subjects
// eiam.case.>) through pipeline.Run under its own retry policy, and:
//
//   - negligible: records the case, nothing else;
//   - private-email: opens a deactivate and a recreate task and mails the
//     user at the entered, professional address, in the notice's language,
//     the superuser in Reply-To (or drafts that mail for the superusers);
//   - wrong-person: at once forwards the case to federal support with the
//     original notice attached, opens a deactivate task and alerts the
//     superuser the notice was addressed to;
//   - review: asks the superusers to decide (Decide records the decision
//     and runs that class's actions).
//
// A further notice that joins a case causes nothing new. Every effect is
// recorded in the actions bucket under the case event's cause (the
// notice's mail id) and its kind before it is done, and mails go through
// the outbox under ids derived from the same: redeliveries, restarts and
// duplicate notices never do an effect twice, also after the event
// stream's duplicate window. User mails, escalations and deactivate tasks
// count against per-mailbox caps per hour; past a cap the rest is held
// until Release.
//
// The stage also keeps the tasks (events eiam.task.created and
// eiam.task.done) and sends the superusers' summaries on the schedule
// (summaries.go).
package actions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/actions/render"
	"github.com/eiamtriage/eiamtriage/internal/cases"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/cron"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// Name is the stage's name: its consumer, dead letters (eiam.dead.actions),
// metrics and logs.
const Name = "actions"

// TasksName names the consumer of the task events (eiam.dead.tasks).
const TasksName = "tasks"

// Outbox is what the stage needs of the outbox (package actions/outbox).
type Outbox interface {
	Enqueue(ctx context.Context, m outbox.Message) (outbox.Entry, bool, error)
	List(ctx context.Context, f outbox.Filter) ([]outbox.Entry, error)
}

// NoticeReader returns the bytes of the notice a case's notice ref
// recorded (package internal/mailstore).
type NoticeReader interface {
	Notice(ctx context.Context, ref event.NoticeRef) ([]byte, error)
}

// Options are the parts of a Stage. Config, Outbox, Notices and Renderer
// are required; Now defaults to time.Now, Log to a no-op logger, Metrics
// to none.
type Options struct {
	Config   *config.Config
	Outbox   Outbox
	Notices  NoticeReader
	Renderer *render.Renderer
	Log      *zap.Logger
	Now      func() time.Time
	Metrics  *Metrics
}

// Stage is the actions stage. Build it with New; it is safe for
// concurrent use.
type Stage struct {
	cfg       *config.Config
	mailboxes map[string]*config.Mailbox
	js        jetstream.JetStream
	st        store
	cases     *cases.Store
	out       Outbox
	notices   NoticeReader
	r         *render.Renderer
	spec      cron.Spec
	loc       *time.Location
	now       func() time.Time
	log       *zap.Logger
	m         *Metrics
}

// New returns the stage on the pipeline's case bucket and the actions
// bucket, which must exist (pipeline.EnsureStreams, EnsureActions).
func New(ctx context.Context, js jetstream.JetStream, opts Options) (*Stage, error) {
	switch {
	case opts.Config == nil:
		return nil, errors.New("actions: a configuration is required")
	case opts.Outbox == nil:
		return nil, errors.New("actions: an outbox is required")
	case opts.Notices == nil:
		return nil, errors.New("actions: a notice reader (the mail store) is required")
	case opts.Renderer == nil:
		return nil, errors.New("actions: a renderer is required")
	}
	spec, loc, err := opts.Config.Summaries.Spec()
	if err != nil {
		return nil, fmt.Errorf("actions: %w", err)
	}
	st, err := openStore(ctx, js)
	if err != nil {
		return nil, err
	}
	kv, err := js.KeyValue(ctx, pipeline.BucketCases)
	if err != nil {
		return nil, fmt.Errorf("actions: open the case bucket %s: %w", pipeline.BucketCases, err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	s := &Stage{
		cfg: opts.Config, mailboxes: map[string]*config.Mailbox{}, js: js, st: st, cases: cases.NewStore(kv, opts.Now),
		out: opts.Outbox, notices: opts.Notices, r: opts.Renderer, spec: spec, loc: loc,
		now: opts.Now, log: opts.Log, m: opts.Metrics,
	}
	for i := range opts.Config.Mailboxes {
		mb := &opts.Config.Mailboxes[i]
		s.mailboxes[mb.Name] = mb
	}
	return s, nil
}

// Consumer returns the stage's consumer: durable "actions" on every case
// subject, with the actions' own retry policy (actions.max_deliver,
// actions.backoff). The caller sets AckWait, Workers and Status.
func Consumer(cfg *config.Config) pipeline.ConsumerConfig {
	return pipeline.ConsumerConfig{
		Stream:        pipeline.StreamCases,
		Durable:       Name,
		FilterSubject: event.SubjectCases,
		Stage:         Name,
		MaxDeliver:    cfg.Actions.MaxDeliver,
		Backoff:       cfg.Actions.Delays(),
	}
}

// TaskConsumer returns the consumer of the task-done events (another
// system closing a task): durable "tasks" on eiam.task.done.
func TaskConsumer(cfg *config.Config) pipeline.ConsumerConfig {
	return pipeline.ConsumerConfig{
		Stream:        pipeline.StreamTasks,
		Durable:       TasksName,
		FilterSubject: event.SubjectTaskDone,
		Stage:         TasksName,
		MaxDeliver:    cfg.Actions.MaxDeliver,
		Backoff:       cfg.Actions.Delays(),
	}
}

// Handle processes one case event (a pipeline.Handler). A case opened or
// escalated causes its class's effects; a notice that joined causes
// nothing new. It is idempotent: a redelivered event finds its effects
// recorded and does only what is unfinished.
func (s *Stage) Handle(ctx context.Context, m pipeline.Msg) error {
	var ch event.CaseChanged
	ev, err := event.ParseInto(m.Data, &ch)
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("actions: message %d on %s: %w", m.Sequence, m.Subject, err))
	}
	if ev.Type != event.TypeCaseClassified && ev.Type != event.TypeCaseJoined {
		return pipeline.Permanent(fmt.Errorf("actions: event %s has type %s, want %s or %s", ev.ID, ev.Type, event.TypeCaseClassified, event.TypeCaseJoined))
	}
	c := ch.Case
	if c == nil || c.ID == "" || ch.MailID == "" {
		return pipeline.Permanent(fmt.Errorf("actions: case event %s carries no case or no mail id", ev.ID))
	}
	mb, ok := s.mailboxes[c.Mailbox]
	if !ok {
		return pipeline.Permanent(fmt.Errorf("actions: case %s (event %s) is of mailbox %q, which is not configured: add it to mailboxes, then replay the event", c.ID, ev.ID, c.Mailbox))
	}
	log := s.log.With(zap.String("mailbox", mb.Name), zap.String("case", c.ID), zap.String("class", string(c.Class)), zap.String("change", string(ch.Change)))
	switch ch.Change {
	case event.ChangeCreated, event.ChangeEscalated:
	default:
		log.Info("a further notice joined its case: nothing more to do")
		return nil
	}
	if err := s.run(ctx, log, c, c.Ref(ch.MailID), ch.MailID, ev.ID, c.Class, mb); err != nil {
		return err
	}
	s.m.latency(mb.Name, s.now().Sub(ch.ReceivedAt))
	return nil
}

// run does the effects of class for the case, in plan order.
func (s *Stage) run(ctx context.Context, log *zap.Logger, c *event.Case, ref *event.NoticeRef, cause, eventID string, class event.Class, mb *config.Mailbox) error {
	done := map[EffectKind]*Effect{}
	for _, st := range plan(class, c, mb) {
		e, err := s.apply(ctx, log, c, ref, cause, eventID, class, mb, st, done)
		if err != nil {
			return err
		}
		done[st.Kind] = e
	}
	return nil
}

// errGiveUp marks a failure no retry mends: the effect is recorded as
// failed and the others go on.
type errGiveUp struct{ err error }

func (e errGiveUp) Error() string { return e.err.Error() }
func (e errGiveUp) Unwrap() error { return e.err }

// apply records and does one effect, once: an effect recorded as done,
// held, discarded or failed is left alone; one recorded as pending (a
// crash in the middle) is finished.
func (s *Stage) apply(ctx context.Context, log *zap.Logger, c *event.Case, ref *event.NoticeRef, cause, eventID string, class event.Class, mb *config.Mailbox, st step, done map[EffectKind]*Effect) (*Effect, error) {
	key := effectKey(mb.Name, c.ID, cause, st.Kind)
	log = log.With(zap.String("effect", string(st.Kind)))
	for range 10 {
		var e Effect
		rev, err := s.st.get(ctx, key, &e)
		switch {
		case err == nil:
			if e.State != StatePending {
				return &e, nil
			}
		case errors.Is(err, errNotFound):
			now := s.now().UTC()
			e = Effect{Key: key, Kind: st.Kind, Case: c.ID, Mailbox: mb.Name, Class: class, Cause: cause, Event: eventID,
				State: StatePending, Cap: st.Cap, Problem: st.Problem, DryRun: s.cfg.Actions.DryRun, Created: now, Updated: now}
			held := false
			if f := done[st.Follows]; st.Follows != "" && f != nil && f.State == StateHeld {
				held, e.Cap = true, f.Cap
			}
			if !held && st.Cap != "" {
				ok, err := s.admit(ctx, mb, st.Cap, key)
				if err != nil {
					return nil, err
				}
				held = !ok
			}
			if held {
				e.State, e.Note = StateHeld, fmt.Sprintf("held: the cap on %s per hour for mailbox %s is reached; `eiamtriage actions release` sends it", e.Cap, mb.Name)
			}
			if rev, err = s.st.create(ctx, key, &e); errors.Is(err, errConflict) {
				continue // another instance recorded it meanwhile
			} else if err != nil {
				return nil, err
			}
			if held {
				// The hold itself is logged once, as an error (admit);
				// each effect behind it is counted (effects_total, state
				// held) and listed by `actions release --list`.
				log.Debug("effect held past its cap", zap.String("cap", e.Cap))
				s.m.effect(mb.Name, st.Kind, StateHeld)
				return &e, nil
			}
		default:
			return nil, err
		}
		perr := s.perform(ctx, c, ref, mb, &e, done)
		var give errGiveUp
		switch {
		case errors.As(perr, &give):
			e.State, e.Note = StateFailed, perr.Error()
			log.Error("effect failed for good", zap.Error(perr))
		case perr != nil:
			return nil, perr // temporary: the event is redelivered and finishes it
		default:
			e.State = StateDone
		}
		e.Updated = s.now().UTC()
		if _, err := s.st.update(ctx, key, &e, rev); errors.Is(err, errConflict) {
			continue // finished elsewhere meanwhile: read what it says
		} else if err != nil {
			return nil, err
		}
		s.m.effect(mb.Name, st.Kind, e.State)
		log.Info("effect done", zap.String("state", string(e.State)), zap.String("mail", e.Mail), zap.String("task", e.Task))
		return &e, nil
	}
	return nil, fmt.Errorf("actions: effect %s kept changing under this instance; retrying later", key)
}

// superusersFor returns whom a case's mail to its superusers goes to: the
// superuser the notice was addressed to, or all of the mailbox's.
func superusersFor(ref *event.NoticeRef, mb *config.Mailbox) []string {
	if ref != nil && ref.AddressedTo != "" {
		return []string{ref.AddressedTo}
	}
	return append([]string(nil), mb.Superusers...)
}

// language returns lang when the service writes it, else the mailbox's
// language.
func language(lang string, mb *config.Mailbox) string {
	for _, l := range render.Languages {
		if l == lang {
			return lang
		}
	}
	return mb.Language
}
