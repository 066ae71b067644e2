package pipeline

import (
	"errors"
	"fmt"
)

// Permanent marks err as a failure that can never succeed however often the
// message is retried (malformed input, a rejected recipient): Run
// dead-letters the message at once. Permanent(nil) is nil. Errors are
// temporary unless marked; errors.Is and errors.As see through the mark.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	if IsPermanent(err) {
		return err
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent. A handler's panic counts as permanent too.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// panicError is what a recovered handler panic becomes (wrapped in
// Permanent).
type panicError struct{ value any }

func (e *panicError) Error() string { return fmt.Sprintf("handler panicked: %v", e.value) }

func isPanic(err error) bool {
	var p *panicError
	return errors.As(err, &p)
}
