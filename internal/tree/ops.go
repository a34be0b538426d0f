package tree

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/aura-p2p/aura/internal/core"
)

// An Op changes the tree: it names the state it applies to (its parent),
// the leaf of the device that authored it, what it does (its body), and an
// attestation by the signers the parent state's policy requires (see
// Attester). Ops are facts: they are made once, synced as bytes, and
// identified by the hash of their complete encoding.
type Op struct {
	Parent      StateName
	Author      LeafIndex
	Body        Body
	Attestation []byte
}

// Kind is what an op does, numbered as encoded; 0 is unused.
type Kind uint8

// Op kinds.
const (
	KindAddLeaf      Kind = 1
	KindRemoveLeaf   Kind = 2
	KindChangePolicy Kind = 3
	KindRotateEpoch  Kind = 4
	KindUpdatePath   Kind = 5
)

func (k Kind) String() string {
	switch k {
	case KindAddLeaf:
		return "AddLeaf"
	case KindRemoveLeaf:
		return "RemoveLeaf"
	case KindChangePolicy:
		return "ChangePolicy"
	case KindRotateEpoch:
		return "RotateEpoch"
	case KindUpdatePath:
		return "UpdatePath"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Body is an op's kind-specific part: AddLeafBody, RemoveLeafBody,
// ChangePolicyBody, RotateEpochBody or UpdatePathBody. The set is closed.
type Body interface {
	Kind() Kind
	appendBody(dst []byte) ([]byte, error)
}

// AddLeafBody puts a new member in the tree's first blank leaf.
type AddLeafBody struct{ Leaf Leaf }

// RemoveLeafBody blanks a leaf.
type RemoveLeafBody struct{ Leaf LeafIndex }

// ChangePolicyBody replaces the tree's policy (see State.Apply for when a
// weaker one is allowed).
type ChangePolicyBody struct{ Policy Policy }

// RotateEpochBody only moves the tree to a new epoch, and so its keys.
type RotateEpochBody struct{}

// UpdatePathBody replaces the author's own leaf HPKE key and carries the
// path secrets of its new direct path. Path is the key schedule's encoding
// (AppendUpdatePath); the state does not read it.
type UpdatePathBody struct {
	Leaf LeafIndex
	HPKE [32]byte
	Path []byte
}

// Kind implements Body.
func (AddLeafBody) Kind() Kind { return KindAddLeaf }

// Kind implements Body.
func (RemoveLeafBody) Kind() Kind { return KindRemoveLeaf }

// Kind implements Body.
func (ChangePolicyBody) Kind() Kind { return KindChangePolicy }

// Kind implements Body.
func (RotateEpochBody) Kind() Kind { return KindRotateEpoch }

// Kind implements Body.
func (UpdatePathBody) Kind() Kind { return KindUpdatePath }

// OpID identifies an op: the tagged hash of its complete encoding,
// attestation included. Among sibling ops the highest OpID wins.
type OpID core.Hash

func (id OpID) String() string { return hex.EncodeToString(id[:]) }

// compare orders ids as big-endian numbers.
func (id OpID) compare(o OpID) int { return bytes.Compare(id[:], o[:]) }

// Size bounds, checked by AppendOp and ParseOp alike.
const (
	// MaxPathBytes bounds an UpdatePath's path: above the key schedule's
	// own bound for an UpdatePath (MaxPathCiphertexts sealed secrets, about
	// 5.5 MB), so that any path it produces fits.
	MaxPathBytes = 8 << 20
	// MaxAttestationBytes bounds an attestation: an Ed25519 or FROST
	// signature is 64 bytes; the rest leaves room for a signer list.
	MaxAttestationBytes = 16 << 10
)

// ErrOpEncoding: bytes that are not the canonical encoding of an op, or an
// op that has none (no body, an unknown role, a field over its bound).
var ErrOpEncoding = fmt.Errorf("invalid tree op encoding: %w", core.ErrInvalidArgument)

// Encoding, big-endian, with fixed-size fields and explicit lengths so that
// every op has exactly one encoding:
//
//	version (1) = 1 | parent epoch (8) | parent commitment (32) |
//	author (4) | kind (1) | body | attestation length (2) | attestation
//
// with bodies
//
//	AddLeaf       role (1) | device key (32) | HPKE key (32)
//	RemoveLeaf    leaf (4)
//	ChangePolicy  the policy's encoding (AppendPolicy: 2 or 4 bytes)
//	RotateEpoch   nothing
//	UpdatePath    leaf (4) | HPKE key (32) | path length (4) | path
//
// Signers sign the bytes before the attestation length (SigningDigest).
const (
	opVersion    = 1
	opHeaderSize = 1 + 8 + 32 + 4 + 1
)

// AppendOp appends op's canonical encoding to dst, or refuses an op that
// ParseOp would not accept back.
func AppendOp(dst []byte, op *Op) ([]byte, error) {
	dst, err := appendSigned(dst, op)
	if err != nil {
		return dst, err
	}
	if len(op.Attestation) > MaxAttestationBytes {
		return dst, fmt.Errorf("attestation of %d bytes, at most %d: %w", len(op.Attestation), MaxAttestationBytes, ErrOpEncoding)
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(op.Attestation)))
	return append(dst, op.Attestation...), nil
}

// appendSigned appends the part of op's encoding that signers sign.
func appendSigned(dst []byte, op *Op) ([]byte, error) {
	if op.Body == nil {
		return dst, fmt.Errorf("op without a body: %w", ErrOpEncoding)
	}
	dst = append(dst, opVersion)
	dst = binary.BigEndian.AppendUint64(dst, op.Parent.Epoch)
	dst = append(dst, op.Parent.Commitment[:]...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(op.Author))
	dst = append(dst, byte(op.Body.Kind()))
	return op.Body.appendBody(dst)
}

func (b AddLeafBody) appendBody(dst []byte) ([]byte, error) {
	if b.Leaf.Role != RoleDevice && b.Leaf.Role != RoleGuardian {
		return dst, fmt.Errorf("leaf %s: %w", b.Leaf.Role, ErrOpEncoding)
	}
	return appendLeaf(dst, &b.Leaf), nil
}

func (b RemoveLeafBody) appendBody(dst []byte) ([]byte, error) {
	return binary.BigEndian.AppendUint32(dst, uint32(b.Leaf)), nil
}

func (b ChangePolicyBody) appendBody(dst []byte) ([]byte, error) {
	return AppendPolicy(dst, b.Policy), nil
}

func (RotateEpochBody) appendBody(dst []byte) ([]byte, error) { return dst, nil }

func (b UpdatePathBody) appendBody(dst []byte) ([]byte, error) {
	if len(b.Path) > MaxPathBytes {
		return dst, fmt.Errorf("path of %d bytes, at most %d: %w", len(b.Path), MaxPathBytes, ErrOpEncoding)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(b.Leaf))
	dst = append(dst, b.HPKE[:]...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b.Path)))
	return append(dst, b.Path...), nil
}

// ID is the tagged hash of op's complete encoding.
func (op *Op) ID() (OpID, error) {
	b, err := AppendOp(nil, op)
	if err != nil {
		return OpID{}, err
	}
	return OpID(core.TaggedHash(TagOp, b)), nil
}

// SigningDigest is what an attestation signs: the tagged hash of op's
// encoding without the attestation. It binds the parent state, the author
// and the body, so an attestation cannot be moved to another op or state.
func (op *Op) SigningDigest() (core.Hash, error) {
	b, err := appendSigned(nil, op)
	if err != nil {
		return core.Hash{}, err
	}
	return core.TaggedHash(TagOpSigning, b), nil
}

// ParseOp accepts exactly the canonical encoding of an op. It checks the
// encoding only; whether the op may apply to a state is State.Apply's
// question (a leaf key that is no curve point parses, and is refused there).
// The op's Path and Attestation alias b.
func ParseOp(b []byte) (*Op, error) {
	if len(b) < opHeaderSize {
		return nil, fmt.Errorf("%d bytes, at least %d: %w", len(b), opHeaderSize, ErrOpEncoding)
	}
	if b[0] != opVersion {
		return nil, fmt.Errorf("version %d: %w", b[0], ErrOpEncoding)
	}
	op := &Op{Parent: StateName{Epoch: binary.BigEndian.Uint64(b[1:])}}
	copy(op.Parent.Commitment[:], b[9:41])
	op.Author = LeafIndex(binary.BigEndian.Uint32(b[41:]))
	kind := Kind(b[45])
	b = b[opHeaderSize:]
	var err error
	if op.Body, b, err = parseBody(kind, b); err != nil {
		return nil, err
	}
	if len(b) < 2 {
		return nil, fmt.Errorf("no attestation length: %w", ErrOpEncoding)
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if n > MaxAttestationBytes {
		return nil, fmt.Errorf("attestation of %d bytes, at most %d: %w", n, MaxAttestationBytes, ErrOpEncoding)
	}
	if len(b) != n {
		return nil, fmt.Errorf("attestation of %d bytes in %d: %w", n, len(b), ErrOpEncoding)
	}
	op.Attestation = b
	return op, nil
}

// parseBody parses a body of the given kind from the front of b and
// returns the rest.
func parseBody(kind Kind, b []byte) (Body, []byte, error) {
	switch kind {
	case KindAddLeaf:
		if len(b) < leafEncodingSize {
			return nil, nil, fmt.Errorf("AddLeaf of %d bytes: %w", len(b), ErrOpEncoding)
		}
		l := Leaf{Role: Role(b[0])}
		if l.Role != RoleDevice && l.Role != RoleGuardian {
			return nil, nil, fmt.Errorf("AddLeaf %s: %w", l.Role, ErrOpEncoding)
		}
		copy(l.Device[:], b[1:33])
		copy(l.HPKE[:], b[33:65])
		return AddLeafBody{Leaf: l}, b[leafEncodingSize:], nil
	case KindRemoveLeaf:
		if len(b) < 4 {
			return nil, nil, fmt.Errorf("RemoveLeaf of %d bytes: %w", len(b), ErrOpEncoding)
		}
		return RemoveLeafBody{Leaf: LeafIndex(binary.BigEndian.Uint32(b))}, b[4:], nil
	case KindChangePolicy:
		// A policy's encoding is 4 bytes for k-of-n and 2 otherwise; its
		// second byte says which.
		n := 2
		if len(b) >= 2 && b[1] == policyWireKOfN {
			n = 4
		}
		if len(b) < n {
			return nil, nil, fmt.Errorf("ChangePolicy of %d bytes: %w", len(b), ErrOpEncoding)
		}
		p, err := ParsePolicy(b[:n])
		if err != nil {
			return nil, nil, fmt.Errorf("ChangePolicy: %w: %w", ErrOpEncoding, err)
		}
		return ChangePolicyBody{Policy: p}, b[n:], nil
	case KindRotateEpoch:
		return RotateEpochBody{}, b, nil
	case KindUpdatePath:
		if len(b) < 4+32+4 {
			return nil, nil, fmt.Errorf("UpdatePath of %d bytes: %w", len(b), ErrOpEncoding)
		}
		u := UpdatePathBody{Leaf: LeafIndex(binary.BigEndian.Uint32(b))}
		copy(u.HPKE[:], b[4:36])
		n := binary.BigEndian.Uint32(b[36:])
		b = b[40:]
		if n > MaxPathBytes || int(n) > len(b) {
			return nil, nil, fmt.Errorf("UpdatePath path of %d bytes in %d: %w", n, len(b), ErrOpEncoding)
		}
		u.Path = b[:n:n]
		return u, b[n:], nil
	}
	return nil, nil, fmt.Errorf("%s: %w", kind, ErrOpEncoding)
}
