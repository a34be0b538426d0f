package crdt

import (
	"encoding/binary"
	"fmt"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/journal/lattice"
)

// ReducerName is the journal reducer that holds object states.
const ReducerName = "crdt.objects"

// stateKey partitions state by name, then kind: name ‖ 0x00 ‖ kind. Names have
// no control characters, so one name's kinds sort together, before any longer
// name that shares its prefix.
func stateKey(name string, k Kind) []byte {
	return append(append([]byte(name), 0), byte(k))
}

func namePrefix(name string) []byte { return append([]byte(name), 0) }

const stateVersion = 1

// objectState is one (name, kind)'s reduced state: which fact created it, how
// many updates it has folded in, and the lattice value.
type objectState struct {
	kind    Kind
	first   journal.FactKey
	updates uint64
	value   []byte // encoded lattice state of kind
}

// encode: version(1) kind(1) first lamport(8) first id(32) updates(8) value.
func (s *objectState) encode() []byte {
	b := make([]byte, 0, 50+len(s.value))
	b = append(b, stateVersion, byte(s.kind))
	b = binary.BigEndian.AppendUint64(b, s.first.Lamport)
	b = append(b, s.first.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, s.updates)
	return append(b, s.value...)
}

func decodeState(b []byte) (objectState, error) {
	if len(b) < 50 || b[0] != stateVersion {
		return objectState{}, fmt.Errorf("crdt object state: %w", core.ErrInternal)
	}
	s := objectState{kind: Kind(b[1]), updates: binary.BigEndian.Uint64(b[42:])}
	s.first.Lamport = binary.BigEndian.Uint64(b[2:])
	copy(s.first.ID[:], b[10:42])
	s.value = b[50:]
	return s, nil
}

// Reducer returns the journal reducer for object facts. Every step is a join
// (or an exactly-once sum), so it is order-insensitive.
func Reducer() journal.Reducer { return reducer{} }

type reducer struct{}

func (reducer) Name() string { return ReducerName }

func (reducer) Handles(t string) bool { _, ok := kindOfType(t); return ok }

func (reducer) Commutative() bool { return true }

func (reducer) Key(f *journal.SignedFact) ([]byte, error) {
	u, err := decodeUpdate(f.Payload)
	if err != nil {
		return nil, err
	}
	return stateKey(u.name, u.op.Kind()), nil
}

func (reducer) Apply(cur []byte, f *journal.SignedFact) ([]byte, error) {
	u, err := decodeUpdate(f.Payload)
	if err != nil {
		return nil, err
	}
	s := objectState{kind: u.op.Kind(), first: f.Key()}
	if cur != nil {
		if s, err = decodeState(cur); err != nil {
			return nil, err
		}
		if f.Key().Less(s.first) {
			s.first = f.Key()
		}
	}
	s.updates++
	if s.value, err = joinDelta(s.kind, s.value, u, lattice.Device(f.Author)); err != nil {
		return nil, err
	}
	return s.encode(), nil
}

// joinDelta folds one update into an encoded lattice state.
func joinDelta(k Kind, state []byte, u update, author lattice.Device) ([]byte, error) {
	switch k {
	case KindCounter:
		c, err := decodeOrBottom[counterLat](state)
		if err != nil {
			return nil, err
		}
		d, err := c.Add(author, u.amount)
		if err != nil {
			return nil, err
		}
		return c.Join(d).MarshalBinary()
	case KindRegister:
		return joinEncoded[registerLat](state, u.delta)
	case KindSet:
		return joinEncoded[setLat](state, u.delta)
	case KindMap:
		return joinEncoded[mapLat](state, u.delta)
	}
	return nil, fmt.Errorf("kind %d: %w", k, core.ErrInvalidArgument)
}

type codecJoin[T any] interface {
	lattice.Join[T]
	lattice.Codec[T]
	MarshalBinary() ([]byte, error)
}

// decodeOrBottom decodes a stored lattice value; no bytes means bottom (a
// new object).
func decodeOrBottom[T lattice.Codec[T]](b []byte) (T, error) {
	var zero T
	if len(b) == 0 {
		return zero, nil
	}
	return zero.DecodeBinary(b)
}

func joinEncoded[T codecJoin[T]](state, delta []byte) ([]byte, error) {
	var zero T
	s, err := decodeOrBottom[T](state)
	if err != nil {
		return nil, err
	}
	d, err := zero.DecodeBinary(delta)
	if err != nil {
		return nil, err
	}
	return s.Join(d).MarshalBinary()
}

// Validators check object facts before they are stored: the payload decodes,
// matches its fact type, and a register write is stamped with the fact's own
// lamport and author.
func Validators() map[string]journal.Validator {
	v := func(f *journal.SignedFact) error {
		u, err := decodeUpdate(f.Payload)
		if err != nil {
			return err
		}
		if typeOfKind[u.op.Kind()] != f.TypeID {
			return fmt.Errorf("%s fact carries a %s operation: %w", f.TypeID, u.op.Kind(), core.ErrInvalidArgument)
		}
		switch u.op.Kind() {
		case KindRegister:
			r, err := registerLat{}.DecodeBinary(u.delta)
			if err != nil {
				return err
			}
			ts, ok := r.Timestamp()
			if !ok || ts.Lamport != f.Lamport || ts.Replica != lattice.Device(f.Author) {
				return fmt.Errorf("register write not stamped with its fact's lamport and author: %w", core.ErrInvalidArgument)
			}
		case KindSet:
			_, err = setLat{}.DecodeBinary(u.delta)
		case KindMap:
			_, err = mapLat{}.DecodeBinary(u.delta)
		}
		return err
	}
	out := map[string]journal.Validator{}
	for _, t := range typeOfKind {
		out[t] = v
	}
	return out
}

// winner picks, among one name's states of several kinds, the one created
// first in (lamport, id) order.
func winner(states []objectState) (objectState, bool) {
	var best objectState
	found := false
	for _, s := range states {
		if !found || s.first.Less(best.first) {
			best, found = s, true
		}
	}
	return best, found
}
