package session

import (
	"fmt"
	"maps"
	"time"

	"github.com/aura-p2p/aura/internal/core"
)

// State is where a session is in its life.
type State uint8

const (
	StateRunning State = iota + 1
	StateCompleted
	StateAborted
)

func (s State) String() string {
	switch s {
	case StateRunning:
		return "running"
	case StateCompleted:
		return "completed"
	case StateAborted:
		return "aborted"
	}
	return fmt.Sprintf("state(%d)", s)
}

// AbortCode says why a session ended early. Codes travel in abort messages,
// so a participant records the same code as the device that gave up; their
// numbers are part of the wire format and never change meaning.
type AbortCode uint8

const (
	// AbortUnknown: a code this build does not know (a newer peer's).
	AbortUnknown AbortCode = iota
	// AbortViolation: a message the local type did not allow next.
	AbortViolation
	// AbortWrongSender: a message from a device not assigned to the role
	// it claims, or in the wrong context.
	AbortWrongSender
	// AbortUnknownSession: a message for a session the receiver does not
	// know (and that carried no header to join it).
	AbortUnknownSession
	// AbortUnknownProtocol: the receiver has no such protocol, or its text
	// differs (hash mismatch).
	AbortUnknownProtocol
	// AbortRefused: the receiver has no handler for its role, or the role
	// map is not acceptable.
	AbortRefused
	// AbortGuardDenied: the capability step refused a send (message type
	// not allowed, destination not a member of the context).
	AbortGuardDenied
	// AbortBudget: the flow budget refused a send.
	AbortBudget
	// AbortTimeout: a step took longer than the step timeout.
	AbortTimeout
	// AbortCancelled: the session was cancelled by its owner.
	AbortCancelled
	// AbortUnreachable: a send failed at the network: the peer vanished.
	AbortUnreachable
	// AbortHandler: the application handler failed.
	AbortHandler
	// AbortRestarted: the daemon restarted while the session ran.
	AbortRestarted
	// AbortShutdown: the daemon stopped while the session ran.
	AbortShutdown
	// AbortOverload: too many messages queued for the session.
	AbortOverload

	maxAbortCode = AbortOverload
)

var abortNames = [...]string{
	AbortUnknown:         "unknown",
	AbortViolation:       "violation",
	AbortWrongSender:     "wrong_sender",
	AbortUnknownSession:  "unknown_session",
	AbortUnknownProtocol: "unknown_protocol",
	AbortRefused:         "refused",
	AbortGuardDenied:     "guard_denied",
	AbortBudget:          "budget_exhausted",
	AbortTimeout:         "timeout",
	AbortCancelled:       "cancelled",
	AbortUnreachable:     "peer_unreachable",
	AbortHandler:         "handler_failed",
	AbortRestarted:       "daemon_restarted",
	AbortShutdown:        "shutdown",
	AbortOverload:        "overload",
}

func (c AbortCode) String() string {
	if int(c) < len(abortNames) {
		return abortNames[c]
	}
	return fmt.Sprintf("abort(%d)", c)
}

// ErrSessionAborted is what every abort reason wraps.
var ErrSessionAborted = fmt.Errorf("session aborted: %w", core.ErrAborted)

// AbortReason is a typed reason for an aborted session.
type AbortReason struct {
	Code AbortCode
	// By is the role that gave up: this device's role when it detected
	// the problem, the peer's role when a peer told us.
	By string
	// Remote is set when a peer's abort message told us.
	Remote bool
	Detail string
}

func (r *AbortReason) Error() string {
	s := "session aborted: " + r.Code.String()
	if r.By != "" {
		if r.Remote {
			s += " (reported by " + r.By + ")"
		} else {
			s += " (at " + r.By + ")"
		}
	}
	if r.Detail != "" {
		s += ": " + r.Detail
	}
	return s
}

// Unwrap makes every reason an ErrSessionAborted.
func (r *AbortReason) Unwrap() error { return ErrSessionAborted }

// StepDir says whether a logged step was sent or received.
type StepDir uint8

const (
	StepSent StepDir = iota + 1
	StepReceived
)

func (d StepDir) String() string {
	if d == StepSent {
		return "sent"
	}
	return "received"
}

// StepRecord is one message of the session, as this device saw it.
type StepRecord struct {
	At    time.Time
	Dir   StepDir
	Peer  string // the other role
	Label string
	// Branch is set on a send that decided a choice.
	Branch string
	Size   int
}

// maxStepLog bounds the step log of one session; a long loop keeps its
// latest steps (Steps still counts all).
const maxStepLog = 1000

// Session is a snapshot of one session on this device.
type Session struct {
	ID       SessionID
	Protocol string
	Hash     core.Hash
	Role     string // this device's role
	Roles    map[string]core.DeviceID
	// Context is the context every message is charged to; zero means each
	// pair of devices uses its link context.
	Context   core.ContextID
	Choices   []string
	Initiator bool
	State     State
	Reason    *AbortReason // set when aborted
	Started   time.Time
	Updated   time.Time
	Ended     time.Time
	Steps     int // messages sent and received
	Log       []StepRecord
}

// Done reports whether the session has ended.
func (s *Session) Done() bool { return s.State == StateCompleted || s.State == StateAborted }

func (s *Session) clone() Session {
	c := *s
	c.Roles = maps.Clone(s.Roles)
	c.Choices = append([]string(nil), s.Choices...)
	c.Log = append([]StepRecord(nil), s.Log...)
	if s.Reason != nil {
		r := *s.Reason
		c.Reason = &r
	}
	return c
}
