package lattice

import (
	"fmt"
	"slices"
	"sync"

	"github.com/aura-p2p/aura/internal/core"
)

// CvCoordinator replicates a state-based (convergent) CRDT: replicas exchange
// whole states and join them. It is safe for concurrent use; functions passed
// to Update run under its lock and must not call back into it.
type CvCoordinator[T Join[T]] struct {
	mu    sync.Mutex
	state T
}

// NewCvCoordinator starts from initial (e.g. a persisted state, or bottom).
func NewCvCoordinator[T Join[T]](initial T) *CvCoordinator[T] {
	return &CvCoordinator[T]{state: initial}
}

// State returns the current state.
func (c *CvCoordinator[T]) State() T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Merge joins a remote state in and returns the result.
func (c *CvCoordinator[T]) Merge(remote T) T {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state = c.state.Join(remote)
	return c.state
}

// Update applies a local change. fn may return a new state or a delta; either
// way it is joined, so an update can only move the state up the lattice. On
// error the state is unchanged.
func (c *CvCoordinator[T]) Update(fn func(T) (T, error)) (T, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := fn(c.state)
	if err != nil {
		return c.state, err
	}
	c.state = c.state.Join(d)
	return c.state, nil
}

// DeltaCoordinator replicates a delta-state CRDT. Local mutators return
// deltas, which are joined into the state and queued for shipping; received
// deltas are joined in. Both kinds are kept as pending deltas on top of a
// checkpoint until threshold of them have accumulated, then folded into the
// checkpoint: the daemon persists the checkpoint and replays only the facts
// after it on restart, so the threshold trades write volume for replay time.
// State is always Checkpoint joined with all PendingDeltas.
//
// It is safe for concurrent use; functions passed to Update run under its
// lock and must not call back into it.
type DeltaCoordinator[T Join[T]] struct {
	mu         sync.Mutex
	threshold  int
	checkpoint T
	state      T
	pending    []T
	outbox     []T
}

// NewDeltaCoordinator starts from checkpoint and folds pending deltas into it
// after every threshold deltas (threshold ≥ 1).
func NewDeltaCoordinator[T Join[T]](checkpoint T, threshold int) (*DeltaCoordinator[T], error) {
	if threshold < 1 {
		return nil, fmt.Errorf("delta coordinator: compaction threshold %d < 1: %w", threshold, core.ErrInvalidArgument)
	}
	return &DeltaCoordinator[T]{threshold: threshold, checkpoint: checkpoint, state: checkpoint}, nil
}

// Update runs a delta mutator on the current state, joins the delta in,
// queues it for shipping and returns it. On error nothing changes.
func (c *DeltaCoordinator[T]) Update(mutate func(T) (T, error)) (T, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := mutate(c.state)
	if err != nil {
		var zero T
		return zero, err
	}
	c.outbox = append(c.outbox, d)
	c.add(d)
	return d, nil
}

// ApplyDelta joins a delta received from a peer (or replayed from the
// journal). Duplicates and any order are fine: joins are idempotent and
// commutative. Received deltas are not re-shipped.
func (c *DeltaCoordinator[T]) ApplyDelta(d T) T {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.add(d)
	return c.state
}

// Merge joins a whole remote state, as in state-based sync; a state is a
// delta too.
func (c *DeltaCoordinator[T]) Merge(remote T) T { return c.ApplyDelta(remote) }

func (c *DeltaCoordinator[T]) add(d T) {
	c.state = c.state.Join(d)
	c.pending = append(c.pending, d)
	if len(c.pending) >= c.threshold {
		c.compact()
	}
}

func (c *DeltaCoordinator[T]) compact() {
	// state already equals checkpoint ⊔ pending; folding is just adopting it.
	c.checkpoint = c.state
	c.pending = nil
}

// Compact folds the pending deltas into the checkpoint now.
func (c *DeltaCoordinator[T]) Compact() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.compact()
}

// State returns the current state.
func (c *DeltaCoordinator[T]) State() T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Checkpoint returns the state as of the last compaction.
func (c *DeltaCoordinator[T]) Checkpoint() T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checkpoint
}

// PendingDeltas returns the deltas applied since the last compaction, oldest
// first.
func (c *DeltaCoordinator[T]) PendingDeltas() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.pending)
}

// DrainOutbox returns the local deltas not yet shipped, oldest first, and
// forgets them. The caller owns delivery: if shipping fails it can ship the
// whole state (or these deltas again) later.
func (c *DeltaCoordinator[T]) DrainOutbox() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.outbox
	c.outbox = nil
	return out
}

// MvCoordinator holds a meet-semilattice constraint (capabilities, limits)
// that can only be refined: every change is met with the current state, so
// the state never widens. It is safe for concurrent use; functions passed to
// Update run under its lock and must not call back into it.
type MvCoordinator[T Meet[T]] struct {
	mu    sync.Mutex
	state T
}

// NewMvCoordinator starts from initial (often Top).
func NewMvCoordinator[T Meet[T]](initial T) *MvCoordinator[T] {
	return &MvCoordinator[T]{state: initial}
}

// State returns the current constraint.
func (c *MvCoordinator[T]) State() T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Refine meets the state with another constraint and returns the result.
func (c *MvCoordinator[T]) Refine(other T) T {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state = c.state.Meet(other)
	return c.state
}

// Update meets the state with what fn returns; whatever fn returns, the
// result is no wider than before. On error the state is unchanged.
func (c *MvCoordinator[T]) Update(fn func(T) (T, error)) (T, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := fn(c.state)
	if err != nil {
		return c.state, err
	}
	c.state = c.state.Meet(n)
	return c.state, nil
}
