package lattice

import (
	"fmt"
	"maps"
)

// GSet is a grow-only set joined by union. The zero value is the empty set.
type GSet[E Key[E]] struct {
	elems map[E]struct{}
}

// NewGSet returns the set of elems.
func NewGSet[E Key[E]](elems ...E) GSet[E] {
	if len(elems) == 0 {
		return GSet[E]{}
	}
	m := make(map[E]struct{}, len(elems))
	for _, e := range elems {
		m[e] = struct{}{}
	}
	return GSet[E]{elems: m}
}

// Bottom returns the empty set.
func (GSet[E]) Bottom() GSet[E] { return GSet[E]{} }

// Join returns the union.
func (s GSet[E]) Join(o GSet[E]) GSet[E] {
	if len(o.elems) == 0 {
		return s
	}
	if len(s.elems) == 0 {
		return o
	}
	out := make(map[E]struct{}, max(len(s.elems), len(o.elems)))
	maps.Copy(out, s.elems)
	maps.Copy(out, o.elems)
	return GSet[E]{elems: out}
}

// Equal reports whether both sets have the same elements.
func (s GSet[E]) Equal(o GSet[E]) bool { return maps.Equal(s.elems, o.elems) }

// Add returns the delta adding e.
func (s GSet[E]) Add(e E) GSet[E] { return NewGSet(e) }

// Contains reports whether e is in the set.
func (s GSet[E]) Contains(e E) bool { _, ok := s.elems[e]; return ok }

// Len returns the number of elements.
func (s GSet[E]) Len() int { return len(s.elems) }

// Elements returns the elements, sorted.
func (s GSet[E]) Elements() []E { return sortedKeys(s.elems) }

// AppendBinary appends the canonical encoding.
func (s GSet[E]) AppendBinary(dst []byte) ([]byte, error) {
	dst = appendHeader(dst, tagGSet)
	dst = appendUvarint(dst, uint64(len(s.elems)))
	for _, e := range s.Elements() {
		dst = e.AppendKey(dst)
	}
	return dst, nil
}

// MarshalBinary returns the canonical encoding.
func (s GSet[E]) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// DecodeBinary decodes a G-Set; the receiver is ignored.
func (GSet[E]) DecodeBinary(data []byte) (GSet[E], error) {
	r := reader{b: data}
	r.header(tagGSet, "g-set")
	keys := readSortedKeys[E](&r, "g-set")
	if err := r.end("g-set"); err != nil {
		return GSet[E]{}, err
	}
	return NewGSet(keys...), nil
}

// UnmarshalBinary decodes into s, replacing its contents.
func (s *GSet[E]) UnmarshalBinary(data []byte) error {
	v, err := s.DecodeBinary(data)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ORSet is an add-wins observed-remove set. Each add is tagged with a fresh
// dot; a remove kills only the dots its replica has observed, so an add
// concurrent with a remove survives, and an element can be removed and added
// again any number of times. The zero value is the empty set.
type ORSet[E Key[E], R Key[R]] struct {
	k kernel[E, R, struct{}]
}

func unitEq(struct{}, struct{}) bool { return true }

// Bottom returns the empty set with an empty causal context.
func (ORSet[E, R]) Bottom() ORSet[E, R] { return ORSet[E, R]{} }

// Join merges two replicas' states (or a state and a delta).
func (s ORSet[E, R]) Join(o ORSet[E, R]) ORSet[E, R] {
	return ORSet[E, R]{k: s.k.join(o.k, nil)}
}

// Equal compares elements, their dots and the causal context: two sets with
// the same elements but different histories are different lattice points.
func (s ORSet[E, R]) Equal(o ORSet[E, R]) bool { return s.k.equal(o.k, unitEq) }

// Add returns the delta with which replica r adds e. It errors only when r's
// dot counter is exhausted.
func (s ORSet[E, R]) Add(r R, e E) (ORSet[E, R], error) {
	k, err := s.k.write(r, e, struct{}{})
	if err != nil {
		return ORSet[E, R]{}, fmt.Errorf("or-set add: %w", err)
	}
	return ORSet[E, R]{k: k}, nil
}

// Remove returns the delta that removes the adds of e observed in s. It is
// bottom when e is absent.
func (s ORSet[E, R]) Remove(e E) ORSet[E, R] { return ORSet[E, R]{k: s.k.remove(e)} }

// Contains reports whether e is in the set.
func (s ORSet[E, R]) Contains(e E) bool { return len(s.k.entries[e]) > 0 }

// Len returns the number of elements.
func (s ORSet[E, R]) Len() int { return len(s.k.entries) }

// Elements returns the elements, sorted.
func (s ORSet[E, R]) Elements() []E { return s.k.keys() }

// AppendBinary appends the canonical encoding.
func (s ORSet[E, R]) AppendBinary(dst []byte) ([]byte, error) {
	dst = appendHeader(dst, tagORSet)
	return s.k.appendTo(dst, func(b []byte, _ struct{}) ([]byte, error) { return b, nil })
}

// MarshalBinary returns the canonical encoding.
func (s ORSet[E, R]) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// DecodeBinary decodes an OR-Set; the receiver is ignored.
func (ORSet[E, R]) DecodeBinary(data []byte) (ORSet[E, R], error) {
	r := reader{b: data}
	r.header(tagORSet, "or-set")
	k := readKernel[E, R](&r, func(*reader) struct{} { return struct{}{} })
	if err := r.end("or-set"); err != nil {
		return ORSet[E, R]{}, err
	}
	return ORSet[E, R]{k: k}, nil
}

// UnmarshalBinary decodes into s, replacing its contents.
func (s *ORSet[E, R]) UnmarshalBinary(data []byte) error {
	v, err := s.DecodeBinary(data)
	if err != nil {
		return err
	}
	*s = v
	return nil
}
