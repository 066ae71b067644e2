package actions

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.uber.org/zap"

	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// ErrNoTask is returned for a task id the stage does not hold.
var ErrNoTask = errors.New("actions: no such task")

// Tasks returns the tasks of mailbox ("": every mailbox), open ones only
// unless all, oldest first.
func (s *Stage) Tasks(ctx context.Context, mailbox string, all bool) ([]event.Task, error) {
	keys, err := s.st.keys(ctx, "task.>")
	if err != nil {
		return nil, err
	}
	var out []event.Task
	for _, k := range keys {
		var t event.Task
		if _, err := s.st.get(ctx, k, &t); errors.Is(err, errNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		if (mailbox == "" || t.Mailbox == mailbox) && (all || t.State == event.TaskStateOpen) {
			out = append(out, t)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Task returns the task id.
func (s *Stage) Task(ctx context.Context, id string) (event.Task, error) {
	var t event.Task
	if err := validTaskID(id); err != nil {
		return t, err
	}
	if _, err := s.st.get(ctx, taskKey(id), &t); errors.Is(err, errNotFound) {
		return t, fmt.Errorf("%w %q: `eiamtriage tasks list` shows the open ones", ErrNoTask, id)
	} else if err != nil {
		return t, err
	}
	return t, nil
}

// CloseTask marks the task id done by by (with note) and publishes its
// task-done event. changed is false when it was done already (nothing is
// changed or published then).
func (s *Stage) CloseTask(ctx context.Context, id, by, note string) (t event.Task, changed bool, err error) {
	t, changed, err = s.markDone(ctx, event.TaskDone{Task: id, By: by, Note: note, At: s.now().UTC()})
	if err != nil || !changed {
		return t, changed, err
	}
	ev, err := event.New(event.TypeTaskDone, "eiamtriage/"+Name, event.TaskDoneID(id), t.Done.At, *t.Done)
	if err != nil {
		return t, true, err
	}
	ev.Subject = id
	if err := pipeline.Publish(ctx, s.js, event.SubjectTaskDone, ev); err != nil {
		return t, true, fmt.Errorf("actions: task %s is done but its event is not published: %w (run the command again to publish it)", id, err)
	}
	return t, true, nil
}

// markDone records d on its task.
func (s *Stage) markDone(ctx context.Context, d event.TaskDone) (event.Task, bool, error) {
	if strings.TrimSpace(d.By) == "" {
		return event.Task{}, false, errors.New("actions: say who did the task (--by NAME)")
	}
	for range 10 {
		var t event.Task
		if err := validTaskID(d.Task); err != nil {
			return t, false, err
		}
		rev, err := s.st.get(ctx, taskKey(d.Task), &t)
		if errors.Is(err, errNotFound) {
			return t, false, fmt.Errorf("%w %q: `eiamtriage tasks list` shows the open ones", ErrNoTask, d.Task)
		}
		if err != nil {
			return t, false, err
		}
		if t.State == event.TaskStateDone {
			return t, false, nil
		}
		if d.At.IsZero() {
			d.At = s.now().UTC()
		}
		t.State, t.Done = event.TaskStateDone, &d
		if _, err := s.st.update(ctx, taskKey(d.Task), &t, rev); errors.Is(err, errConflict) {
			continue
		} else if err != nil {
			return t, false, err
		}
		s.log.Info("task done", zap.String("task", d.Task), zap.String("mailbox", t.Mailbox), zap.Duration("open_for", d.At.Sub(t.Created)))
		return t, true, nil
	}
	return event.Task{}, false, fmt.Errorf("actions: task %s kept changing; try again", d.Task)
}

// HandleTask processes one task-done event (a pipeline.Handler): another
// system, or `eiamtriage tasks done`, closed a task. A task that is done
// already is left alone; an unknown task is a permanent error (the dead
// letter shows who sent it).
func (s *Stage) HandleTask(ctx context.Context, m pipeline.Msg) error {
	var d event.TaskDone
	ev, err := event.ParseInto(m.Data, &d)
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("actions: message %d on %s: %w", m.Sequence, m.Subject, err))
	}
	if ev.Type != event.TypeTaskDone {
		return pipeline.Permanent(fmt.Errorf("actions: event %s on %s has type %s, want %s", ev.ID, m.Subject, ev.Type, event.TypeTaskDone))
	}
	if d.By == "" {
		d.By = ev.Source
	}
	if d.At.IsZero() {
		d.At = ev.Time
	}
	_, _, err = s.markDone(ctx, d)
	if errors.Is(err, ErrNoTask) || errors.Is(err, errBadTaskID) {
		return pipeline.Permanent(err)
	}
	return err
}

var errBadTaskID = errors.New("actions: not a task id")

func validTaskID(id string) error {
	kind, rest, ok := strings.Cut(id, ".")
	if !ok || (kind != string(event.TaskDeactivate) && kind != string(event.TaskRecreate)) || rest == "" ||
		strings.ContainsFunc(id, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
		}) || strings.Contains(id, "..") || strings.HasSuffix(id, ".") {
		return fmt.Errorf("%w: %q; task ids look like deactivate.p.<profile id> (`eiamtriage tasks list`)", errBadTaskID, id)
	}
	return nil
}
