package choreo

import (
	"fmt"
	"strings"

	"github.com/aura-p2p/aura/internal/core"
)

// Kinds of error. Every error this package returns wraps exactly one of them,
// and each wraps a core sentinel, so the RPC layer and auractl map them without
// knowing this package.
var (
	// ErrSyntax: the text is not in the language.
	ErrSyntax = fmt.Errorf("syntax error: %w", core.ErrInvalidArgument)
	// ErrIllFormed: the text parses but breaks a rule of the language
	// (undeclared role, self-message, unbound continue, bad annotation...).
	ErrIllFormed = fmt.Errorf("ill-formed protocol: %w", core.ErrInvalidArgument)
	// ErrNotRealizable: the protocol is well formed but some role cannot
	// tell what to do without knowledge it is never given.
	ErrNotRealizable = fmt.Errorf("protocol not realizable: %w", core.ErrInvalidArgument)
	// ErrUnknown: a protocol or role named by the caller does not exist.
	ErrUnknown = fmt.Errorf("unknown protocol or role: %w", core.ErrNotFound)
	// ErrViolation: a session machine was asked to take a step its local
	// type does not allow. For a receive this is the peer breaking the
	// protocol, and the session must be aborted.
	ErrViolation = fmt.Errorf("protocol violation: %w", core.ErrAborted)
)

// Pos is a position in protocol source: 1-based line, and 1-based column
// counted in characters (runes), as editors show them.
type Pos struct {
	Line, Col int
}

func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

// IsValid reports whether p points into a source text; positions of
// synthesised nodes are zero.
func (p Pos) IsValid() bool { return p.Line > 0 }

// Error is a problem at a place in the source. Its text is "line:col: message"
// so that a caller can prefix a file name and get the usual compiler format.
type Error struct {
	Pos  Pos
	Msg  string
	Kind error // ErrSyntax, ErrIllFormed or ErrNotRealizable
}

func (e *Error) Error() string {
	if !e.Pos.IsValid() {
		return e.Msg
	}
	return e.Pos.String() + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Kind }

func errorf(kind error, pos Pos, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...), Kind: kind}
}

// ViolationError is a step a session machine refused. The runtime reports it
// as the reason a session was aborted.
type ViolationError struct {
	Role     string   // the machine's role, "" if it was not told
	Got      Action   // the step that was attempted
	Expected []Action // what the local type allowed instead; empty once done
}

func (e *ViolationError) Error() string {
	var b strings.Builder
	b.WriteString("protocol violation")
	if e.Role != "" {
		b.WriteString(": role ")
		b.WriteString(e.Role)
	}
	b.WriteString(": ")
	b.WriteString(e.Got.String())
	b.WriteString(" is not allowed")
	if len(e.Expected) == 0 {
		b.WriteString(", the session has ended")
		return b.String()
	}
	b.WriteString(", expected ")
	for i, a := range e.Expected {
		if i > 0 {
			if i == len(e.Expected)-1 {
				b.WriteString(" or ")
			} else {
				b.WriteString(", ")
			}
		}
		b.WriteString(a.String())
	}
	return b.String()
}

func (e *ViolationError) Unwrap() error { return ErrViolation }
