package tree

import (
	"crypto/ed25519"
	"fmt"

	"github.com/aura-p2p/aura/internal/core"
)

// An Attester checks an op's attestation: that it was made, over the op's
// SigningDigest, by at least required distinct device leaves of st, the
// op's parent state. The tree decides required (Required of st's policy
// over its devices, or every device for a policy widening; see State.Apply);
// the attester checks signatures and nothing else, so the rule of how many
// must sign lives in one place whatever the signature scheme.
//
// MaxSigners is the most signers whose joint attestation the attester can
// check. The tree refuses (ErrSignersUnsupported) an op that needs more
// before it calls Verify, so an attester never has to accept an op it
// cannot judge.
//
// Implementations:
//   - SingleSigner (here): one device's Ed25519 signature. It covers a
//     one-device account and any policy that needs a single signer (Any).
//   - FROST (internal/crypto/frost, next): a threshold signature by the
//     policy's signers under the group key of a DKG. It needs the group's
//     public key in the tree state, which the enrollment ceremony's ops will
//     commit; until then an op that needs two or more signers is refused.
type Attester interface {
	MaxSigners() int
	Verify(st *State, op *Op, required int) error
}

// Attestation errors.
var (
	// ErrAttestation: the attestation does not verify (wrong signer, wrong
	// bytes, malformed).
	ErrAttestation = fmt.Errorf("op attestation does not verify: %w", core.ErrUnauthenticated)
	// ErrSignersUnsupported: the op needs more signers than the attester
	// can verify, so it cannot be accepted (rather than accepted unchecked).
	ErrSignersUnsupported = fmt.Errorf("op needs more signers than the attester supports: %w", core.ErrFailedPrecondition)
)

// SingleSigner verifies an attestation that is one Ed25519 signature
// (crypto/ed25519, RFC 8032) over the op's SigningDigest by the device key
// of the op's author leaf in the parent state. The tree checks that the
// author is a device leaf before it asks.
type SingleSigner struct{}

// MaxSigners implements Attester: one.
func (SingleSigner) MaxSigners() int { return 1 }

// Verify implements Attester.
func (SingleSigner) Verify(st *State, op *Op, required int) error {
	if required != 1 {
		return fmt.Errorf("%d signers required, a single signature attests one: %w", required, ErrSignersUnsupported)
	}
	author, ok := st.Leaf(op.Author)
	if !ok {
		return fmt.Errorf("author leaf %d: %w", op.Author, ErrNoSuchLeaf)
	}
	digest, err := op.SigningDigest()
	if err != nil {
		return err
	}
	if len(op.Attestation) != ed25519.SignatureSize || !ed25519.Verify(author.Device.PublicKey(), digest[:], op.Attestation) {
		return fmt.Errorf("signature by leaf %d: %w", op.Author, ErrAttestation)
	}
	return nil
}

// SignSingle returns the attestation SingleSigner accepts from the author of
// op: its device's Ed25519 signature over the op's SigningDigest.
func SignSingle(priv ed25519.PrivateKey, op *Op) ([]byte, error) {
	digest, err := op.SigningDigest()
	if err != nil {
		return nil, err
	}
	return ed25519.Sign(priv, digest[:]), nil
}
