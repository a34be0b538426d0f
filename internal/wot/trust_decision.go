package wot

import (
	"fmt"

	"github.com/aura-p2p/aura/internal/core"
)

// ErrTrustInsufficient: the computed trust is below what the request needs.
var ErrTrustInsufficient = fmt.Errorf("insufficient trust: %w", core.ErrPermissionDenied)

// Decision is the answer to an authorization request: Allow or Deny, each
// with its evidence.
type Decision interface {
	Allowed() bool
	// Evidence is the path the computed level rests on (empty if none).
	Evidence() Path
	isDecision()
}

// Allow grants the request: the viewer trusts the target at Level, at least
// the minimum asked, by the evidence Path.
type Allow struct {
	Level Level
	Path  Path
}

// Deny refuses the request. Computed is the best trust found (with its Path,
// if any), below Required.
type Deny struct {
	Reason   string
	Computed Level
	Required Level
	Path     Path
}

func (Allow) Allowed() bool    { return true }
func (a Allow) Evidence() Path { return a.Path }
func (Allow) isDecision()      {}

func (Deny) Allowed() bool    { return false }
func (d Deny) Evidence() Path { return d.Path }
func (Deny) isDecision()      {}

// Err is the refusal as an error wrapping ErrTrustInsufficient.
func (d Deny) Err() error { return fmt.Errorf("%s: %w", d.Reason, ErrTrustInsufficient) }

// Authorize decides whether from trusts to at least at min over at most
// maxHops edges (<= 0: DefaultMaxHops).
func (g *Graph) Authorize(from, to core.DeviceID, minLevel Level, maxHops int) Decision {
	if !minLevel.Valid() {
		return Deny{Reason: fmt.Sprintf("required %s is not a trust level", minLevel), Required: minLevel}
	}
	l, p := g.Compute(from, to, maxHops)
	if l >= minLevel {
		return Allow{Level: l, Path: p}
	}
	d := Deny{Computed: l, Required: minLevel, Path: p}
	if l == LevelNone {
		hops := maxHops
		if hops <= 0 {
			hops = DefaultMaxHops
		}
		d.Reason = fmt.Sprintf("device %s has no trust path to %s within %d hops; %s required", from, to, hops, minLevel)
	} else {
		d.Reason = fmt.Sprintf("device %s trusts %s at %s over %d hops; %s required", from, to, l, p.Hops(), minLevel)
	}
	return d
}
