package journal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/aura-p2p/aura/internal/core"
)

// TypeGenesis is the type of the first fact of every namespace. It names the
// namespace's founding members and threshold, and the namespace id is the
// tagged hash of its payload, so nobody can claim an existing namespace.
// The commitment tree and ceremonies later change membership with facts of
// their own; until then the genesis members are the namespace's members.
const TypeGenesis = "aura.namespace.genesis/v1"

// Limits of a genesis.
const (
	MaxGenesisMembers = 1024
	hpkeKeySize       = 32
	genesisVersion    = 1
)

// Member is a founding device of a namespace with the HPKE key it receives
// secrets under.
type Member struct {
	Device  core.DeviceID
	HPKEKey [hpkeKeySize]byte
}

// Genesis founds a namespace.
type Genesis struct {
	Kind      core.NamespaceKind
	Threshold uint16
	// Nonce makes two namespaces founded by the same members distinct.
	Nonce   [16]byte
	Members []Member
}

// genesisTag is the hash tag that turns a genesis payload into a namespace id.
func genesisTag(kind core.NamespaceKind) core.Tag {
	if kind == core.NamespaceAuthority {
		return core.TagAuthorityGenesis
	}
	return core.TagContextGenesis
}

// Encode returns the canonical payload: version(1) kind(1) threshold(2)
// nonce(16) count(2) then members sorted by device, each device(32) hpke(32).
func (g *Genesis) Encode() ([]byte, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	members := slices.Clone(g.Members)
	slices.SortFunc(members, func(a, b Member) int { return bytes.Compare(a.Device[:], b.Device[:]) })
	b := make([]byte, 0, 22+64*len(members))
	b = append(b, genesisVersion, byte(g.Kind))
	b = binary.BigEndian.AppendUint16(b, g.Threshold)
	b = append(b, g.Nonce[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(members)))
	for _, m := range members {
		b = append(b, m.Device[:]...)
		b = append(b, m.HPKEKey[:]...)
	}
	return b, nil
}

func (g *Genesis) check() error {
	if g.Kind != core.NamespaceAuthority && g.Kind != core.NamespaceContext {
		return fmt.Errorf("genesis: unknown namespace kind %d: %w", g.Kind, core.ErrInvalidArgument)
	}
	n := len(g.Members)
	if n == 0 || n > MaxGenesisMembers {
		return fmt.Errorf("genesis: %d members, want 1..%d: %w", n, MaxGenesisMembers, core.ErrInvalidArgument)
	}
	if g.Threshold == 0 || int(g.Threshold) > n {
		return fmt.Errorf("genesis: threshold %d of %d members: %w", g.Threshold, n, core.ErrInvalidArgument)
	}
	seen := make(map[core.DeviceID]bool, n)
	for _, m := range g.Members {
		if seen[m.Device] {
			return fmt.Errorf("genesis: member %s listed twice: %w", m.Device, core.ErrInvalidArgument)
		}
		seen[m.Device] = true
	}
	return nil
}

// DecodeGenesis parses a genesis payload, accepting only the canonical form.
func DecodeGenesis(b []byte) (Genesis, error) {
	const head = 22
	if len(b) < head {
		return Genesis{}, fmt.Errorf("genesis: %d bytes, want at least %d: %w", len(b), head, core.ErrInvalidArgument)
	}
	if b[0] != genesisVersion {
		return Genesis{}, fmt.Errorf("genesis: version %d unknown: %w", b[0], core.ErrInvalidArgument)
	}
	g := Genesis{Kind: core.NamespaceKind(b[1]), Threshold: binary.BigEndian.Uint16(b[2:])}
	copy(g.Nonce[:], b[4:20])
	n := int(binary.BigEndian.Uint16(b[20:]))
	if len(b) != head+64*n {
		return Genesis{}, fmt.Errorf("genesis: %d bytes for %d members: %w", len(b), n, core.ErrInvalidArgument)
	}
	g.Members = make([]Member, n)
	for i := range g.Members {
		off := head + 64*i
		copy(g.Members[i].Device[:], b[off:off+32])
		copy(g.Members[i].HPKEKey[:], b[off+32:off+64])
		if i > 0 && bytes.Compare(g.Members[i-1].Device[:], g.Members[i].Device[:]) >= 0 {
			return Genesis{}, fmt.Errorf("genesis: members not strictly sorted: %w", ErrNonCanonical)
		}
	}
	if err := g.check(); err != nil {
		return Genesis{}, err
	}
	return g, nil
}

// NamespaceOf returns the namespace a genesis payload founds.
func NamespaceOf(kind core.NamespaceKind, payload []byte) core.Namespace {
	return core.Namespace{Kind: kind, ID: core.TaggedHash(genesisTag(kind), payload)}
}

// HasMember reports whether d is a founding member.
func (g *Genesis) HasMember(d core.DeviceID) bool {
	for _, m := range g.Members {
		if m.Device == d {
			return true
		}
	}
	return false
}
