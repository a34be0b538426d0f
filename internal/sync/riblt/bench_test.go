package riblt

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkEncoderAdd: maintaining the cached prefix, per inserted id.
func BenchmarkEncoderAdd(b *testing.B) {
	ids := randomIDs(rand.New(rand.NewPCG(41, 42)), 1<<16)
	for _, cacheLen := range []int{1024, 4096, 16384} {
		b.Run(fmt.Sprintf("cache=%d", cacheLen), func(b *testing.B) {
			e, err := NewEncoder(testKey(1), cacheLen)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				e.Add(ids[i&(len(ids)-1)])
				i++
			}
		})
	}
}

// BenchmarkSymbolsPastCache: streaming symbols [4096, 8192) over a set of
// 100,000 ids; reported per id.
func BenchmarkSymbolsPastCache(b *testing.B) {
	const n = 100000
	ids := randomIDs(rand.New(rand.NewPCG(43, 44)), n)
	e := encoderOf(b, testKey(1), 4096, ids)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Symbols(4096, 8192, seqOf(ids)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/id")
}

// BenchmarkDecode: decoding a difference of d ids between two sets sharing
// 100,000 ids, the remote's symbols arriving in doubling batches (8, 16, 32,
// ...) as a session sends them. Metrics: symbols/d is the exact prefix the
// decoder needs (one symbol at a time), sent/d what the doubling batches
// send, wireB/diff the encoded bytes of the exact prefix per difference.
func BenchmarkDecode(b *testing.B) {
	const common = 100000
	for _, d := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("d=%d", d), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(45, uint64(d)))
			l, r, _, _ := sets(rng, common, d/2, d-d/2)
			maxLen := 3*d + 200
			ls := encoderOf(b, testKey(1), maxLen, l).cache
			rs := encoderOf(b, testKey(1), maxLen, r).cache

			exact, err := NewDecoder(testKey(1), maxLen)
			if err != nil {
				b.Fatal(err)
			}
			for !exact.Done() {
				j := exact.Received()
				if err := exact.Add(Batch{Start: j, Symbols: rs[j : j+1]}, ls[j:j+1]); err != nil {
					b.Fatal(err)
				}
			}
			m := exact.Received()
			wire, err := AppendBatch(nil, Batch{Symbols: rs[:m]})
			if err != nil {
				b.Fatal(err)
			}

			var sent uint64
			b.ReportAllocs()
			for b.Loop() {
				dec, err := NewDecoder(testKey(1), maxLen)
				if err != nil {
					b.Fatal(err)
				}
				size := uint64(8)
				for !dec.Done() {
					from := dec.Received()
					to := min(from+size, uint64(maxLen))
					if err := dec.Add(Batch{Start: from, Symbols: rs[from:to]}, ls[from:to]); err != nil {
						b.Fatal(err)
					}
					size *= 2
				}
				sent = dec.Received()
			}
			b.ReportMetric(float64(m)/float64(d), "symbols/d")
			b.ReportMetric(float64(sent)/float64(d), "sent/d")
			b.ReportMetric(float64(len(wire))/float64(d), "wireB/diff")
		})
	}
}
