package lattice

import "fmt"

// ORMap maps keys to nested join-semilattices (counters, registers, sets,
// maps) with observed-remove keys. Each update of a key is written under a
// fresh dot carrying the key's whole new value, superseding the dots the
// updater had seen; concurrent updates leave several dots, whose values are
// joined on read. Remove kills the observed dots only, so an update
// concurrent with a remove survives (update wins) and a removed key comes
// back empty, not with its old value, unless a concurrent update carried it.
// The zero value is the empty map.
type ORMap[K Key[K], V Nested[V], R Key[R]] struct {
	k kernel[K, R, V]
}

// Bottom returns the empty map with an empty causal context.
func (ORMap[K, V, R]) Bottom() ORMap[K, V, R] { return ORMap[K, V, R]{} }

// Join merges two replicas' states (or a state and a delta).
func (m ORMap[K, V, R]) Join(o ORMap[K, V, R]) ORMap[K, V, R] {
	return ORMap[K, V, R]{k: m.k.join(o.k, V.Join)}
}

// Equal compares keys, dots, nested values and the causal context.
func (m ORMap[K, V, R]) Equal(o ORMap[K, V, R]) bool { return m.k.equal(o.k, V.Equal) }

// Get returns key's value (the join of its live entries) and whether the key
// is present. An absent key reads as the zero value, V's bottom.
func (m ORMap[K, V, R]) Get(key K) (V, bool) {
	var v V
	es := m.k.entries[key]
	for _, e := range es {
		v = v.Join(e.val)
	}
	return v, len(es) > 0
}

// Update returns the delta with which replica r changes key. fn receives the
// current value (bottom if absent) and returns either a delta of it or a new
// value; the two are joined, so fn cannot shrink the value. The key is
// present after the delta is applied even if fn returns bottom.
func (m ORMap[K, V, R]) Update(r R, key K, fn func(V) (V, error)) (ORMap[K, V, R], error) {
	cur, _ := m.Get(key)
	dv, err := fn(cur)
	if err != nil {
		return ORMap[K, V, R]{}, fmt.Errorf("or-map update: %w", err)
	}
	k, err := m.k.write(r, key, cur.Join(dv))
	if err != nil {
		return ORMap[K, V, R]{}, fmt.Errorf("or-map update: %w", err)
	}
	return ORMap[K, V, R]{k: k}, nil
}

// Remove returns the delta that removes key as observed in m. It is bottom
// when key is absent.
func (m ORMap[K, V, R]) Remove(key K) ORMap[K, V, R] { return ORMap[K, V, R]{k: m.k.remove(key)} }

// Contains reports whether key is present.
func (m ORMap[K, V, R]) Contains(key K) bool { return len(m.k.entries[key]) > 0 }

// Len returns the number of present keys.
func (m ORMap[K, V, R]) Len() int { return len(m.k.entries) }

// Keys returns the present keys, sorted.
func (m ORMap[K, V, R]) Keys() []K { return m.k.keys() }

// AppendBinary appends the canonical encoding; nested values are
// length-prefixed in their own encoding.
func (m ORMap[K, V, R]) AppendBinary(dst []byte) ([]byte, error) {
	dst = appendHeader(dst, tagORMap)
	var scratch []byte
	return m.k.appendTo(dst, func(b []byte, v V) ([]byte, error) {
		var err error
		if scratch, err = v.AppendBinary(scratch[:0]); err != nil {
			return nil, fmt.Errorf("or-map value: %w", err)
		}
		b = appendUvarint(b, uint64(len(scratch)))
		return append(b, scratch...), nil
	})
}

// MarshalBinary returns the canonical encoding.
func (m ORMap[K, V, R]) MarshalBinary() ([]byte, error) { return m.AppendBinary(nil) }

// DecodeBinary decodes an OR-Map; the receiver is ignored.
func (ORMap[K, V, R]) DecodeBinary(data []byte) (ORMap[K, V, R], error) {
	r := reader{b: data}
	r.header(tagORMap, "or-map")
	k := readKernel[K, R](&r, func(r *reader) V {
		var v V
		b := r.take(r.length(1))
		if r.err != nil {
			return v
		}
		v, err := v.DecodeBinary(b)
		if err != nil {
			r.err = fmt.Errorf("nested value: %w", err)
		}
		return v
	})
	if err := r.end("or-map"); err != nil {
		return ORMap[K, V, R]{}, err
	}
	return ORMap[K, V, R]{k: k}, nil
}

// UnmarshalBinary decodes into m, replacing its contents.
func (m *ORMap[K, V, R]) UnmarshalBinary(data []byte) error {
	v, err := m.DecodeBinary(data)
	if err != nil {
		return err
	}
	*m = v
	return nil
}
