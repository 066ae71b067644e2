package actions

import (
	"context"
	"errors"
	"fmt"

	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/actions/render"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/mailstore"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// perform does effect e of case c and fills in what it did (Mail, Task,
// To, Note). It is idempotent: a mail goes to the outbox under its fixed
// id, a task is opened under its fixed id. An errGiveUp says it can never
// be done as it stands; any other error is temporary.
func (s *Stage) perform(ctx context.Context, c *event.Case, ref *event.NoticeRef, mb *config.Mailbox, e *Effect, done map[EffectKind]*Effect) error {
	common := render.Common{DryRun: s.cfg.Actions.DryRun}
	view := render.NewCase(c, ref, s.loc)
	su := superusersFor(ref, mb)
	switch e.Kind {
	case EffectRecord:
		e.Note = "recorded: eIAM updates the data itself"
		return nil

	case EffectDeactivate, EffectRecreate:
		kind := event.TaskDeactivate
		if e.Kind == EffectRecreate {
			kind = event.TaskRecreate
		}
		id, created, err := s.openTask(ctx, kind, c, mb, e.Cause, e.Class == event.ClassWrongPerson)
		e.Task = id
		if err == nil && !created {
			e.Note = "the case's task was open already"
		}
		return err

	case EffectEscalation:
		to := append([]string(nil), s.cfg.Escalation.To...)
		v := &render.EscalationView{Common: common, Case: view, Superusers: render.CleanAll(su), Attached: true}
		var att *outbox.Attachment
		if ref == nil {
			v.Attached, v.AttachProblem = false, "the case does not say which notice caused it"
		} else if raw, err := s.notices.Notice(ctx, *ref); errors.Is(err, mailstore.ErrNotFound) {
			v.Attached, v.AttachProblem = false, render.Clean(err.Error())
		} else if err != nil {
			return fmt.Errorf("actions: read the original notice of case %s (mail %s): %w", c.ID, ref.MailID, err)
		} else {
			att = &outbox.Attachment{Filename: "eiam-notice.eml", Raw: raw}
		}
		e.To = to
		return s.send(ctx, e, render.KindEscalation, outbox.KindEscalation, mb.Language, v, to, su, true, att)

	case EffectAlert:
		if len(su) == 0 {
			return errGiveUp{fmt.Errorf("actions: mailbox %s has no superusers to alert (mailboxes[].superusers)", mb.Name)}
		}
		v := &render.AlertView{Common: common, Case: view, EscalatedTo: render.CleanAll(s.cfg.Escalation.To)}
		if esc := done[EffectEscalation]; esc != nil && esc.State == StateHeld {
			v.EscalationHeld = true
		}
		t, err := s.taskView(event.TaskDeactivate, c, mb, true)
		if err != nil {
			return errGiveUp{err}
		}
		v.Task = t
		e.To = su
		return s.send(ctx, e, render.KindAlert, outbox.KindAlert, mb.Language, v, su, nil, true, nil)

	case EffectUserMail:
		addr, problem := userAddress(c)
		if problem != "" {
			return errGiveUp{fmt.Errorf("actions: case %s: no address to mail the user at (%s)", c.ID, problem)}
		}
		v := &render.UserMailView{Common: common, Case: view, ReplyTo: render.CleanAll(su)}
		e.To = []string{addr}
		return s.send(ctx, e, render.KindUserMail, outbox.KindUserMail, language(c.Language, mb), v, e.To, su, false, nil)

	case EffectDraft:
		if len(su) == 0 {
			return errGiveUp{fmt.Errorf("actions: mailbox %s has no superusers to send the draft to (mailboxes[].superusers)", mb.Name)}
		}
		user, err := s.r.Render(render.KindUserMail, language(c.Language, mb), &render.UserMailView{Case: view, ReplyTo: render.CleanAll(su)})
		if err != nil {
			return errGiveUp{err}
		}
		v := &render.DraftView{Common: common, Case: view, Problem: e.Problem, UserSubject: user.Subject, UserText: user.Text, UserLang: language(c.Language, mb)}
		if addr, problem := userAddress(c); problem == "" {
			v.To = render.Clean(addr)
		}
		e.To = su
		return s.send(ctx, e, render.KindDraft, outbox.KindDraft, mb.Language, v, su, nil, false, nil)

	case EffectDecision:
		if len(su) == 0 {
			return errGiveUp{fmt.Errorf("actions: mailbox %s has no superusers to ask (mailboxes[].superusers)", mb.Name)}
		}
		v := &render.DecisionView{Common: common, Case: view, Command: decideCommand(c.ID)}
		e.To = su
		return s.send(ctx, e, render.KindDecision, outbox.KindDecision, mb.Language, v, su, nil, false, nil)
	}
	return errGiveUp{fmt.Errorf("actions: effect %s of unknown kind %q", e.Key, e.Kind)}
}

func decideCommand(caseID string) string {
	return "eiamtriage cases decide " + render.Clean(caseID) + " CLASS --by NAME --why TEXT"
}

// send renders a mail and hands it to the outbox under the effect's mail
// id.
func (s *Stage) send(ctx context.Context, e *Effect, kind render.Kind, outKind, lang string, v render.View, to, replyTo []string, urgent bool, att *outbox.Attachment) error {
	m, err := s.r.Render(kind, lang, v)
	if err != nil {
		return errGiveUp{err}
	}
	e.Mail = mailID(e.Kind, e.Case, e.Cause)
	entry, _, err := s.out.Enqueue(ctx, outbox.Message{
		ID: e.Mail, Kind: outKind, Case: e.Case, Mailbox: e.Mailbox,
		To: to, ReplyTo: replyTo, Subject: m.Subject, Text: m.Text, HTML: m.HTML, Urgent: urgent, Attachment: att,
	})
	if errors.Is(err, outbox.ErrInvalid) {
		return errGiveUp{err}
	}
	if err != nil {
		return err
	}
	if entry.State == outbox.StateDryRun {
		e.Note = "dry run: rendered and recorded in the outbox, not sent"
	}
	return nil
}

// openTask opens the case's task of kind, once: created is false when it
// was open already (from this cause, after a crash, or from an earlier
// notice of the case). Its task-created event is published whenever this
// cause opened it (a re-publication within the stream's duplicate window
// is dropped).
func (s *Stage) openTask(ctx context.Context, kind event.TaskKind, c *event.Case, mb *config.Mailbox, cause string, urgent bool) (id string, created bool, err error) {
	id = taskID(kind, c.ID)
	where, steps, err := s.r.Steps(string(kind), mb.Language, render.NewTaskData(id, c, s.cfg.Actions.PortalURL, urgent))
	if err != nil {
		return id, false, errGiveUp{err}
	}
	t := event.Task{
		ID: id, Kind: kind, Case: c.ID, Mailbox: mb.Name, Class: c.Class,
		ProfileID: c.ProfileID, Organisation: c.Organisation, Application: c.Application,
		Entered: c.Expected, SignedIn: c.Actual, Urgent: urgent, Where: where, Steps: steps,
		Cause: cause, State: event.TaskStateOpen, DryRun: s.cfg.Actions.DryRun, Created: s.now().UTC(),
	}
	_, err = s.st.create(ctx, taskKey(id), &t)
	switch {
	case err == nil:
		created = true
	case errors.Is(err, errConflict):
		var existing event.Task
		if _, err := s.st.get(ctx, taskKey(id), &existing); err != nil {
			return id, false, err
		}
		if existing.Cause != cause {
			return id, false, nil // opened by an earlier notice: its event is out
		}
		t = existing
	default:
		return id, false, err
	}
	ev, err := event.New(event.TypeTaskCreated, "eiamtriage/"+Name, event.TaskCreatedID(id), t.Created, t)
	if err != nil {
		return id, created, errGiveUp{err}
	}
	ev.Subject = id
	if err := pipeline.Publish(ctx, s.js, event.SubjectTaskCreated, ev); err != nil {
		return id, created, fmt.Errorf("actions: publish the task-created event of %s: %w", id, err)
	}
	return id, created, nil
}

// taskView is the task of kind on c as a mail shows it (for the alert,
// before or after the task is stored).
func (s *Stage) taskView(kind event.TaskKind, c *event.Case, mb *config.Mailbox, urgent bool) (*render.Task, error) {
	id := taskID(kind, c.ID)
	where, steps, err := s.r.Steps(string(kind), mb.Language, render.NewTaskData(id, c, s.cfg.Actions.PortalURL, urgent))
	if err != nil {
		return nil, err
	}
	v := render.NewTask(event.Task{ID: id, Kind: kind, Case: c.ID, ProfileID: c.ProfileID, Organisation: c.Organisation,
		Urgent: urgent, Where: where, Steps: steps, Entered: c.Expected, Created: s.now()}, s.now(), s.loc)
	return &v, nil
}

func taskKey(id string) string { return "task." + id }
