package lattice

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/aura-p2p/aura/internal/core"
)

// MaxRegister holds the largest value ever written. The zero value is bottom:
// unset, below every value.
type MaxRegister[V Key[V]] struct {
	val V
	set bool
}

// NewMaxRegister returns a register holding v.
func NewMaxRegister[V Key[V]](v V) MaxRegister[V] { return MaxRegister[V]{val: v, set: true} }

// Bottom returns the unset register.
func (MaxRegister[V]) Bottom() MaxRegister[V] { return MaxRegister[V]{} }

// Join keeps the larger value.
func (m MaxRegister[V]) Join(o MaxRegister[V]) MaxRegister[V] {
	if !o.set || (m.set && m.val.Compare(o.val) >= 0) {
		return m
	}
	return o
}

// Equal compares the values, and unset with unset.
func (m MaxRegister[V]) Equal(o MaxRegister[V]) bool { return m.set == o.set && m.val == o.val }

// Value returns the value and whether one was ever written.
func (m MaxRegister[V]) Value() (V, bool) { return m.val, m.set }

// Set returns the delta writing v; it has no effect unless v is larger.
func (m MaxRegister[V]) Set(v V) MaxRegister[V] { return NewMaxRegister(v) }

// AppendBinary appends the canonical encoding.
func (m MaxRegister[V]) AppendBinary(dst []byte) ([]byte, error) {
	return appendOptional(appendHeader(dst, tagMaxRegister), m.val, m.set), nil
}

// MarshalBinary returns the canonical encoding.
func (m MaxRegister[V]) MarshalBinary() ([]byte, error) { return m.AppendBinary(nil) }

// DecodeBinary decodes a max register; the receiver is ignored.
func (MaxRegister[V]) DecodeBinary(data []byte) (MaxRegister[V], error) {
	r := reader{b: data}
	r.header(tagMaxRegister, "max-register")
	v, set := readOptional[V](&r)
	if err := r.end("max-register"); err != nil {
		return MaxRegister[V]{}, err
	}
	return MaxRegister[V]{val: v, set: set}, nil
}

// UnmarshalBinary decodes into m, replacing its contents.
func (m *MaxRegister[V]) UnmarshalBinary(data []byte) error {
	v, err := m.DecodeBinary(data)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// MinRegister holds the smallest value ever written; it is a meet-semilattice
// (limits and quotas combine by min, so combining never widens). The zero
// value is Top: unset, no bound at all. Callers that must fail closed check
// the second result of Value.
type MinRegister[V Key[V]] struct {
	val V
	set bool
}

// NewMinRegister returns a register holding v.
func NewMinRegister[V Key[V]](v V) MinRegister[V] { return MinRegister[V]{val: v, set: true} }

// Top returns the unset register, the identity of Meet.
func (MinRegister[V]) Top() MinRegister[V] { return MinRegister[V]{} }

// Meet keeps the smaller value.
func (m MinRegister[V]) Meet(o MinRegister[V]) MinRegister[V] {
	if !o.set || (m.set && m.val.Compare(o.val) <= 0) {
		return m
	}
	return o
}

// Equal compares the values, and unset with unset.
func (m MinRegister[V]) Equal(o MinRegister[V]) bool { return m.set == o.set && m.val == o.val }

// Value returns the value and whether one was ever written.
func (m MinRegister[V]) Value() (V, bool) { return m.val, m.set }

// Set returns the delta writing v; it has no effect unless v is smaller.
func (m MinRegister[V]) Set(v V) MinRegister[V] { return NewMinRegister(v) }

// AppendBinary appends the canonical encoding.
func (m MinRegister[V]) AppendBinary(dst []byte) ([]byte, error) {
	return appendOptional(appendHeader(dst, tagMinRegister), m.val, m.set), nil
}

// MarshalBinary returns the canonical encoding.
func (m MinRegister[V]) MarshalBinary() ([]byte, error) { return m.AppendBinary(nil) }

// DecodeBinary decodes a min register; the receiver is ignored.
func (MinRegister[V]) DecodeBinary(data []byte) (MinRegister[V], error) {
	r := reader{b: data}
	r.header(tagMinRegister, "min-register")
	v, set := readOptional[V](&r)
	if err := r.end("min-register"); err != nil {
		return MinRegister[V]{}, err
	}
	return MinRegister[V]{val: v, set: set}, nil
}

// UnmarshalBinary decodes into m, replacing its contents.
func (m *MinRegister[V]) UnmarshalBinary(data []byte) error {
	v, err := m.DecodeBinary(data)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

func appendOptional[V Key[V]](dst []byte, v V, set bool) []byte {
	dst = appendBool(dst, set)
	if set {
		dst = v.AppendKey(dst)
	}
	return dst
}

func readOptional[V Key[V]](r *reader) (V, bool) {
	var v V
	if !r.bool() {
		return v, false
	}
	return readKey[V](r), true
}

// Timestamp orders LWW writes: Lamport first, then replica id, a total order
// that every replica computes the same way without a wall clock.
type Timestamp[R Key[R]] struct {
	Lamport uint64
	Replica R
}

// Compare orders by Lamport, then replica.
func (t Timestamp[R]) Compare(o Timestamp[R]) int {
	if c := cmp.Compare(t.Lamport, o.Lamport); c != 0 {
		return c
	}
	return t.Replica.Compare(o.Replica)
}

// LWWRegister is a last-writer-wins register: the write with the greatest
// Timestamp wins. Two writes with equal timestamps (only a misbehaving
// replica makes them) are ordered by value, so the join stays deterministic.
// The zero value is bottom: unset.
type LWWRegister[V Key[V], R Key[R]] struct {
	ts  Timestamp[R]
	val V
	set bool
}

// Bottom returns the unset register.
func (LWWRegister[V, R]) Bottom() LWWRegister[V, R] { return LWWRegister[V, R]{} }

func (l LWWRegister[V, R]) after(o LWWRegister[V, R]) bool {
	if c := l.ts.Compare(o.ts); c != 0 {
		return c > 0
	}
	return l.val.Compare(o.val) > 0
}

// Join keeps the later write.
func (l LWWRegister[V, R]) Join(o LWWRegister[V, R]) LWWRegister[V, R] {
	if !o.set || (l.set && !o.after(l)) {
		return l
	}
	return o
}

// Equal compares timestamp and value.
func (l LWWRegister[V, R]) Equal(o LWWRegister[V, R]) bool {
	return l.set == o.set && l.ts == o.ts && l.val == o.val
}

// Value returns the current value and whether one was ever written.
func (l LWWRegister[V, R]) Value() (V, bool) { return l.val, l.set }

// Timestamp returns the winning write's timestamp.
func (l LWWRegister[V, R]) Timestamp() (Timestamp[R], bool) { return l.ts, l.set }

// Set returns the delta with which replica r writes v, timestamped one
// Lamport tick after the current winner, so it wins over everything r has
// seen.
func (l LWWRegister[V, R]) Set(r R, v V) (LWWRegister[V, R], error) {
	if l.ts.Lamport == math.MaxUint64 {
		return LWWRegister[V, R]{}, fmt.Errorf("lww-register: lamport exhausted: %w", core.ErrFailedPrecondition)
	}
	return l.Assign(Timestamp[R]{Lamport: l.ts.Lamport + 1, Replica: r}, v), nil
}

// Assign returns the delta writing v at an externally chosen timestamp, e.g.
// the Lamport time of the fact that carries the write. A timestamp not above
// the current one loses the join and the write has no effect.
func (l LWWRegister[V, R]) Assign(ts Timestamp[R], v V) LWWRegister[V, R] {
	return LWWRegister[V, R]{ts: ts, val: v, set: true}
}

// AppendBinary appends the canonical encoding.
func (l LWWRegister[V, R]) AppendBinary(dst []byte) ([]byte, error) {
	dst = appendHeader(dst, tagLWWRegister)
	dst = appendBool(dst, l.set)
	if l.set {
		dst = appendUvarint(dst, l.ts.Lamport)
		dst = l.ts.Replica.AppendKey(dst)
		dst = l.val.AppendKey(dst)
	}
	return dst, nil
}

// MarshalBinary returns the canonical encoding.
func (l LWWRegister[V, R]) MarshalBinary() ([]byte, error) { return l.AppendBinary(nil) }

// DecodeBinary decodes an LWW register; the receiver is ignored.
func (LWWRegister[V, R]) DecodeBinary(data []byte) (LWWRegister[V, R], error) {
	r := reader{b: data}
	r.header(tagLWWRegister, "lww-register")
	var l LWWRegister[V, R]
	if l.set = r.bool(); l.set {
		l.ts.Lamport = r.uvarint()
		l.ts.Replica = readKey[R](&r)
		l.val = readKey[V](&r)
	}
	if err := r.end("lww-register"); err != nil {
		return LWWRegister[V, R]{}, err
	}
	return l, nil
}

// UnmarshalBinary decodes into l, replacing its contents.
func (l *LWWRegister[V, R]) UnmarshalBinary(data []byte) error {
	v, err := l.DecodeBinary(data)
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// MVRegister is a multi-value register: a write supersedes the writes its
// replica has seen, and concurrent writes are all kept until a later write
// supersedes them, so no write is silently lost. The zero value is bottom.
type MVRegister[V Key[V], R Key[R]] struct {
	es  []dotted[R, V] // sorted by dot
	ctx causalContext[R]
}

// Bottom returns the empty register with an empty causal context.
func (MVRegister[V, R]) Bottom() MVRegister[V, R] { return MVRegister[V, R]{} }

// maxVal resolves two values under one dot, which honest replicas never
// produce, deterministically.
func maxVal[V Key[V]](a, b V) V {
	if a.Compare(b) >= 0 {
		return a
	}
	return b
}

// Join merges two replicas' states (or a state and a delta).
func (m MVRegister[V, R]) Join(o MVRegister[V, R]) MVRegister[V, R] {
	if len(o.es) == 0 && o.ctx.isEmpty() {
		return m
	}
	if len(m.es) == 0 && m.ctx.isEmpty() {
		return o
	}
	return MVRegister[V, R]{es: joinDotted(m.es, m.ctx, o.es, o.ctx, maxVal[V]), ctx: m.ctx.union(o.ctx)}
}

// Equal compares entries and causal context.
func (m MVRegister[V, R]) Equal(o MVRegister[V, R]) bool {
	return m.ctx.equal(o.ctx) && slices.Equal(m.es, o.es)
}

// Values returns the concurrent values, sorted and without duplicates.
func (m MVRegister[V, R]) Values() []V {
	out := make([]V, 0, len(m.es))
	for _, e := range m.es {
		out = append(out, e.val)
	}
	slices.SortFunc(out, V.Compare)
	return slices.Compact(out)
}

// Set returns the delta with which replica r writes v, superseding every
// value in m.
func (m MVRegister[V, R]) Set(r R, v V) (MVRegister[V, R], error) {
	d, err := m.ctx.next(r)
	if err != nil {
		return MVRegister[V, R]{}, fmt.Errorf("mv-register: %w", err)
	}
	return MVRegister[V, R]{
		es:  []dotted[R, V]{{dot: d, val: v}},
		ctx: contextOf(append(dotsOf(m.es), d)),
	}, nil
}

// Clear returns the delta that removes every value in m; concurrent writes
// survive it.
func (m MVRegister[V, R]) Clear() MVRegister[V, R] {
	if len(m.es) == 0 {
		return MVRegister[V, R]{}
	}
	return MVRegister[V, R]{ctx: contextOf(dotsOf(m.es))}
}

// AppendBinary appends the canonical encoding.
func (m MVRegister[V, R]) AppendBinary(dst []byte) ([]byte, error) {
	dst = appendHeader(dst, tagMVRegister)
	dst = m.ctx.appendTo(dst)
	if len(m.es) == 0 {
		return appendUvarint(dst, 0), nil
	}
	return appendDotted(dst, m.es, func(b []byte, v V) ([]byte, error) { return v.AppendKey(b), nil })
}

// MarshalBinary returns the canonical encoding.
func (m MVRegister[V, R]) MarshalBinary() ([]byte, error) { return m.AppendBinary(nil) }

// DecodeBinary decodes a multi-value register; the receiver is ignored.
func (MVRegister[V, R]) DecodeBinary(data []byte) (MVRegister[V, R], error) {
	r := reader{b: data}
	r.header(tagMVRegister, "mv-register")
	ctx := readContext[R](&r)
	var es []dotted[R, V]
	if len(r.b) > 0 && r.b[0] == 0 {
		r.b = r.b[1:]
	} else {
		es = readDotted(&r, ctx, readKey[V])
	}
	if err := r.end("mv-register"); err != nil {
		return MVRegister[V, R]{}, err
	}
	return MVRegister[V, R]{es: es, ctx: ctx}, nil
}

// UnmarshalBinary decodes into m, replacing its contents.
func (m *MVRegister[V, R]) UnmarshalBinary(data []byte) error {
	v, err := m.DecodeBinary(data)
	if err != nil {
		return err
	}
	*m = v
	return nil
}
