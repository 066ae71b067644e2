package event

import "time"

// Tasks: what a superuser must do by hand in the eIAM delegation portal
// (the service has no eIAM credentials). The actions stage publishes a
// TaskCreated on SubjectTaskCreated when it opens a task and a TaskDone on
// SubjectTaskDone when one is closed; another system may publish a
// TaskDone too (an eIAM workflow that did the step), and the stage closes
// the task.
const (
	SubjectTaskCreated = "eiam.task.created"
	SubjectTaskDone    = "eiam.task.done"

	// TypeTaskCreated has a Task payload: a task opened.
	TypeTaskCreated = "ch.eiamtriage.task.created.v1"
	// TypeTaskDone has a TaskDone payload: a task closed.
	TypeTaskDone = "ch.eiamtriage.task.done.v1"
)

// TaskKind says what a task asks for.
type TaskKind string

// The kinds of task.
const (
	// TaskDeactivate: deactivate the profile in the eIAM delegation
	// portal (a private-email or a wrong-person case).
	TaskDeactivate TaskKind = "deactivate"
	// TaskRecreate: create a new profile for the user's professional
	// address, with the values to enter (a private-email case).
	TaskRecreate TaskKind = "recreate"
)

// TaskState is where a task stands.
type TaskState string

// The states of a task.
const (
	TaskStateOpen TaskState = "open"
	TaskStateDone TaskState = "done"
)

// Task is one step a superuser does in the eIAM delegation portal. Its ID
// is "<kind>.<case id>": one task of a kind per case, however many notices
// or redeliveries ask for it.
type Task struct {
	ID      string   `json:"id"`
	Kind    TaskKind `json:"kind"`
	Case    string   `json:"case"`
	Mailbox string   `json:"mailbox"`
	Class   Class    `json:"class"`
	// ProfileID, Organisation and Application name the profile in the
	// portal.
	ProfileID    string `json:"profile_id,omitempty"`
	Organisation string `json:"organisation,omitempty"`
	Application  string `json:"application,omitempty"`
	// Entered is the profile as the superuser entered it (for a recreate
	// task: the values to enter, the professional address among them);
	// SignedIn the data of the login that redeemed the code. Hostile
	// values from a mail: escape them before showing them.
	Entered  Person `json:"entered"`
	SignedIn Person `json:"signed_in"`
	// Urgent is true for a deactivation that cannot wait (wrong person).
	Urgent bool `json:"urgent,omitempty"`
	// Where and Steps say in the mailbox's language where to go and what
	// to do, in order (the SpiGes support guide's steps).
	Where string   `json:"where"`
	Steps []string `json:"steps"`
	// Cause is what opened the task: the mail id of the notice, or
	// "decision" for a person's decision (`cases decide`).
	Cause string    `json:"cause"`
	State TaskState `json:"state"`
	// DryRun is true when the service runs with actions.dry_run: the task
	// is recorded for review, nobody is asked to do it.
	DryRun  bool      `json:"dry_run,omitempty"`
	Created time.Time `json:"created"`
	// Done is set once the task is closed.
	Done *TaskDone `json:"done,omitempty"`
}

// TaskDone closes a task: the payload of TypeTaskDone.
type TaskDone struct {
	Task string `json:"task"`
	// By is who did it (a person's name, or the system that did it); Note
	// anything they said.
	By   string    `json:"by"`
	Note string    `json:"note,omitempty"`
	At   time.Time `json:"at"`
}

// TaskCreatedID and TaskDoneID are the event ids of a task's events: one
// of each per task (the stream drops a re-publication within its
// duplicate window, and the stage recognises a later one by the task's
// state).
func TaskCreatedID(task string) string { return "task-created-" + task }

// TaskDoneID: see TaskCreatedID.
func TaskDoneID(task string) string { return "task-done-" + task }
