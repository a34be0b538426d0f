package riblt

import (
	"iter"
	"math/rand/v2"
	"slices"
)

func testKey(b byte) Key {
	var k Key
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

func randomIDs(rng *rand.Rand, n int) [][32]byte {
	ids := make([][32]byte, n)
	for i := range ids {
		for j := 0; j < 32; j += 8 {
			v := rng.Uint64()
			for b := range 8 {
				ids[i][j+b] = byte(v >> (8 * b))
			}
		}
	}
	return ids
}

// sets returns A = common ∪ onlyA and B = common ∪ onlyB.
func sets(rng *rand.Rand, common, onlyA, onlyB int) (a, b, aOnly, bOnly [][32]byte) {
	all := randomIDs(rng, common+onlyA+onlyB)
	c := all[:common]
	aOnly = all[common : common+onlyA]
	bOnly = all[common+onlyA:]
	a = append(slices.Clone(c), aOnly...)
	b = append(slices.Clone(c), bOnly...)
	return a, b, aOnly, bOnly
}

// tb is what the helpers need of testing.TB and rapid.T alike.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

func encoderOf(t tb, key Key, cacheLen int, ids [][32]byte) *Encoder {
	t.Helper()
	e, err := NewEncoder(key, cacheLen)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		e.Add(id)
	}
	return e
}

func seqOf(ids [][32]byte) iter.Seq[[32]byte] { return slices.Values(ids) }

func sortedIDs(ids [][32]byte) [][32]byte {
	s := slices.Clone(ids)
	slices.SortFunc(s, func(x, y [32]byte) int { return slices.Compare(x[:], y[:]) })
	return s
}

// reconcile runs a decoder for local set l against remote set r, streaming
// the remote's symbols in batches of batch, and returns the decoder and the
// number of symbols it needed.
func reconcile(t tb, key Key, cacheLen int, l, r [][32]byte, batch, maxSymbols int) (*Decoder, uint64) {
	t.Helper()
	le := encoderOf(t, key, cacheLen, l)
	re := encoderOf(t, key, cacheLen, r)
	dec, err := NewDecoder(key, maxSymbols)
	if err != nil {
		t.Fatal(err)
	}
	for !dec.Done() {
		from := dec.Received()
		to := from + uint64(batch)
		rs, err := re.Symbols(from, to, seqOf(r))
		if err != nil {
			t.Fatal(err)
		}
		ls, err := le.Symbols(from, to, seqOf(l))
		if err != nil {
			t.Fatal(err)
		}
		if err := dec.Add(Batch{Start: from, Symbols: rs}, ls); err != nil {
			t.Fatalf("after %d symbols: %v", from, err)
		}
	}
	return dec, dec.Received()
}
