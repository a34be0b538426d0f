package account

import (
	"crypto/ed25519"
	"fmt"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/tree"
)

// TypeTreeOp is a commitment tree op (tree.AppendOp's encoding) in an
// authority namespace: ops are facts, so they sync like facts and wait in
// the orphan pool while their author is not yet a member.
const TypeTreeOp = "aura.tree.op/v1"

// Validators checks the account's facts. Of an op, what can be checked
// without the tree: it parses, it lives in an authority namespace, and its
// attestation is the fact author's own signature over the op. Of a device's
// addresses, that they parse and name no peer. Binding the attestation to the
// fact's author means a member cannot publish an op it did not attest; the
// tree's reduction then decides, against the op's parent state, whether
// that author was entitled to attest it alone.
func Validators() map[string]journal.Validator {
	return map[string]journal.Validator{TypeTreeOp: validateOp, TypeDeviceAddrs: validateAddrs}
}

func validateOp(f *journal.SignedFact) error {
	if f.Namespace.Kind != core.NamespaceAuthority {
		return fmt.Errorf("tree op outside an authority namespace: %w", core.ErrInvalidArgument)
	}
	op, err := tree.ParseOp(f.Payload)
	if err != nil {
		return err
	}
	digest, err := op.SigningDigest()
	if err != nil {
		return err
	}
	if len(op.Attestation) != ed25519.SignatureSize || !ed25519.Verify(f.Author.PublicKey(), digest[:], op.Attestation) {
		return fmt.Errorf("tree op not attested by its fact's author %s: %w", f.Author, tree.ErrAttestation)
	}
	return nil
}

// Membership makes the commitment tree the source of an authority
// namespace's membership: the devices of the genesis, and every device an
// AddLeaf op fact names.
//
// The journal's membership is grow-only (journal.MembershipSource), so it
// follows every attested AddLeaf, also one that lost to a sibling and waits
// to be re-proposed: its author was a member entitled to attest it, so the
// device it names was admitted by the account. Removal stops a device from
// attesting tree ops (the reduction) and from deriving later group keys; it
// cannot un-admit facts in a set-union journal.
func Membership() journal.MembershipSource { return treeMembership{} }

type treeMembership struct{}

func (treeMembership) Kind() core.NamespaceKind { return core.NamespaceAuthority }
func (treeMembership) Handles(t string) bool    { return t == TypeTreeOp }
func (treeMembership) Adds(f *journal.SignedFact) ([]core.DeviceID, error) {
	op, err := tree.ParseOp(f.Payload)
	if err != nil {
		return nil, err
	}
	if add, ok := op.Body.(tree.AddLeafBody); ok && add.Leaf.Role == tree.RoleDevice {
		return []core.DeviceID{add.Leaf.Device}, nil
	}
	return nil, nil
}
