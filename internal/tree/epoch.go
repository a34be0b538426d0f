package tree

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/aura-p2p/aura/internal/core"
)

// Epoch secrets. Every applied op starts an epoch, and every epoch has a
// secret, chained as RFC 9420's epoch secrets are:
//
//	epoch secret[e] = HKDF-Expand(HKDF-Extract(salt = epoch secret[e-1],
//	                  ikm = commit secret[e]), label ‖ context, 32)
//
// where the commit secret is the root secret of the op's update path when it
// is an UpdatePath, and 32 zero bytes for every other op, and context names
// the group and the new state (its epoch and root commitment). A member that
// held epoch e-1's secret follows any op without a path on its own; through
// an UpdatePath it needs the path's root secret too, which only the members
// the path was sealed to can open. So a member left out of an update path
// (one that was removed first) loses every epoch from there on, and a
// member's own update path takes back from an attacker who copied its keys
// every epoch after it. A new member is handed its first epoch's secret by
// whoever admits it. Group keys are GroupKey of the epoch secret.

// labelEpoch separates epoch secrets from every other derivation.
const labelEpoch = "aura/tree/epoch/v1"

// EpochSecret is the secret of the epoch an op starts, from the previous
// epoch's and the op's commit secret (nil: an op without an update path).
// The caller clears what it no longer needs.
func EpochSecret(prev [SecretSize]byte, commit *[SecretSize]byte, context []byte) (next [SecretSize]byte, err error) {
	defer clear(prev[:])
	var ikm [SecretSize]byte
	if commit != nil {
		ikm = *commit
	}
	defer clear(ikm[:])
	prk, err := hkdf.Extract(sha256.New, ikm[:], prev[:])
	if err != nil {
		return next, fmt.Errorf("epoch secret: %w", err)
	}
	defer clear(prk)
	info := make([]byte, 0, len(labelEpoch)+binary.MaxVarintLen64+len(context))
	info = append(info, labelEpoch...)
	info = binary.AppendUvarint(info, uint64(len(context)))
	info = append(info, context...)
	b, err := hkdf.Expand(sha256.New, prk, string(info), SecretSize)
	if err != nil {
		return next, fmt.Errorf("epoch secret: %w", err)
	}
	copy(next[:], b)
	clear(b)
	return next, nil
}

// LeafKeys is the PathKeys of a member whose leaf key is an X25519 private
// key it already holds (a device's own HPKE key, which founding and joining
// leaves carry), rather than one a commit derived. The caller clears priv.
func LeafKeys(leaf LeafIndex, priv []byte) (*PathKeys, error) {
	if leaf >= MaxLeaves {
		return nil, fmt.Errorf("leaf %d, at most %d: %w", leaf, MaxLeaves-1, ErrIndexRange)
	}
	h, err := heldFromPrivate(NodeIndex(2*leaf), priv)
	if err != nil {
		return nil, err
	}
	return &PathKeys{leaf: leaf, held: []heldKey{h}}, nil
}

func heldFromPrivate(x NodeIndex, priv []byte) (heldKey, error) {
	h := heldKey{node: x}
	sk, err := hpkeKEM().NewPrivateKey(priv)
	if err != nil {
		return h, fmt.Errorf("private key of node %d: %w", x, ErrNodeKey)
	}
	copy(h.priv[:], priv)
	copy(h.pub[:], sk.PublicKey().Bytes())
	return h, nil
}

// Encoding of PathKeys, for a member to persist between restarts:
//
//	version (1) = 1 | leaf (4) | count k (1, ≤ 32) | k × { node (4) | private key (32) }
//
// Public keys are derived again on parsing.
const pathKeysVersion = 1

// AppendPathKeys appends k's encoding to dst. The result holds private keys:
// the caller clears it once stored.
func AppendPathKeys(dst []byte, k *PathKeys) []byte {
	dst = append(dst, pathKeysVersion)
	dst = binary.BigEndian.AppendUint32(dst, uint32(k.leaf))
	dst = append(dst, byte(len(k.held)))
	for i := range k.held {
		dst = binary.BigEndian.AppendUint32(dst, uint32(k.held[i].node))
		dst = append(dst, k.held[i].priv[:]...)
	}
	return dst
}

// ParsePathKeys reads AppendPathKeys' encoding: every node must lie on the
// leaf's path, at most once, and every key must be a usable X25519 key.
func ParsePathKeys(b []byte) (*PathKeys, error) {
	const entry = 4 + PublicKeySize
	if len(b) < 6 || b[0] != pathKeysVersion {
		return nil, fmt.Errorf("path keys: version or header: %w", core.ErrDataLoss)
	}
	k := &PathKeys{leaf: LeafIndex(binary.BigEndian.Uint32(b[1:]))}
	n := int(b[5])
	b = b[6:]
	if k.leaf >= MaxLeaves || n > maxPathDepth+1 || len(b) != n*entry {
		return nil, fmt.Errorf("path keys: leaf %d, %d keys in %d bytes: %w", k.leaf, n, len(b), core.ErrDataLoss)
	}
	leaf := NodeIndex(2 * k.leaf)
	for i := range n {
		x := NodeIndex(binary.BigEndian.Uint32(b[i*entry:]))
		lo, hi := span(x)
		if uint64(leaf) < lo || uint64(leaf) > hi || k.find(x) != nil {
			k.Zero()
			return nil, fmt.Errorf("path keys: node %d is not on leaf %d's path, or twice: %w", x, k.leaf, core.ErrDataLoss)
		}
		h, err := heldFromPrivate(x, b[i*entry+4:(i+1)*entry])
		if err != nil {
			k.Zero()
			return nil, fmt.Errorf("path keys: %w: %w", err, core.ErrDataLoss)
		}
		k.held = append(k.held, h)
	}
	return k, nil
}

// Clone is a copy of k that Zero on either leaves the other intact.
func (k *PathKeys) Clone() *PathKeys {
	return &PathKeys{leaf: k.leaf, held: slices.Clone(k.held)}
}

// Matching is a copy of the keys of k that v still holds: those whose node
// has the same public key in v. A member whose path keys went stale above
// some node (a path it could not open) keeps what is still good below it.
func (k *PathKeys) Matching(v KEMView) *PathKeys {
	out := &PathKeys{leaf: k.leaf}
	for _, h := range k.held {
		if pub, ok := v.NodeKey(h.node); ok && bytes.Equal(pub, h.pub[:]) {
			out.held = append(out.held, h)
		}
	}
	return out
}
