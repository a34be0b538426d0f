package account

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/tree"
)

// Re-proposal. Among sibling ops the highest OpID wins, so a device's op can
// lose to another device's made on the same state at the same time, or be
// left off the winning chain when a higher op reroutes it. What the
// person asked for must not vanish with it: the author makes the op again on
// the winning state when it still means something there (an UpdatePath
// always does; a removal while the device is still in the tree; an addition
// while it is not yet), and records what became of it, so tree show lists a
// superseded op with the op that replaced it, or why none did. An addition
// or removal made again comes with this device's update path, which gives
// an added device the keys (its welcome was for the state that lost) and
// keeps a removed one out of them.

var (
	subReproposed = []byte("reproposed") // own lost op id → reproposal
	// subRemovals: own RemoveLeaf op id → the device it removes, for
	// making it again when its parent state left the chain (the op names
	// only a leaf of a state this device may no longer be able to name).
	subRemovals = []byte("removals")
)

// removalStep records which device the RemoveLeaf op id removes.
func removalStep(op *tree.Op, device core.DeviceID) (journal.TxOp, error) {
	id, err := op.ID()
	if err != nil {
		return nil, err
	}
	return func(tx *journal.ExtTx) error {
		b, err := keysBucket(tx, subRemovals)
		if err != nil {
			return err
		}
		return b.Put(id[:], device[:])
	}, nil
}

// removed is the device this device's RemoveLeaf op id removes, if it
// recorded it.
func (s *Service) removed(ctx context.Context, id tree.OpID) (core.DeviceID, bool, error) {
	var d core.DeviceID
	found := false
	err := s.o.Journal.ViewExt(ctx, extAccount, func(b *journal.ExtStore) error {
		if b == nil {
			return nil
		}
		if rb := b.SubIfExists(subRemovals); rb != nil {
			if v := rb.Get(id[:]); len(v) == len(d) {
				copy(d[:], v)
				found = true
			}
		}
		return nil
	})
	return d, found, err
}

// reproposal is what became of one of this device's superseded ops.
type reproposal struct {
	As  tree.OpID // the op made again in its place; zero when none was
	Why string    // why none was
}

const reproposalVersion = 1

func (p *reproposal) encode() []byte {
	b := append([]byte{reproposalVersion}, p.As[:]...)
	return append(b, p.Why...)
}

func decodeReproposal(b []byte) (*reproposal, error) {
	if len(b) < 1+len(tree.OpID{}) || b[0] != reproposalVersion {
		return nil, fmt.Errorf("stored re-proposal: %w", core.ErrDataLoss)
	}
	p := &reproposal{Why: string(b[1+len(tree.OpID{}):])}
	copy(p.As[:], b[1:])
	return p, nil
}

// maxReproposals bounds the re-proposals one refresh makes; each is one
// transaction, and the next refresh takes the rest.
const maxReproposals = 8

// repropose makes again, on the current state, this device's superseded ops
// it has not dealt with yet, one at a time, refreshing the tree after each.
// The caller holds s.mu.
func (s *Service) repropose(ctx context.Context, r *reduced) error {
	if err := s.loadKeys(ctx); err != nil {
		return err
	}
	if s.keys.baseline {
		if err := s.recordBaseline(ctx, r); err != nil {
			return err
		}
	}
	for range maxReproposals {
		done, err := s.reproposeOne(ctx, r)
		if err != nil || !done {
			return err
		}
		if _, err := s.own(ctx); err != nil {
			return err
		}
	}
	return nil
}

// lostOwn lists this device's ops that lost: superseded by a sibling, or
// pending although this device made them on the state it then held, so
// their parent left the winning chain (a higher op rerouted it).
func (s *Service) lostOwn(r *reduced) []tree.OpID {
	res := r.reducer.Result()
	var out []tree.OpID
	for _, sup := range res.Superseded {
		out = append(out, sup.ID)
	}
	out = append(out, res.Pending...)
	return slices.DeleteFunc(out, func(id tree.OpID) bool {
		f := r.facts[id]
		return f == nil || f.Author != s.self
	})
}

// recordBaseline records the ops this device lost before it made lost ops
// again (a release before this one) as not made again: each was lost long
// ago, and making it now could undo what was done since, such as adding a
// device that was removed on purpose.
func (s *Service) recordBaseline(ctx context.Context, r *reduced) error {
	lost := s.lostOwn(r)
	recs := make(map[tree.OpID]*reproposal, len(lost))
	for _, id := range lost {
		recs[id] = &reproposal{Why: "it lost before this device made lost ops again"}
	}
	_, err := s.o.Journal.Commit(ctx, journal.Txn{Ops: []journal.TxOp{func(tx *journal.ExtTx) error {
		b, err := keysBucket(tx, subReproposed)
		if err != nil {
			return err
		}
		for id, rec := range recs {
			if err := b.Put(id[:], rec.encode()); err != nil {
				return err
			}
		}
		return b.Put([]byte("baseline"), []byte{reproposalVersion})
	}}})
	if err != nil {
		return err
	}
	maps.Copy(s.keys.reproposed, recs)
	s.keys.baseline = false
	return nil
}

// reproposeOne deals with the first op of this device that lost and has no
// record yet; false when there is none.
func (s *Service) reproposeOne(ctx context.Context, r *reduced) (bool, error) {
	res := r.reducer.Result()
	by := map[tree.OpID]tree.OpID{}
	for _, sup := range res.Superseded {
		by[sup.ID] = sup.By
	}
	for _, id := range s.lostOwn(r) {
		if s.keys.reproposed[id] != nil {
			continue
		}
		rec, ops, steps, pend, err := s.reproposalOf(ctx, r, id)
		if err != nil {
			return false, err
		}
		if rec == nil {
			continue // not decidable yet: see reproposalOf
		}
		if pend != nil {
			defer pend.zero()
		}
		record := func(tx *journal.ExtTx) error {
			b, err := keysBucket(tx, subReproposed)
			if err != nil {
				return err
			}
			return b.Put(id[:], rec.encode())
		}
		if err := s.publish(ctx, ops, pend, append(steps, record)...); err != nil {
			return false, err
		}
		s.keys.reproposed[id] = rec
		s.o.Logger.Info("own tree op lost", zap.Stringer("op", id), zap.Stringer("superseded_by", by[id]),
			zap.Stringer("made_again_as", rec.As), zap.String("why_not", rec.Why))
		return true, nil
	}
	return false, nil
}

// reproposalOf is what to make again for this device's lost op id on the
// current state: the ops, further transaction steps, the pending keys of
// the update path among them, and the record. A nil record means the
// question cannot be answered yet: this device is not in the current
// state. That is most often a passing state, not a removal: the op that
// added this device lost too, and its inviter has yet to make it again
// (devices invite as soon as they joined, before they hear whether their
// own addition won). Recording "not made again" then would drop for good
// an addition the person asked for.
func (s *Service) reproposalOf(ctx context.Context, r *reduced, id tree.OpID) (*reproposal, []*tree.Op, []journal.TxOp, *epochKeys, error) {
	op := r.ops[id]
	none := func(why string) (*reproposal, []*tree.Op, []journal.TxOp, *epochKeys, error) {
		return &reproposal{Why: why}, nil, nil, nil, nil
	}
	st := r.reducer.State()
	me, in := st.FindDevice(s.self)
	if !in {
		return nil, nil, nil, nil, nil
	}
	var first *tree.Op
	var steps []journal.TxOp
	switch b := op.Body.(type) {
	case tree.UpdatePathBody:
		// A later update path of this device that applied already gave
		// it fresh keys: another would only add an epoch for every
		// device to catch up with. This is the update path that came
		// with an addition or removal made again, whose first op lost:
		// the op made again came with its own. A device's own ops are
		// made on its current state, so an own path applied at the lost
		// one's epoch or later was made after it.
		if anchor, at := s.anchorOf(r, r.reducer.Result().Applied); at >= 0 && r.ops[anchor].Parent.Epoch >= op.Parent.Epoch {
			return none("a later update path of this device applied")
		}
	case tree.RemoveLeafBody:
		target, ok := leafAt(r, op.Parent, b.Leaf)
		device := target.Device
		if !ok {
			d, found, err := s.removed(ctx, id)
			if err != nil {
				return nil, nil, nil, nil, err
			}
			if !found {
				return none("the device it removed is not known any more")
			}
			device = d
		}
		leaf, still := st.FindDevice(device)
		if !still {
			return none("the device is no longer in the tree")
		}
		first = &tree.Op{Parent: st.Name(), Author: me, Body: tree.RemoveLeafBody{Leaf: leaf}}
		step, err := removalStep(first, device)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		steps = append(steps, step)
	case tree.AddLeafBody:
		if _, already := st.FindDevice(b.Leaf.Device); already {
			return none("the device is in the tree already")
		}
		first = &tree.Op{Parent: st.Name(), Author: me, Body: b}
	default:
		return none(fmt.Sprintf("a %s is not made again on another state", op.Body.Kind()))
	}
	base := st
	var ops []*tree.Op
	if first != nil {
		next, err := s.attest(st, first)
		if err != nil {
			return none(err.Error())
		}
		ops, base = append(ops, first), next
	}
	update, pend, err := s.updateOp(r, base)
	if err != nil {
		return none(err.Error())
	}
	ops = append(ops, update)
	again, err := ops[0].ID()
	if err != nil {
		pend.zero()
		return nil, nil, nil, nil, err
	}
	return &reproposal{As: again}, ops, steps, pend, nil
}

// leafAt is leaf i of the winning chain's state named n.
func leafAt(r *reduced, n tree.StateName, i tree.LeafIndex) (tree.Leaf, bool) {
	for _, st := range r.reducer.Chain() {
		if st.Name() == n {
			return st.Leaf(i)
		}
	}
	return tree.Leaf{}, false
}
