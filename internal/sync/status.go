package sync

import (
	"time"

	"github.com/aura-p2p/aura/internal/core"
)

// Mode is how a session reconciled.
type Mode string

// Modes of a session.
const (
	// ModeEqual: the root fingerprints matched; nothing to do.
	ModeEqual Mode = "equal"
	// ModeSketch: coded symbols (rateless IBLT) found the difference.
	ModeSketch Mode = "sketch"
	// ModeRange: range-based reconciliation found it (large difference, or
	// the sketch ran out).
	ModeRange Mode = "range"
	// ModeFull: one side had nothing; the other sent all it has.
	ModeFull Mode = "full"
)

// Phase is where a session is.
type Phase string

// Phases of a session, in order.
const (
	PhaseReconciling  Phase = "reconciling"
	PhaseTransferring Phase = "transferring"
	PhaseDone         Phase = "done"
	PhaseFailed       Phase = "failed"
)

// Role is which side of a session this device was.
type Role string

// Roles.
const (
	RoleInitiator Role = "initiator"
	RoleResponder Role = "responder"
)

// PeerStatus is what this device knows of its reconciliations of one
// namespace with one peer: the last session and running totals since start.
type PeerStatus struct {
	Peer      core.DeviceID
	Namespace core.Namespace
	Context   core.ContextID

	LastStarted, LastFinished time.Time
	LastMode                  Mode
	LastRole                  Role
	LastRounds                int
	// LastError is the typed reason the last session failed ("" if it
	// succeeded), e.g. "timeout", "malformed", "inconsistent".
	LastError string

	Sessions, Failures uint64
	FactsIn, FactsOut  uint64
	BytesIn, BytesOut  uint64
	// Refused counts facts from this peer that failed verification (bad
	// signature, not a member, invalid): counted against it.
	Refused uint64
}

// Progress reports a running session; the last report of a session has
// Phase done or failed.
type Progress struct {
	Peer      core.DeviceID
	Namespace core.Namespace
	Context   core.ContextID
	Phase     Phase
	Mode      Mode
	Rounds    int
	// FactsExpected is how many facts this device has learned it lacks and
	// is waiting for (0 until the difference is known).
	FactsIn, FactsOut, FactsExpected uint64
	BytesIn, BytesOut                uint64
	// Err is the typed reason of a failure.
	Err string
}
