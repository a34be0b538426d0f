package wot

import (
	"crypto/ed25519"
	"testing"
)

// BenchmarkTokenVerify: a 5-block chain verified cold (no cache: decode not
// included, five signature checks) and cached, against one Ed25519
// verification of the same message size.
func BenchmarkTokenVerify(b *testing.B) {
	ks := keysN(5)
	for _, bc := range []struct {
		name  string
		cache int
	}{{"cold", -1}, {"cached", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b, bc.cache)
			tok := f.chain(b, ks)
			if _, err := f.v.Verify(tok); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := f.v.Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("ed25519-verify-once", func(b *testing.B) {
		k := key(1)
		msg := sigMessage([32]byte{1})
		sig := ed25519.Sign(k, msg)
		pub := k.Public().(ed25519.PublicKey)
		for b.Loop() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("bad signature")
			}
		}
	})
}
