package config

import (
	"errors"
	"fmt"
	"strings"
)

// Error is one problem with a configuration. Load, LoadFile and Validate
// return either a single *Error or several joined with errors.Join (one
// per line of the message); errors.As finds the first.
//
// An Error never holds a secret: values of password and token are never
// put in a message, only the names of the files and variables they come
// from.
type Error struct {
	// File is the configuration file (set by LoadFile only).
	File string
	// Line is the line of the key or value at fault, 0 when the problem
	// is not tied to a line (a default value, or Validate on a Config
	// built in code).
	Line int
	// Key is the dotted path of the key at fault, such as "nats.replicas"
	// or "wording.languages[1]"; empty for the document as a whole.
	Key string
	// Msg says what is wrong, with the value and what is allowed.
	Msg string
	// Err is the underlying error, if any (reading a file, the wording's
	// own validation).
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	switch {
	case e.Msg != "":
		b.WriteString(e.Msg)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// problems collects the errors of a validation.
type problems []error

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, &Error{Key: key, Msg: fmt.Sprintf(format, args...)})
}

// addErr adds err, which may be a joined error of several *Error.
func (p *problems) addErr(err error) {
	if err != nil {
		*p = append(*p, err)
	}
}

func (p problems) err() error { return errors.Join(p...) }

// eachError calls f for every *Error in err, looking into joined errors.
func eachError(err error, f func(*Error)) {
	switch e := err.(type) {
	case *Error:
		f(e)
	case interface{ Unwrap() []error }:
		for _, x := range e.Unwrap() {
			eachError(x, f)
		}
	}
}
