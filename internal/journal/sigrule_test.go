package journal

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha512"
	"testing"

	"filippo.io/edwards25519"

	"github.com/aura-p2p/aura/internal/core"
)

// withOrder2R re-signs sf as its author could with R moved by the point of
// order 2: valid under the cofactored rule of package edsig, refused by
// crypto/ed25519. Every path that admits a fact must decide it the same way,
// or devices that received it by different paths would hold different sets.
func withOrder2R(t *testing.T, seed byte, sf *SignedFact) *SignedFact {
	t.Helper()
	digest := sha512.Sum512(bytes.Repeat([]byte{seed}, 32))
	a, err := new(edwards25519.Scalar).SetBytesWithClamping(digest[:32])
	if err != nil {
		t.Fatal(err)
	}
	challenge := func(r []byte) *edwards25519.Scalar {
		h := sha512.Sum512(append(append(append([]byte{}, r...), sf.Author.PublicKey()...), sf.Body...))
		k, _ := new(edwards25519.Scalar).SetUniformBytes(h[:])
		return k
	}
	r, err := new(edwards25519.Point).SetBytes(sf.Signature[:32])
	if err != nil {
		t.Fatal(err)
	}
	s, err := new(edwards25519.Scalar).SetCanonicalBytes(sf.Signature[32:])
	if err != nil {
		t.Fatal(err)
	}
	nonce := new(edwards25519.Scalar).Subtract(s, new(edwards25519.Scalar).Multiply(challenge(sf.Signature[:32]), a))
	// (0, -1): y = p - 1, x = 0.
	order2 := bytes.Repeat([]byte{0xff}, 32)
	order2[0], order2[31] = 0xec, 0x7f
	t2, err := new(edwards25519.Point).SetBytes(order2)
	if err != nil {
		t.Fatal(err)
	}
	rb := r.Add(r, t2).Bytes()
	s2 := new(edwards25519.Scalar).MultiplyAdd(challenge(rb), a, nonce)
	out := *sf
	out.Signature = append(rb, s2.Bytes()...)
	if ed25519.Verify(sf.Author.PublicKey(), sf.Body, out.Signature) {
		t.Fatal("crypto/ed25519 accepts the variant: it tests nothing")
	}
	return &out
}

func TestEveryPathAppliesOneSignatureRule(t *testing.T) {
	ctx := context.Background()
	a := seededSigner(1)
	peer := seededSigner(50).DeviceID()
	g, ns := genesisFact(t, core.NamespaceContext, a, a)
	fact := func(l uint64) *SignedFact { return withOrder2R(t, 1, signed(t, a, ns, "chat", l, []byte{byte(l)})) }

	// The batch path: a batch of facts whose every signature carries the
	// order-2 point, and one whose batch also holds a forgery (so it falls
	// back to single verification).
	j := openWith(t, Options{})
	if _, err := j.Commit(ctx, Txn{Facts: []*SignedFact{g}}); err != nil {
		t.Fatal(err)
	}
	var batch []*SignedFact
	for l := uint64(2); l < 2+2*sigBatch; l++ {
		batch = append(batch, fact(l))
	}
	batch = append(batch, forged(fact(99)))
	rs, err := j.ReceiveBatch(ctx, peer, batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs[:len(rs)-1] {
		if r.Err != nil {
			t.Fatalf("fact %d refused by the batch path: %v", i, r.Err)
		}
	}
	if rs[len(rs)-1].Err == nil {
		t.Fatal("the forgery was stored")
	}
	// One at a time: Receive, Append, and the stored fact's check.
	if _, err := j.Receive(ctx, peer, fact(200)); err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if _, err := j.Append(ctx, fact(201)); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if err := fact(202).VerifySignature(); err != nil {
		t.Fatalf("VerifySignature: %v", err)
	}
}
