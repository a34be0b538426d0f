// Package edsig verifies Ed25519 signatures one at a time or in batches under
// a single acceptance rule, so that a signature's fate never depends on which
// of the two paths checked it.
//
// Facts are merged by set union: if one device accepted a fact that another
// refuses, the two would offer it to each other forever and count it against
// each other. Go's crypto/ed25519 checks the cofactorless equation
// R = [s]B - [k]A, which a batch cannot reproduce: a random linear
// combination of per-signature equations lets components in the small-order
// subgroup cancel with non-negligible probability. Anyone who relays a valid
// signature can add such a component to its R, so the gap is not theoretical.
//
// The rule here is ZIP 215's (Zcash, "Explicitly Defining and Modifying
// Ed25519 Validation Rules"), chosen because single and batch verification
// agree on it exactly:
//   - s must be canonical (s < L);
//   - A and R may use any encoding of a curve point, canonical or not, and
//     the challenge k = SHA-512(R ‖ A ‖ M) hashes the encodings as given;
//   - the cofactored equation [8]([s]B - R - [k]A) = 0 must hold.
//
// It accepts every signature crypto/ed25519 accepts, and in addition those
// whose R or A differs from a valid one by a small-order point or is encoded
// non-canonically. Honest signers produce neither. Since a fact's id hashes
// its body only, such a variant is a second signature on the same fact, not a
// new fact.
package edsig

import (
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/binary"

	"filippo.io/edwards25519"
)

// Verify reports whether sig is a valid signature of msg by pub under the
// package's rule.
func Verify(pub ed25519.PublicKey, msg, sig []byte) bool {
	var it item
	if !it.parse(pub, msg, sig) {
		return false
	}
	a, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return false
	}
	// [s]B - [k]A - R, then the cofactor.
	minusA := a.Negate(a)
	p := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(it.k, minusA, it.s)
	p.Subtract(p, it.r)
	return p.MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1
}

// item is one signature, decoded but for its key: a batch decodes each
// distinct key once.
type item struct {
	pub  [32]byte
	sig  [64]byte
	r    *edwards25519.Point
	s, k *edwards25519.Scalar
}

func (it *item) parse(pub ed25519.PublicKey, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	var err error
	if it.r, err = new(edwards25519.Point).SetBytes(sig[:32]); err != nil {
		return false
	}
	if it.s, err = new(edwards25519.Scalar).SetCanonicalBytes(sig[32:]); err != nil {
		return false
	}
	h := sha512.New()
	h.Write(sig[:32])
	h.Write(pub)
	h.Write(msg)
	var digest [64]byte
	it.k, _ = new(edwards25519.Scalar).SetUniformBytes(h.Sum(digest[:0]))
	copy(it.pub[:], pub)
	copy(it.sig[:], sig)
	return true
}

// Batch collects signatures to verify together. A batch of n signatures by m
// distinct keys costs about one multi-scalar multiplication over n + m + 1
// points instead of n double-scalar multiplications; signatures by the same
// key, as in a peer's run of facts, share one point. The zero Batch is empty
// and ready to use.
type Batch struct {
	items []item
	// bad is set when a signature added could not even be decoded, so the
	// batch cannot be all valid.
	bad bool
	// keys holds decoded keys across Resets: decoding a point costs a
	// square root, a third of a batch's time per signature, and a peer's
	// facts come from few authors.
	keys map[[32]byte]*edwards25519.Point
}

// maxCachedKeys bounds the decoded keys a Batch keeps; past it the cache
// starts over, so a peer sending facts by many authors costs memory once.
const maxCachedKeys = 4096

// Add queues a signature.
func (b *Batch) Add(pub ed25519.PublicKey, msg, sig []byte) {
	var it item
	if !it.parse(pub, msg, sig) {
		b.bad = true
		return
	}
	b.items = append(b.items, it)
}

// Len is the number of signatures added.
func (b *Batch) Len() int { return len(b.items) }

// Reset empties the batch and keeps its storage.
func (b *Batch) key(pub [32]byte) (*edwards25519.Point, bool) {
	if a, ok := b.keys[pub]; ok {
		return a, true
	}
	a, err := new(edwards25519.Point).SetBytes(pub[:])
	if err != nil {
		return nil, false
	}
	if b.keys == nil || len(b.keys) >= maxCachedKeys {
		b.keys = make(map[[32]byte]*edwards25519.Point)
	}
	b.keys[pub] = a
	return a, true
}

func (b *Batch) Reset() {
	clear(b.items)
	b.items = b.items[:0]
	b.bad = false
}

// batchDomain separates the coefficients' hash from every other use of
// SHA-512 over the same bytes.
const batchDomain = "aura edsig batch coefficients v1"

// Verify reports whether every signature added is valid. It returns true
// whenever they all are. It returns false when one is not, except with
// probability below 2^-125: the coefficients of the linear combination are a
// hash of the whole batch (Fiat-Shamir), so a forger would have to find a
// batch whose hash cancels its bad equations. Only the cofactored equation
// is combined, so a result of true means each signature satisfies the rule
// Verify checks.
func (b *Batch) Verify() bool {
	if b.bad {
		return false
	}
	n := len(b.items)
	if n == 0 {
		return true
	}
	seed := sha512.New()
	seed.Write([]byte(batchDomain))
	for i := range b.items {
		it := &b.items[i]
		seed.Write(it.pub[:])
		seed.Write(it.sig[:])
		seed.Write(it.k.Bytes())
	}
	var seedSum [64]byte
	seed.Sum(seedSum[:0])

	// The combined equation is Σ z·R + Σ z·k·A - (Σ z·s)·B = 0 after the
	// cofactor. Points: each R, each distinct A (in order of first
	// appearance, so the computation does not depend on map order), and B.
	scalars := make([]*edwards25519.Scalar, 0, n+2)
	points := make([]*edwards25519.Point, 0, n+2)
	keyIndex := make(map[[32]byte]int)
	sumS := edwards25519.NewScalar()
	var block [64]byte
	for i := range b.items {
		it := &b.items[i]
		if i%4 == 0 {
			h := sha512.New()
			h.Write(seedSum[:])
			var ctr [4]byte
			binary.BigEndian.PutUint32(ctr[:], uint32(i/4))
			h.Write(ctr[:])
			h.Sum(block[:0])
		}
		// A 128-bit coefficient: small enough that its upper half costs
		// the multi-scalar multiplication no additions, large enough that
		// a forgery survives with negligible probability. Its lowest bit is
		// set so it is never zero.
		var zb [32]byte
		copy(zb[:16], block[(i%4)*16:(i%4+1)*16])
		zb[0] |= 1
		z, _ := new(edwards25519.Scalar).SetCanonicalBytes(zb[:])

		sumS.MultiplyAdd(z, it.s, sumS)
		// z·R, with z kept short rather than negated (a negated z would be
		// a full-length scalar).
		scalars = append(scalars, z)
		points = append(points, it.r)
		// z·k·A, accumulated per key.
		zk := new(edwards25519.Scalar).Multiply(z, it.k)
		if j, ok := keyIndex[it.pub]; ok {
			scalars[j].Add(scalars[j], zk)
			continue
		}
		a, ok := b.key(it.pub)
		if !ok {
			return false
		}
		keyIndex[it.pub] = len(points)
		scalars = append(scalars, zk)
		points = append(points, a)
	}
	scalars = append(scalars, sumS.Negate(sumS))
	points = append(points, edwards25519.NewGeneratorPoint())

	p := new(edwards25519.Point).VarTimeMultiScalarMult(scalars, points)
	return p.MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1
}
