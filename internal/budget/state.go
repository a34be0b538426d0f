package budget

import (
	"fmt"

	"github.com/aura-p2p/aura/internal/core"
)

// Key names one flow budget: what this device may send Peer in Context (and,
// on the receive side, what Peer may send this device there).
type Key struct {
	Context core.ContextID
	Peer    core.DeviceID
}

func (k Key) String() string { return k.Context.String() + "/" + k.Peer.String() }

// State is one (context, peer) budget in a budget period, named by its first
// epoch (Epoch). It is a join-semilattice ordered lexicographically by epoch
// first:
//
//   - a higher epoch wins outright, so the spend of an old epoch never leaks
//     into a newer one (Aura's epoch-blind max/max/min merge did exactly that);
//   - within one epoch, spent joins by max (charges only grow) and limit by
//     meet (min), so merging never widens a budget.
//
// The zero State is bottom: it carries no information, and as a budget it
// denies (limit 0). Joining it with x gives x. Among non-zero states the join
// is the lexicographic one above; adjoining a fresh bottom to a semilattice
// keeps it a semilattice, which the property tests check.
//
// States are values; no method mutates its receiver.
type State struct {
	Limit uint64
	Spent uint64
	Epoch core.Epoch
}

// Join returns the least upper bound of s and o.
func (s State) Join(o State) State {
	switch {
	case s == State{}:
		return o
	case o == State{}:
		return s
	case s.Epoch > o.Epoch:
		return s
	case o.Epoch > s.Epoch:
		return o
	}
	return State{Limit: min(s.Limit, o.Limit), Spent: max(s.Spent, o.Spent), Epoch: s.Epoch}
}

// Headroom is limit ⊖ spent: what may still be charged this epoch. A budget
// with no limit (the zero state included) has none.
func (s State) Headroom() uint64 {
	if s.Spent >= s.Limit {
		return 0
	}
	return s.Limit - s.Spent
}

// Charge returns the state after spending cost, or ErrExhausted if the
// charge does not fit: spent+cost > limit, or limit 0. Limit 0 denies even a
// zero-cost charge: it means "nothing may be sent", never "unbounded". The
// comparison is against the headroom, so no sum can overflow.
func (s State) Charge(cost uint64) (State, error) {
	if s.Limit == 0 {
		return s, fmt.Errorf("limit 0 denies every send: %w", ErrExhausted)
	}
	if s.Spent > s.Limit || cost > s.Limit-s.Spent {
		return s, fmt.Errorf("cost %d, headroom %d of %d: %w", cost, s.Headroom(), s.Limit, ErrExhausted)
	}
	s.Spent += cost
	return s, nil
}

// Rotate moves the budget to the period starting at epoch e, which
// replenishes it: a later period starts with nothing spent. An epoch that is not later changes nothing, so
// rotation never regresses.
func (s State) Rotate(e core.Epoch) State {
	if e <= s.Epoch {
		return s
	}
	return State{Limit: s.Limit, Spent: 0, Epoch: e}
}
