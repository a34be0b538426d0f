package riblt

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestDecodeMatchesBruteForce: for random sets and differences, in random
// batch sizes and with symbols streamed past the cache, the decoder yields
// exactly A\B and B\A.
func TestDecodeMatchesBruteForce(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		common := rapid.IntRange(0, 300).Draw(rt, "common")
		onlyL := rapid.IntRange(0, 60).Draw(rt, "onlyLocal")
		onlyR := rapid.IntRange(0, 60).Draw(rt, "onlyRemote")
		batch := rapid.IntRange(1, 40).Draw(rt, "batch")
		cacheLen := rapid.IntRange(1, 64).Draw(rt, "cacheLen")
		seed := rapid.Uint64().Draw(rt, "seed")
		rng := rand.New(rand.NewPCG(seed, 1))
		l, r, lOnly, rOnly := sets(rng, common, onlyL, onlyR)
		rng.Shuffle(len(r), func(i, j int) { r[i], r[j] = r[j], r[i] })
		d := onlyL + onlyR
		dec, m := reconcile(rt, testKey(byte(seed)), cacheLen, l, r, batch, 10*d+100)
		if got, want := sortedIDs(dec.LocalOnly()), sortedIDs(lOnly); !slices.Equal(got, want) {
			rt.Fatalf("local-only: got %d ids, want %d", len(got), len(want))
		}
		if got, want := sortedIDs(dec.RemoteOnly()), sortedIDs(rOnly); !slices.Equal(got, want) {
			rt.Fatalf("remote-only: got %d ids, want %d", len(got), len(want))
		}
		if d == 0 && m != uint64(batch) {
			rt.Fatalf("equal sets needed %d symbols, want one batch of %d", m, batch)
		}
	})
}

// TestDecodeOverhead: symbols needed per difference, one symbol at a time,
// averaged over many trials. The paper's figure is about 1.35 for large d and
// up to about 1.8 for small d; the bound asserted is generous.
func TestDecodeOverhead(t *testing.T) {
	tests := []struct{ d, trials int }{
		{1, 200}, {2, 200}, {5, 200}, {10, 100}, {50, 40}, {100, 20}, {400, 5},
	}
	rng := rand.New(rand.NewPCG(19, 20))
	for _, tc := range tests {
		t.Run(fmt.Sprintf("d=%d", tc.d), func(t *testing.T) {
			total := uint64(0)
			for range tc.trials {
				onlyL := rng.IntN(tc.d + 1)
				l, r, _, _ := sets(rng, 200, onlyL, tc.d-onlyL)
				_, m := reconcile(t, testKey(byte(rng.Uint32())), 4*tc.d+64, l, r, 1, 20*tc.d+200)
				total += m
			}
			avg := float64(total) / float64(tc.trials)
			t.Logf("d=%d: %.2f symbols on average, %.2f per difference", tc.d, avg, avg/float64(tc.d))
			if avg > float64(2*tc.d+8) {
				t.Fatalf("average %.2f symbols for d=%d, bound %d", avg, tc.d, 2*tc.d+8)
			}
		})
	}
}

func TestDecoderZeroDifferenceOneSymbol(t *testing.T) {
	ids := randomIDs(rand.New(rand.NewPCG(21, 22)), 1000)
	_, m := reconcile(t, testKey(1), 16, ids, ids, 1, 10)
	if m != 1 {
		t.Fatalf("equal sets needed %d symbols, want 1", m)
	}
	// One difference: symbol 0 is pure.
	_, m = reconcile(t, testKey(1), 16, ids, ids[1:], 1, 10)
	if m != 1 {
		t.Fatalf("d=1 needed %d symbols, want 1", m)
	}
}

func TestDecoderDifferentKeysFail(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	l, r, _, _ := sets(rng, 100, 5, 5)
	le := encoderOf(t, testKey(1), 256, l)
	re := encoderOf(t, testKey(2), 256, r)
	dec, err := NewDecoder(testKey(1), 256)
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := re.Symbols(0, 256, nil)
	ls, _ := le.Symbols(0, 256, nil)
	if err := dec.Add(Batch{Symbols: rs}, ls); err == nil && dec.Done() {
		t.Fatal("decoded symbols made under another key")
	}
}

// remoteStream is an honest remote stream to tamper with.
func remoteStream(t *testing.T, ids [][32]byte, n int) []Symbol {
	t.Helper()
	s, err := encoderOf(t, testKey(1), n, ids).Symbols(0, uint64(n), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDecoderRefusesInconsistentInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	ids := randomIDs(rng, 20)
	x := randomIDs(rng, 1)[0]
	const n = 32
	honestLocal := remoteStream(t, ids, n)
	withX := remoteStream(t, append(slices.Clone(ids), x), n)
	tests := []struct {
		name   string
		remote func() Batch
		local  []Symbol
		max    int
		want   error
	}{
		{"starts past the next index", func() Batch { return Batch{Start: 1, Symbols: withX[:4]} }, honestLocal[:4], 100, ErrRange},
		{"local length differs", func() Batch { return Batch{Symbols: withX[:4]} }, honestLocal[:3], 100, ErrRange},
		{"bound exceeded", func() Batch { return Batch{Symbols: withX[:8]} }, honestLocal[:8], 4, ErrTooManySymbols},
		{"negative count", func() Batch {
			s := slices.Clone(withX[:4])
			s[2].Count = -1
			return Batch{Symbols: s}
		}, honestLocal[:4], 100, ErrInconsistent},
		{"count above symbol 0", func() Batch {
			s := slices.Clone(withX[:4])
			s[3].Count = s[0].Count + 1
			return Batch{Symbols: s}
		}, honestLocal[:4], 100, ErrInconsistent},
		{"count zero but not empty", func() Batch {
			s := slices.Clone(withX[:4])
			s[1] = Symbol{Hash: 7}
			return Batch{Symbols: s}
		}, honestLocal[:4], 100, ErrInconsistent},
		{"id left out of a symbol it maps to", func() Batch {
			// Symbol 0 says x is extra; drop x from every later symbol x maps
			// to. Peeling x leaves those symbols holding x with the opposite
			// sign: pure again, so x would be decoded twice.
			s := slices.Clone(withX)
			k := testKey(1)
			hx := hashID(&k, &x)
			m := newMapping(hx)
			for idx := m.next(); idx < n; idx = m.next() {
				s[idx].apply(&x, hx, -1)
			}
			return Batch{Symbols: s}
		}, honestLocal, 100, ErrInconsistent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dec, err := NewDecoder(testKey(1), tc.max)
			if err != nil {
				t.Fatal(err)
			}
			err = dec.Add(tc.remote(), tc.local)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if again := dec.Add(Batch{Start: dec.Received(), Symbols: withX[:1]}, honestLocal[:1]); !errors.Is(again, tc.want) {
				t.Fatalf("error not sticky: %v", again)
			}
			if dec.Done() {
				t.Fatal("failed decoder reports done")
			}
		})
	}
}

// TestDecoderForgedPureSymbol: a count-1 symbol whose hash does not match its
// sum, or whose id does not map there, is not peeled.
func TestDecoderForgedPureSymbol(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	ids := randomIDs(rng, 10)
	local := remoteStream(t, ids, 8)
	k := testKey(1)
	y := randomIDs(rng, 1)[0]
	hy := hashID(&k, &y)
	tests := []struct {
		name       string
		tamper     func(s []Symbol)
		remoteOnly int
	}{
		{"hash mismatch", func(s []Symbol) {
			s[0].apply(&y, hy^1, 1)
			for i := 1; i < len(s); i++ {
				s[i].apply(&y, hy^1, 1)
			}
		}, 0},
		{"off the id's sequence", func(s []Symbol) {
			// y in every symbol: symbols y does not map to are "pure" with a
			// valid hash but must not be peeled; symbol 0 must be.
			for i := range s {
				s[i].apply(&y, hy, 1)
			}
		}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			remote := slices.Clone(local)
			tc.tamper(remote)
			dec, err := NewDecoder(k, 100)
			if err != nil {
				t.Fatal(err)
			}
			if err := dec.Add(Batch{Symbols: remote}, local); err != nil {
				t.Fatalf("a forged pure symbol is not an error, only not pure: %v", err)
			}
			if dec.Done() {
				t.Fatalf("forged stream decoded: remote-only %d ids", len(dec.RemoteOnly()))
			}
			got := dec.RemoteOnly()
			if len(got) != tc.remoteOnly || (len(got) == 1 && got[0] != y) {
				t.Fatalf("decoded %d ids, want %d (only y)", len(got), tc.remoteOnly)
			}
		})
	}
}
