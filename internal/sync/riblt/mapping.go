package riblt

import (
	"math"
	"math/bits"
)

const (
	// indexLimit bounds the symbol stream: indices are < indexLimit. It keeps
	// (i+1)(i+2) within 64 bits; four billion symbols is far past any
	// session's bound, and an id whose next index would pass it maps nowhere
	// further.
	indexLimit = 1<<32 - 1
	// noIndex ends an index sequence.
	noIndex = math.MaxUint64
)

// mapping walks one id's index sequence: the symbols it is XORed into. The
// sequence starts at 0 and depends only on the id's keyed hash, so every peer
// computes the same one.
type mapping struct {
	state uint64 // SplitMix64 state, seeded with the keyed hash
	idx   uint64 // the current index, or noIndex
}

func newMapping(hash uint64) mapping { return mapping{state: hash} }

// next advances to the id's next index and returns it (noIndex when none).
func (m *mapping) next() uint64 {
	if m.idx >= indexLimit {
		m.idx = noIndex
		return noIndex
	}
	m.state += 0x9e3779b97f4a7c15
	z := m.state
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	m.idx = nextIndex(m.idx, z)
	return m.idx
}

// nextIndex draws the index after i from the uniform 64-bit word r.
//
// The paper maps an id to symbol t with probability ρ(t) = 1/(1+t/2),
// independently per t, so from index i the next index exceeds k with
// probability ∏_{t=i+1..k} (1-ρ(t)) = ∏ t/(t+2) = (i+1)(i+2)/((k+1)(k+2)).
// Inverse-transform sampling with v = (r+1)/2^64 ∈ (0, 1] picks the smallest
// k > i with (i+1)(i+2)/((k+1)(k+2)) < v, i.e. (k+1)(k+2) > Q where
// Q = ⌊(i+1)(i+2)·2^64/(r+1)⌋ (the product is an integer, so flooring Q is
// exact). The reference implementation uses a floating-point approximation of
// this; here it is exact integer arithmetic, the same on every platform. The
// float square root is only a first guess, corrected by integer comparisons.
func nextIndex(i, r uint64) uint64 {
	if i >= indexLimit {
		return noIndex
	}
	a := (i + 1) * (i + 2)
	var q uint64
	if r == math.MaxUint64 {
		q = a // v = 1
	} else {
		if a >= r+1 {
			return noIndex // Q ≥ 2^64: past indexLimit
		}
		q, _ = bits.Div64(a, 0, r+1)
	}
	c := uint64(math.Sqrt(float64(q))) // c = k+1; want the least c with c(c+1) > q
	for !pairAbove(c, q) {
		c++
	}
	for c > 0 && pairAbove(c-1, q) {
		c--
	}
	k := c - 1 // c ≥ i+2 because q ≥ a = (i+1)(i+2)
	if k >= indexLimit {
		return noIndex
	}
	return k
}

// pairAbove reports c(c+1) > q without overflow.
func pairAbove(c, q uint64) bool {
	hi, lo := bits.Mul64(c, c+1)
	return hi != 0 || lo > q
}
