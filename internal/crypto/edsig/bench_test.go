package edsig

import (
	"crypto/ed25519"
	"fmt"
	"testing"
)

// BenchmarkVerify compares, per signature, crypto/ed25519, this package's
// single verification, and batches of a peer's run of facts: one author, or
// every signature by a different author.
//
//	go test -run '^$' -bench . ./internal/crypto/edsig/
func BenchmarkVerify(b *testing.B) {
	sigs := make([]signature, 64)
	for i := range sigs {
		sigs[i] = honest(key(byte(i)), fmt.Sprintf("a 200-byte fact body, more or less, number %d", i))
	}
	b.Run("stdlib", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			s := sigs[i%len(sigs)]
			if !ed25519.Verify(s.pub, s.msg, s.sig) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("single", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			s := sigs[i%len(sigs)]
			if !Verify(s.pub, s.msg, s.sig) {
				b.Fatal("invalid")
			}
		}
	})
	oneAuthor := make([]signature, 64)
	for i := range oneAuthor {
		oneAuthor[i] = honest(key(1), fmt.Sprintf("a 200-byte fact body, more or less, number %d", i))
	}
	for _, n := range []int{8, 16, 32, 64} {
		for _, set := range []struct {
			name string
			sigs []signature
		}{{"one-author", oneAuthor}, {"distinct-authors", sigs}} {
			b.Run(fmt.Sprintf("batch=%d/%s", n, set.name), func(b *testing.B) {
				var batch Batch
				for b.Loop() {
					batch.Reset()
					for _, s := range set.sigs[:n] {
						batch.Add(s.pub, s.msg, s.sig)
					}
					if !batch.Verify() {
						b.Fatal("invalid")
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n)/1000, "µs/sig")
			})
		}
	}
}
