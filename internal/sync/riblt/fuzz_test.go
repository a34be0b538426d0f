package riblt

import (
	"bytes"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"
)

func FuzzParseBatch(f *testing.F) {
	ids := randomIDs(rand.New(rand.NewPCG(31, 32)), 50)
	e := encoderOf(f, testKey(1), 40, ids)
	for _, b := range []Batch{{}, {Start: 7, Symbols: e.cache[7:9]}, {Symbols: e.cache}} {
		enc, err := AppendBatch(nil, b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Add([]byte{WireVersion, 0x80, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBatch(data)
		if err != nil {
			return
		}
		enc, err := AppendBatch(nil, b)
		if err != nil {
			t.Fatalf("parsed batch does not encode: %v", err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("accepted a non-canonical encoding:\n in  %x\n out %x", data, enc)
		}
		b2, err := ParseBatch(enc)
		if err != nil {
			t.Fatalf("re-encoded batch does not parse: %v", err)
		}
		if b2.Start != b.Start || !slices.Equal(b2.Symbols, b.Symbols) {
			t.Fatal("decode, encode, decode changed the batch")
		}
	})
}

// FuzzDecoder feeds the decoder honest symbol streams that ops tamper with
// (flipped bits, shifted counts, symbols replaced by arbitrary bytes) in
// arbitrary batch sizes. It must not panic or loop, must do bounded work per
// symbol, and an untampered stream that decodes must give the true
// difference.
func FuzzDecoder(f *testing.F) {
	f.Add(uint64(1), uint8(3), uint8(2), []byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(uint64(2), uint8(0), uint8(0), []byte{1, 5, 3})
	f.Add(uint64(3), uint8(15), uint8(15), []byte{7, 1, 9, 2, 200, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41})
	f.Fuzz(func(t *testing.T, seed uint64, nl, nr uint8, ops []byte) {
		const streamLen = 256
		key := testKey(byte(seed))
		rng := rand.New(rand.NewPCG(seed, 2))
		l, r, lOnly, rOnly := sets(rng, 8, int(nl%16), int(nr%16))
		ls, err := encoderOf(t, key, 16, l).Symbols(0, streamLen, seqOf(l))
		if err != nil {
			t.Fatal(err)
		}
		rs, err := encoderOf(t, key, 16, r).Symbols(0, streamLen, seqOf(r))
		if err != nil {
			t.Fatal(err)
		}
		dec, err := NewDecoder(key, streamLen)
		if err != nil {
			t.Fatal(err)
		}
		next := func() byte {
			if len(ops) == 0 {
				return 0
			}
			b := ops[0]
			ops = ops[1:]
			return b
		}
		tampered := false
		for len(ops) > 0 && dec.Received() < streamLen {
			from := dec.Received()
			to := min(from+1+uint64(next()%8), streamLen)
			batch := slices.Clone(rs[from:to])
			for i := range batch {
				switch op := next(); op % 4 {
				case 1:
					batch[i].Sum[next()%32] ^= 1 << (op >> 5)
					tampered = true
				case 2:
					batch[i].Count += int64(int8(next()))
					tampered = true
				case 3:
					var s Symbol
					for j := range s.Sum {
						s.Sum[j] = next()
					}
					for range 8 {
						s.Hash = s.Hash<<8 | uint64(next())
					}
					s.Count = int64(next() % 4)
					batch[i] = s
					tampered = true
				}
			}
			if err := dec.Add(Batch{Start: from, Symbols: batch}, ls[from:to]); err != nil {
				break
			}
		}
		m := dec.Received()
		if bound := 16 * (m + 1) * uint64(bits.Len64(m)+2); dec.work > bound {
			t.Fatalf("%d units of work for %d symbols, bound %d", dec.work, m, bound)
		}
		if !tampered && dec.Done() {
			if !slices.Equal(sortedIDs(dec.LocalOnly()), sortedIDs(lOnly)) || !slices.Equal(sortedIDs(dec.RemoteOnly()), sortedIDs(rOnly)) {
				t.Fatal("an honest stream decoded to the wrong difference")
			}
		}
	})
}
