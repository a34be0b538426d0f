package riblt

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestEncoderDeterministicAcrossOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	ids := randomIDs(rng, 500)
	want := encoderOf(t, testKey(1), 256, ids)
	for trial := range 5 {
		perm := slices.Clone(ids)
		rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		got := encoderOf(t, testKey(1), 256, perm)
		if !slices.Equal(got.cache, want.cache) {
			t.Fatalf("order %d gave different symbols", trial)
		}
		if got.Fingerprint() != want.Fingerprint() {
			t.Fatalf("order %d gave a different fingerprint", trial)
		}
	}
}

// TestEncoderGolden pins the stream: hash, mapping and layout are the same on
// every platform and in every version of this package that claims WireVersion 1.
func TestEncoderGolden(t *testing.T) {
	var ids [][32]byte
	for i := range 100 {
		ids = append(ids, sha256.Sum256([]byte{byte(i)}))
	}
	e := encoderOf(t, testKey(9), 64, ids)
	enc, err := AppendBatch(nil, Batch{Symbols: e.cache})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(enc)
	const want = "5f4830fa3bec394c6fd6cc7030ae3f7fd1b8bf3045d1d28c133f8e7fee282eab"
	if got := hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("stream digest %s, want %s", got, want)
	}
}

func TestEncoderAddRemoveSymmetry(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	base := randomIDs(rng, 50)
	extra := randomIDs(rng, 80)
	e := encoderOf(t, testKey(2), 512, base)
	want := e.Clone()
	for _, id := range extra {
		e.Add(id)
	}
	if slices.Equal(e.cache, want.cache) {
		t.Fatal("adding ids changed nothing")
	}
	for _, id := range extra {
		if err := e.Remove(id); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(e.cache, want.cache) {
		t.Fatal("add then remove did not restore the symbols")
	}
	for _, id := range base {
		if err := e.Remove(id); err != nil {
			t.Fatal(err)
		}
	}
	for i := range e.cache {
		if !e.cache[i].IsZero() {
			t.Fatalf("symbol %d not empty after removing everything: %+v", i, e.cache[i])
		}
	}
	if err := e.Remove(base[0]); !errors.Is(err, ErrEmpty) {
		t.Fatalf("remove from empty: %v, want ErrEmpty", err)
	}
}

func TestEncoderKeyed(t *testing.T) {
	ids := randomIDs(rand.New(rand.NewPCG(11, 12)), 100)
	a := encoderOf(t, testKey(3), 128, ids)
	b := encoderOf(t, testKey(4), 128, ids)
	if a.Fingerprint() == b.Fingerprint() {
		t.Fatal("different keys, same fingerprint")
	}
	// Symbol 0 holds every id under any key; past it the keys must scatter
	// the ids differently (two empty symbols may of course agree).
	same := 0
	for i := 1; i < 128; i++ {
		if a.cache[i] == b.cache[i] && !a.cache[i].IsZero() {
			same++
		}
	}
	if same > 0 {
		t.Fatalf("%d of 127 symbols equal under different keys", same)
	}
	if a.cache[0].Hash == b.cache[0].Hash {
		t.Fatal("symbol 0's hash does not depend on the key")
	}
}

func TestEncoderSymbolsPastCache(t *testing.T) {
	ids := randomIDs(rand.New(rand.NewPCG(13, 14)), 300)
	small := encoderOf(t, testKey(5), 16, ids)
	big := encoderOf(t, testKey(5), 1000, ids)
	tests := []struct{ from, to uint64 }{
		{0, 16}, {0, 1000}, {5, 40}, {16, 17}, {100, 1000}, {999, 1000}, {7, 7},
	}
	for _, tc := range tests {
		got, err := small.Symbols(tc.from, tc.to, seqOf(ids))
		if err != nil {
			t.Fatalf("[%d,%d): %v", tc.from, tc.to, err)
		}
		if want := big.cache[tc.from:tc.to]; !slices.Equal(got, want) {
			t.Fatalf("[%d,%d): streamed symbols differ from cached ones", tc.from, tc.to)
		}
	}
}

func TestEncoderSymbolsErrors(t *testing.T) {
	ids := randomIDs(rand.New(rand.NewPCG(15, 16)), 10)
	e := encoderOf(t, testKey(6), 8, ids)
	tests := []struct {
		name     string
		from, to uint64
		items    [][32]byte
		want     error
	}{
		{"reversed", 5, 4, nil, ErrRange},
		{"past the stream", 0, indexLimit + 1, nil, ErrRange},
		{"too long", 0, MaxRange + 1, ids, ErrRange},
		{"no items past the cache", 0, 9, nil, ErrItems},
		{"wrong items", 0, 20, ids[:9], ErrItems},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var items func(func([32]byte) bool)
			if tc.items != nil {
				items = seqOf(tc.items)
			}
			if _, err := e.Symbols(tc.from, tc.to, items); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := NewEncoder(Key{}, 0); !errors.Is(err, ErrRange) {
		t.Fatalf("cache 0: %v", err)
	}
	if _, err := NewEncoder(Key{}, MaxCacheLen+1); !errors.Is(err, ErrRange) {
		t.Fatalf("cache too large: %v", err)
	}
}

func TestEncoderCloneIndependent(t *testing.T) {
	e := encoderOf(t, testKey(7), 32, randomIDs(rand.New(rand.NewPCG(17, 18)), 5))
	c := e.Clone()
	e.Add([32]byte{1})
	if c.Len() != 5 || e.Len() != 6 {
		t.Fatalf("clone shares state: clone %d, original %d", c.Len(), e.Len())
	}
}
