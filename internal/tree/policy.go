package tree

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/aura-p2p/aura/internal/core"
)

// A Policy says how many of a branch's members must sign (by FROST) an op
// that the branch attests: Any (one of them), KOfN(k) (k of them, however
// many there are) or All. A policy does not store the member count; it is
// read against the count of the moment with Required, so a branch keeps its
// policy as members join and leave, and an op that would leave fewer members
// than a KOfN needs must change the policy first.
//
// Strictness. Read as "signers required among m members", for every m at
// which both policies can be met,
//
//	Any ≤ KOfN(2) ≤ KOfN(3) ≤ … ≤ KOfN(65535) ≤ All
//
// (Any needs 1, KOfN(k) needs k, All needs m ≥ k). The order is total and
// does not depend on m, so Meet, the stricter of two policies, needs no
// member count, and is a meet in the semilattice whose bottom is All. Note
// what it implies: All and KOfN(m) need the same signers among m members,
// yet All is the stricter, because it keeps needing everyone when the branch
// grows and KOfN(m) does not. Replacing All with KOfN(m) is a weakening.
//
// The zero Policy is All, so a branch whose policy was never set fails closed.
// Policies are comparable with ==: each value has one representation (KOfN(1)
// is Any), and so one encoding.
type Policy struct {
	kind policyKind
	k    uint16 // KOfN only: 2 ≤ k
}

// policyKind's zero is kindAll, which makes the zero Policy All.
type policyKind uint8

const (
	kindAll policyKind = iota
	kindKOfN
	kindAny
)

// MaxThreshold is the largest k of KOfN: FROST identifies signers by a
// 16-bit identifier (frost.Identifier), so no more than 65535 can sign.
const MaxThreshold = math.MaxUint16

// Policy errors. Each wraps core.ErrInvalidArgument.
var (
	// ErrPolicy: a threshold of 0 or above MaxThreshold, or bytes that are
	// not the canonical encoding of a policy.
	ErrPolicy = fmt.Errorf("invalid policy: %w", core.ErrInvalidArgument)
	// ErrPolicyUnsatisfiable: a policy read against a member count that
	// cannot meet it (KOfN(k) with fewer than k members, or no members).
	ErrPolicyUnsatisfiable = fmt.Errorf("policy cannot be met by the members: %w", core.ErrInvalidArgument)
)

// Any is the policy "one member of the branch".
func Any() Policy { return Policy{kind: kindAny} }

// All is the policy "every member of the branch".
func All() Policy { return Policy{kind: kindAll} }

// KOfN is the policy "k members of the branch"; KOfN(1) is Any.
func KOfN(k int) (Policy, error) {
	switch {
	case k < 1 || k > MaxThreshold:
		return Policy{}, fmt.Errorf("threshold %d not in [1, %d]: %w", k, MaxThreshold, ErrPolicy)
	case k == 1:
		return Any(), nil
	}
	return Policy{kind: kindKOfN, k: uint16(k)}, nil
}

// String is "any", "all" or "k-of-n".
func (p Policy) String() string {
	switch p.kind {
	case kindAny:
		return "any"
	case kindKOfN:
		return fmt.Sprintf("%d-of-n", p.k)
	}
	return "all"
}

// Required is the number of signers p needs among n members.
func Required(p Policy, n int) (int, error) {
	if n < 1 {
		return 0, fmt.Errorf("%s among %d members: %w", p, n, ErrPolicyUnsatisfiable)
	}
	switch p.kind {
	case kindAny:
		return 1, nil
	case kindKOfN:
		if int(p.k) > n {
			return 0, fmt.Errorf("%s among %d members: %w", p, n, ErrPolicyUnsatisfiable)
		}
		return int(p.k), nil
	}
	return n, nil
}

// Meet is the stricter of a and b (see Policy for the order).
func Meet(a, b Policy) Policy {
	if a.rank() >= b.rank() {
		return a
	}
	return b
}

// AtLeastAsStrict reports whether proposed needs at least as many signers as
// current among n members and among any larger membership (wherever current
// can be met), and can itself be met by n members. A false answer means the change is a weakening (or installs a
// policy no one can meet): the caller may apply it only when the current
// policy approves it, and never when proposed is unsatisfiable.
func AtLeastAsStrict(proposed, current Policy, n int) bool {
	if _, err := Required(proposed, n); err != nil {
		return false
	}
	return proposed.rank() >= current.rank()
}

// rank places p in the strictness order: Any 1, KOfN(k) k, All above every k.
// It is injective, so the order is total on values and Meet is a plain max.
func (p Policy) rank() uint32 {
	switch p.kind {
	case kindAny:
		return 1
	case kindKOfN:
		return uint32(p.k)
	}
	return MaxThreshold + 1
}

// Encoding: version 1, then a kind byte (1 Any, 2 KOfN, 3 All; 0 is unused so
// zeroed bytes never parse), then for KOfN the threshold as a big-endian
// uint16 in [2, MaxThreshold]. Two bytes for Any and All, four for KOfN.
const (
	policyVersion  = 1
	policyWireAny  = 1
	policyWireKOfN = 2
	policyWireAll  = 3
)

// AppendPolicy appends p's canonical encoding to dst.
func AppendPolicy(dst []byte, p Policy) []byte {
	switch p.kind {
	case kindAny:
		return append(dst, policyVersion, policyWireAny)
	case kindKOfN:
		return binary.BigEndian.AppendUint16(append(dst, policyVersion, policyWireKOfN), p.k)
	}
	return append(dst, policyVersion, policyWireAll)
}

// ParsePolicy accepts exactly the canonical encoding of a policy, so that
// equal policies hash equally wherever they are committed to.
func ParsePolicy(b []byte) (Policy, error) {
	if len(b) < 2 {
		return Policy{}, fmt.Errorf("policy of %d bytes: %w", len(b), ErrPolicy)
	}
	if b[0] != policyVersion {
		return Policy{}, fmt.Errorf("policy version %d: %w", b[0], ErrPolicy)
	}
	want := 2
	if b[1] == policyWireKOfN {
		want = 4
	}
	if len(b) != want {
		return Policy{}, fmt.Errorf("policy kind %d in %d bytes, want %d: %w", b[1], len(b), want, ErrPolicy)
	}
	switch b[1] {
	case policyWireAny:
		return Any(), nil
	case policyWireAll:
		return All(), nil
	case policyWireKOfN:
		// 1-of-n is encoded as Any, so a threshold of 1 is a second
		// encoding and refused, like 0.
		k := binary.BigEndian.Uint16(b[2:])
		if k < 2 {
			return Policy{}, fmt.Errorf("policy threshold %d: %w", k, ErrPolicy)
		}
		return Policy{kind: kindKOfN, k: k}, nil
	}
	return Policy{}, fmt.Errorf("policy kind %d: %w", b[1], ErrPolicy)
}
