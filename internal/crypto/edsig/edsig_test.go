package edsig

import (
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"testing"

	"filippo.io/edwards25519"
	"pgregory.net/rapid"
)

// order8 is a point of order 8 (its multiples are the whole small-order
// subgroup), as listed in ZIP 215's test cases.
const order8 = "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"

// tb is what the helpers need of a *testing.T, *testing.F or *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
}

func torsion(t tb, k int) *edwards25519.Point {
	t.Helper()
	b, _ := hex.DecodeString(order8)
	g, err := new(edwards25519.Point).SetBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	p := edwards25519.NewIdentityPoint()
	for range k {
		p.Add(p, g)
	}
	return p
}

func TestOrder8PointIsSmallOrder(t *testing.T) {
	id := edwards25519.NewIdentityPoint()
	for k := 1; k < 8; k++ {
		if torsion(t, k).Equal(id) == 1 {
			t.Fatalf("%d·T is the identity", k)
		}
	}
	if torsion(t, 8).Equal(id) != 1 {
		t.Fatal("8·T is not the identity")
	}
}

type signature struct {
	pub      ed25519.PublicKey
	msg, sig []byte
}

func key(seed byte) ed25519.PrivateKey {
	var s [32]byte
	s[0] = seed
	return ed25519.NewKeyFromSeed(s[:])
}

func honest(k ed25519.PrivateKey, msg string) signature {
	return signature{pub: k.Public().(ed25519.PublicKey), msg: []byte(msg), sig: ed25519.Sign(k, []byte(msg))}
}

// withTorsionR adds the small-order point k·T to R and recomputes s from the
// private scalar for the new challenge, as a malicious signer would: the
// cofactored equation holds, the cofactorless one does not.
func withTorsionR(t tb, priv ed25519.PrivateKey, msg []byte, k int) signature {
	t.Helper()
	sig := ed25519.Sign(priv, msg)
	pub := priv.Public().(ed25519.PublicKey)
	r, err := new(edwards25519.Point).SetBytes(sig[:32])
	if err != nil {
		t.Fatal(err)
	}
	r.Add(r, torsion(t, k))
	// s = rnonce + c·a, with rnonce recovered as s - c0·a.
	a := secretScalar(t, priv)
	c0 := challenge(sig[:32], pub, msg)
	s0, _ := new(edwards25519.Scalar).SetCanonicalBytes(sig[32:])
	nonce := new(edwards25519.Scalar).Subtract(s0, new(edwards25519.Scalar).Multiply(c0, a))
	rb := r.Bytes()
	c := challenge(rb, pub, msg)
	s := new(edwards25519.Scalar).MultiplyAdd(c, a, nonce)
	return signature{pub: pub, msg: msg, sig: append(rb, s.Bytes()...)}
}

func secretScalar(t tb, priv ed25519.PrivateKey) *edwards25519.Scalar {
	t.Helper()
	h := sha512Sum(priv.Seed())
	a, err := new(edwards25519.Scalar).SetBytesWithClamping(h[:32])
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func challenge(r, pub, msg []byte) *edwards25519.Scalar {
	h := sha512Sum(append(append(append([]byte{}, r...), pub...), msg...))
	k, _ := new(edwards25519.Scalar).SetUniformBytes(h[:])
	return k
}

func TestVerify(t *testing.T) {
	k1 := key(1)
	good := honest(k1, "hello")
	flipped := honest(k1, "hello")
	flipped.sig = append([]byte{}, flipped.sig...)
	flipped.sig[40] ^= 1
	// s + L: the same s modulo L, not canonical.
	bigS := honest(k1, "hello")
	bigS.sig = append([]byte{}, bigS.sig...)
	addL(bigS.sig[32:])

	cases := []struct {
		name   string
		s      signature
		stdlib bool
		want   bool
	}{
		{"honest", good, true, true},
		{"other message", signature{good.pub, []byte("hellO"), good.sig}, false, false},
		{"other key", signature{key(2).Public().(ed25519.PublicKey), good.msg, good.sig}, false, false},
		{"flipped s bit", flipped, false, false},
		{"s not canonical", bigS, false, false},
		{"short signature", signature{good.pub, good.msg, good.sig[:63]}, false, false},
		{"short key", signature{good.pub[:31], good.msg, good.sig}, false, false},
		{"R with an order-2 component", withTorsionR(t, k1, []byte("m"), 4), false, true},
		{"R with an order-8 component", withTorsionR(t, k1, []byte("m"), 1), false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := len(c.s.pub) == ed25519.PublicKeySize && ed25519.Verify(c.s.pub, c.s.msg, c.s.sig); got != c.stdlib {
				t.Fatalf("crypto/ed25519 says %v, the case assumes %v", got, c.stdlib)
			}
			if got := Verify(c.s.pub, c.s.msg, c.s.sig); got != c.want {
				t.Fatalf("Verify = %v, want %v", got, c.want)
			}
			var b Batch
			b.Add(c.s.pub, c.s.msg, c.s.sig)
			if got := b.Verify(); got != c.want {
				t.Fatalf("a batch of it alone = %v, want %v", got, c.want)
			}
		})
	}
}

// addL adds the group order to a little-endian scalar in place.
func addL(s []byte) {
	l, _ := hex.DecodeString("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
	carry := 0
	for i := range 32 {
		v := int(s[i]) + int(l[i]) + carry
		s[i], carry = byte(v), v>>8
	}
}

// TestBatchAgreesWithVerify is the property the package exists for: a batch
// is valid exactly when each of its signatures is, whatever mix of honest,
// forged and small-order-tweaked signatures it holds.
func TestBatchAgreesWithVerify(t *testing.T) {
	keys := []ed25519.PrivateKey{key(1), key(2), key(3)}
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(1, 40).Draw(rt, "n")
		var b Batch
		all := true
		for i := range n {
			k := keys[rapid.IntRange(0, len(keys)-1).Draw(rt, "key")]
			msg := []byte(fmt.Sprintf("fact %d", i))
			var s signature
			switch rapid.IntRange(0, 9).Draw(rt, "kind") {
			case 0:
				s = honest(k, string(msg))
				s.sig = append([]byte{}, s.sig...)
				s.sig[rapid.IntRange(0, 63).Draw(rt, "byte")] ^= byte(1 << rapid.IntRange(0, 7).Draw(rt, "bit"))
			case 1:
				s = withTorsionR(rt, k, msg, rapid.IntRange(1, 7).Draw(rt, "torsion"))
			case 2:
				s = honest(k, string(msg))
				s.msg = []byte("another")
			default:
				s = honest(k, string(msg))
			}
			all = all && Verify(s.pub, s.msg, s.sig)
			b.Add(s.pub, s.msg, s.sig)
		}
		if got := b.Verify(); got != all {
			rt.Fatalf("batch = %v, each alone = %v", got, all)
		}
	})
}

// TestBatchDoesNotCancelTwoForgeries: two signatures wrong by opposite
// amounts would pass a plain sum; the coefficients keep them apart.
func TestBatchDoesNotCancelTwoForgeries(t *testing.T) {
	k := key(7)
	a, b := honest(k, "a"), honest(k, "b")
	// Move R of a by +B and R of b by -B.
	ra, _ := new(edwards25519.Point).SetBytes(a.sig[:32])
	rb, _ := new(edwards25519.Point).SetBytes(b.sig[:32])
	ra.Add(ra, edwards25519.NewGeneratorPoint())
	rb.Subtract(rb, edwards25519.NewGeneratorPoint())
	a.sig = append(ra.Bytes(), a.sig[32:]...)
	b.sig = append(rb.Bytes(), b.sig[32:]...)
	var batch Batch
	batch.Add(a.pub, a.msg, a.sig)
	batch.Add(b.pub, b.msg, b.sig)
	if batch.Verify() {
		t.Fatal("a batch of two forgeries verified")
	}
}

func TestBatchReset(t *testing.T) {
	var b Batch
	b.Add(nil, nil, nil)
	if b.Verify() {
		t.Fatal("a batch holding an undecodable signature verified")
	}
	b.Reset()
	s := honest(key(1), "x")
	b.Add(s.pub, s.msg, s.sig)
	if !b.Verify() || b.Len() != 1 {
		t.Fatal("Reset did not empty the batch")
	}
	b.Reset()
	if !b.Verify() {
		t.Fatal("an empty batch did not verify")
	}
}

// FuzzBatchAgreesWithVerify feeds arbitrary signature bytes, as a peer
// could: batch and single verification must agree, and whatever
// crypto/ed25519 accepts, Verify accepts.
func FuzzBatchAgreesWithVerify(f *testing.F) {
	s := honest(key(1), "seed")
	f.Add(s.sig, []byte("seed"), byte(1), true)
	f.Add(withTorsionR(f, key(1), []byte("m"), 3).sig, []byte("m"), byte(1), true)
	f.Fuzz(func(t *testing.T, sig, msg []byte, seed byte, withHonest bool) {
		priv := key(seed)
		pub := priv.Public().(ed25519.PublicKey)
		alone := Verify(pub, msg, sig)
		if len(sig) == ed25519.SignatureSize && ed25519.Verify(pub, msg, sig) && !alone {
			t.Fatal("crypto/ed25519 accepts what Verify refuses")
		}
		var b Batch
		b.Add(pub, msg, sig)
		if withHonest {
			h := honest(key(seed+1), "other")
			b.Add(h.pub, h.msg, h.sig)
			h = honest(priv, "same key")
			b.Add(h.pub, h.msg, h.sig)
		}
		if got := b.Verify(); got != alone {
			t.Fatalf("batch = %v, alone = %v", got, alone)
		}
	})
}

func sha512Sum(b []byte) [64]byte { return sha512.Sum512(b) }
