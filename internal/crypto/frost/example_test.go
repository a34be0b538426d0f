package frost_test

import (
	"errors"
	"fmt"

	"github.com/aura-p2p/aura/internal/crypto/frost"
)

// A 2-of-3 key from a trusted dealer; participants 1 and 3 sign.
func Example() {
	shares, pub, err := frost.TrustedDealerKeygen(nil, 2, 3)
	if err != nil {
		panic(err)
	}
	keys := make([]*frost.KeyPackage, len(shares))
	for i, s := range shares {
		// Each participant checks its share against the dealer's commitment.
		if keys[i], err = s.Verify(); err != nil {
			panic(err)
		}
	}
	signers := []*frost.KeyPackage{keys[0], keys[2]}

	// Round one: every signer commits and keeps its nonces in memory.
	nonces := make([]*frost.SigningNonces, len(signers))
	commitments := make([]*frost.SigningCommitment, len(signers))
	for i, k := range signers {
		if nonces[i], err = frost.Commit(nil, k); err != nil {
			panic(err)
		}
		commitments[i] = nonces[i].Commitment()
	}

	// The coordinator sends the signing package; round two consumes the nonces.
	pkg, err := frost.NewSigningPackage(commitments, []byte("attest tree op 42"))
	if err != nil {
		panic(err)
	}
	sigShares := make([]*frost.SignatureShare, len(signers))
	for i, k := range signers {
		if sigShares[i], err = frost.Sign(k, nonces[i], pkg); err != nil {
			panic(err)
		}
	}
	_, err = frost.Sign(signers[0], nonces[0], pkg)
	fmt.Println("second use of nonces:", errors.Is(err, frost.ErrNonceReused))

	sig, err := frost.Aggregate(pub, pkg, sigShares)
	if err != nil {
		// A bad share names its sender: frost.Culprits(err).
		panic(err)
	}
	fmt.Println("valid:", frost.Verify(pub.PublicKey().Bytes(), []byte("attest tree op 42"), sig.Bytes()) == nil)
	// Output:
	// second use of nonces: true
	// valid: true
}

// A 2-of-2 distributed key generation. In a ceremony the packages travel
// over the network; here they are handed over directly.
func ExampleNewDKG() {
	p1, _ := frost.NewDKG(nil, 1, 2, 2)
	p2, _ := frost.NewDKG(nil, 2, 2, 2)
	a1, _ := p1.Round1() // broadcast
	a2, _ := p2.Round1()
	b1, err := p1.Round2([]*frost.Round1Package{a2}) // b1[0] goes to participant 2 only
	if err != nil {
		panic(err)
	}
	b2, err := p2.Round2([]*frost.Round1Package{a1})
	if err != nil {
		panic(err)
	}
	k1, pub1, err := p1.Finish(b2)
	if err != nil {
		var cheater *frost.MisbehaviorError
		if errors.As(err, &cheater) {
			fmt.Println("blame", cheater.Participant)
		}
		return
	}
	_, pub2, _ := p2.Finish(b1)
	fmt.Println("same group key:", pub1.PublicKey().Equal(pub2.PublicKey()), k1.PublicKey().Equal(pub1.PublicKey()))
	// Output: same group key: true true
}
