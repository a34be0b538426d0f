package lattice

import (
	"fmt"
	"maps"
	"math"
	"math/bits"
	"slices"

	"github.com/aura-p2p/aura/internal/core"
)

// sortedKeys returns m's keys in Key order, so iteration never depends on Go
// map order.
func sortedKeys[K Key[K], V any](m map[K]V) []K {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, K.Compare)
	return keys
}

// GCounter is a grow-only counter: one monotonic count per replica, joined by
// per-replica max. The zero value is bottom (zero).
type GCounter[R Key[R]] struct {
	counts map[R]uint64 // no zero entries, so equal counters have equal maps
}

// Bottom returns the zero counter.
func (GCounter[R]) Bottom() GCounter[R] { return GCounter[R]{} }

// Join takes the per-replica maximum.
func (c GCounter[R]) Join(o GCounter[R]) GCounter[R] {
	if len(o.counts) == 0 {
		return c
	}
	if len(c.counts) == 0 {
		return o
	}
	out := make(map[R]uint64, max(len(c.counts), len(o.counts)))
	maps.Copy(out, c.counts)
	for r, n := range o.counts {
		if n > out[r] {
			out[r] = n
		}
	}
	return GCounter[R]{counts: out}
}

// Equal reports whether both counters hold the same per-replica counts.
func (c GCounter[R]) Equal(o GCounter[R]) bool { return maps.Equal(c.counts, o.counts) }

// Count returns replica r's contribution.
func (c GCounter[R]) Count(r R) uint64 { return c.counts[r] }

// Replicas returns the replicas with a non-zero count, sorted.
func (c GCounter[R]) Replicas() []R { return sortedKeys(c.counts) }

// Value returns the sum of all counts, saturating at math.MaxUint64: each
// replica's count fits in a uint64, but their sum need not.
func (c GCounter[R]) Value() uint64 {
	hi, lo := sum128(c.counts)
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}

func sum128[R comparable](m map[R]uint64) (hi, lo uint64) {
	for _, n := range m {
		var carry uint64
		lo, carry = bits.Add64(lo, n, 0)
		hi += carry
	}
	return hi, lo
}

// Inc returns the delta that adds n to replica r's count. Only r itself may
// increment its entry; a count that would pass math.MaxUint64 is refused
// rather than wrapped, since wrapping would look like a smaller count and be
// lost by the max-join.
func (c GCounter[R]) Inc(r R, n uint64) (GCounter[R], error) {
	if n == 0 {
		return GCounter[R]{}, nil
	}
	cur := c.counts[r]
	if cur > math.MaxUint64-n {
		return GCounter[R]{}, fmt.Errorf("g-counter: count %d + %d overflows: %w", cur, n, core.ErrFailedPrecondition)
	}
	return GCounter[R]{counts: map[R]uint64{r: cur + n}}, nil
}

// AppendBinary appends the canonical encoding.
func (c GCounter[R]) AppendBinary(dst []byte) ([]byte, error) {
	dst = appendHeader(dst, tagGCounter)
	return appendCounts(dst, c.counts), nil
}

// MarshalBinary returns the canonical encoding.
func (c GCounter[R]) MarshalBinary() ([]byte, error) { return c.AppendBinary(nil) }

// DecodeBinary decodes a G-Counter; the receiver is ignored.
func (GCounter[R]) DecodeBinary(data []byte) (GCounter[R], error) {
	r := reader{b: data}
	r.header(tagGCounter, "g-counter")
	m := readCounts[R](&r)
	if err := r.end("g-counter"); err != nil {
		return GCounter[R]{}, err
	}
	return GCounter[R]{counts: m}, nil
}

// UnmarshalBinary decodes into c, replacing its contents.
func (c *GCounter[R]) UnmarshalBinary(data []byte) error {
	v, err := c.DecodeBinary(data)
	if err != nil {
		return err
	}
	*c = v
	return nil
}

func appendCounts[R Key[R]](dst []byte, m map[R]uint64) []byte {
	dst = appendUvarint(dst, uint64(len(m)))
	for _, r := range sortedKeys(m) {
		dst = r.AppendKey(dst)
		dst = appendUvarint(dst, m[r])
	}
	return dst
}

func readCounts[R Key[R]](r *reader) map[R]uint64 {
	n := r.length(2)
	if n == 0 {
		return nil
	}
	m := make(map[R]uint64, n)
	var prev R
	for i := 0; i < n && r.err == nil; i++ {
		k := readKey[R](r)
		v := r.uvarint()
		if r.err != nil {
			break
		}
		if i > 0 && prev.Compare(k) >= 0 {
			r.fail("counter replicas not strictly increasing")
		}
		if v == 0 {
			r.fail("zero count stored")
		}
		m[k] = v
		prev = k
	}
	return m
}

// PNCounter is a counter that can go down: a pair of G-Counters, increments
// and decrements, whose difference is the value. The zero value is bottom.
type PNCounter[R Key[R]] struct {
	p, n GCounter[R]
}

// Bottom returns the zero counter.
func (PNCounter[R]) Bottom() PNCounter[R] { return PNCounter[R]{} }

// Join joins both halves.
func (c PNCounter[R]) Join(o PNCounter[R]) PNCounter[R] {
	return PNCounter[R]{p: c.p.Join(o.p), n: c.n.Join(o.n)}
}

// Equal compares both halves.
func (c PNCounter[R]) Equal(o PNCounter[R]) bool { return c.p.Equal(o.p) && c.n.Equal(o.n) }

// Increments and Decrements expose the two halves, e.g. for display.
func (c PNCounter[R]) Increments() GCounter[R] { return c.p }

// Decrements returns the G-Counter of decrements.
func (c PNCounter[R]) Decrements() GCounter[R] { return c.n }

// Value returns increments minus decrements, saturated to the int64 range.
// The exact difference is computed in 128 bits first, so saturation happens
// only when the true value is out of range, never on an intermediate sum.
func (c PNCounter[R]) Value() int64 {
	ph, pl := sum128(c.p.counts)
	nh, nl := sum128(c.n.counts)
	lo, borrow := bits.Sub64(pl, nl, 0)
	hi, _ := bits.Sub64(ph, nh, borrow)
	// Each sum is at most len(map)·2^64, far below 2^127, so the 128-bit
	// two's-complement difference is exact and hi carries its sign.
	switch {
	case int64(hi) > 0 || (hi == 0 && lo > math.MaxInt64):
		return math.MaxInt64
	case int64(hi) < -1 || (hi == math.MaxUint64 && lo < 1<<63):
		return math.MinInt64
	}
	return int64(lo)
}

// Inc returns the delta adding n at replica r.
func (c PNCounter[R]) Inc(r R, n uint64) (PNCounter[R], error) {
	d, err := c.p.Inc(r, n)
	if err != nil {
		return PNCounter[R]{}, fmt.Errorf("pn-counter: %w", err)
	}
	return PNCounter[R]{p: d}, nil
}

// Dec returns the delta subtracting n at replica r.
func (c PNCounter[R]) Dec(r R, n uint64) (PNCounter[R], error) {
	d, err := c.n.Inc(r, n)
	if err != nil {
		return PNCounter[R]{}, fmt.Errorf("pn-counter: %w", err)
	}
	return PNCounter[R]{n: d}, nil
}

// Add returns the delta adding by (negative to subtract) at replica r.
func (c PNCounter[R]) Add(r R, by int64) (PNCounter[R], error) {
	if by >= 0 {
		return c.Inc(r, uint64(by))
	}
	// -by overflows for MinInt64; the unsigned negation does not.
	return c.Dec(r, -uint64(by))
}

// AppendBinary appends the canonical encoding.
func (c PNCounter[R]) AppendBinary(dst []byte) ([]byte, error) {
	dst = appendHeader(dst, tagPNCounter)
	dst = appendCounts(dst, c.p.counts)
	return appendCounts(dst, c.n.counts), nil
}

// MarshalBinary returns the canonical encoding.
func (c PNCounter[R]) MarshalBinary() ([]byte, error) { return c.AppendBinary(nil) }

// DecodeBinary decodes a PN-Counter; the receiver is ignored.
func (PNCounter[R]) DecodeBinary(data []byte) (PNCounter[R], error) {
	r := reader{b: data}
	r.header(tagPNCounter, "pn-counter")
	p := readCounts[R](&r)
	n := readCounts[R](&r)
	if err := r.end("pn-counter"); err != nil {
		return PNCounter[R]{}, err
	}
	return PNCounter[R]{p: GCounter[R]{counts: p}, n: GCounter[R]{counts: n}}, nil
}

// UnmarshalBinary decodes into c, replacing its contents.
func (c *PNCounter[R]) UnmarshalBinary(data []byte) error {
	v, err := c.DecodeBinary(data)
	if err != nil {
		return err
	}
	*c = v
	return nil
}
