package riblt

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// bruteNext is nextIndex's definition in big integers: the least k > i with
// (k+1)(k+2) > ⌊(i+1)(i+2)·2^64/(r+1)⌋, or noIndex past indexLimit.
func bruteNext(i, r uint64) uint64 {
	a := new(big.Int).Mul(new(big.Int).SetUint64(i+1), new(big.Int).SetUint64(i+2))
	num := new(big.Int).Lsh(a, 64)
	den := new(big.Int).Add(new(big.Int).SetUint64(r), big.NewInt(1))
	q := new(big.Int).Quo(num, den)
	// c = k+1: least c with c(c+1) > q, found by bisection.
	lo, hi := new(big.Int).SetUint64(i+2), new(big.Int).Lsh(big.NewInt(1), 66)
	one := big.NewInt(1)
	for lo.Cmp(hi) < 0 {
		mid := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
		p := new(big.Int).Mul(mid, new(big.Int).Add(mid, one))
		if p.Cmp(q) > 0 {
			hi = mid
		} else {
			lo = new(big.Int).Add(mid, one)
		}
	}
	k := new(big.Int).Sub(lo, one)
	if !k.IsUint64() || k.Uint64() >= indexLimit {
		return noIndex
	}
	return k.Uint64()
}

func TestNextIndexExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	type pair struct{ i, r uint64 }
	cases := []pair{
		{0, 0}, {0, 1}, {0, math.MaxUint64}, {0, math.MaxUint64 - 1}, {0, 1 << 63},
		{1, math.MaxUint64}, {indexLimit - 1, math.MaxUint64}, {indexLimit - 2, math.MaxUint64},
		{indexLimit - 1, 0}, {1 << 20, 1 << 40}, {1<<32 - 3, math.MaxUint64 - 5},
	}
	for range 20000 {
		i := rng.Uint64N(1 << (1 + rng.UintN(32)))
		if i >= indexLimit {
			i = indexLimit - 1
		}
		r := rng.Uint64() >> rng.UintN(64)
		cases = append(cases, pair{i, r})
	}
	for _, c := range cases {
		got, want := nextIndex(c.i, c.r), bruteNext(c.i, c.r)
		if got != want {
			t.Fatalf("nextIndex(%d, %#x) = %d, want %d", c.i, c.r, got, want)
		}
		if got != noIndex && got <= c.i {
			t.Fatalf("nextIndex(%d, %#x) = %d does not advance", c.i, c.r, got)
		}
	}
	if got := nextIndex(indexLimit, 0); got != noIndex {
		t.Fatalf("nextIndex past the limit = %d", got)
	}
}

// TestMappingDistribution checks the paper's ρ(i) = 1/(1+i/2): the share of
// ids whose sequence contains index i.
func TestMappingDistribution(t *testing.T) {
	const n, width = 100000, 200
	var hits [width]int
	rng := rand.New(rand.NewPCG(5, 6))
	for range n {
		m := newMapping(rng.Uint64())
		for idx := uint64(0); idx < width; idx = m.next() {
			hits[idx]++
		}
	}
	for i, h := range hits {
		p := 1 / (1 + float64(i)/2)
		mean := n * p
		sd := math.Sqrt(n * p * (1 - p))
		if math.Abs(float64(h)-mean) > 5*sd+1 {
			t.Errorf("index %d hit %d times, want %.0f ± %.0f", i, h, mean, 5*sd)
		}
	}
}
