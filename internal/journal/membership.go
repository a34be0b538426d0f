package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/aura-p2p/aura/internal/core"
)

// MembershipSource says which facts change the membership of the namespaces
// of one kind. The journal folds what it returns into members/<ns> in the
// same transaction as the fact, and the insert check and Members read that.
//
// Membership is genesis members ∪ the devices added by accepted facts, and a
// fact is accepted only if its author is a member: a grow-only set whose
// closure is the same whatever order the facts arrive in (a fact that arrives
// before the fact that admits its author waits in the orphan pool, see
// Receive). Removal is deliberately not expressible here: it makes acceptance
// depend on order and needs the commitment tree's epochs.
type MembershipSource interface {
	// Kind is the namespace kind whose membership this source decides.
	Kind() core.NamespaceKind
	// Handles reports whether facts of typeID change membership.
	Handles(typeID string) bool
	// Adds returns the devices a handled fact makes members. It sees only the
	// fact, never state, so it must be pure; an error rejects the fact.
	Adds(f *SignedFact) ([]core.DeviceID, error)
}

// GenesisOnly is the membership source under which a namespace's members are
// the genesis members, fixed. It is the default for authority namespaces until
// the commitment tree changes them.
func GenesisOnly(kind core.NamespaceKind) MembershipSource { return genesisOnly{kind: kind} }

type genesisOnly struct{ kind core.NamespaceKind }

func (g genesisOnly) Kind() core.NamespaceKind { return g.kind }
func (genesisOnly) Handles(string) bool        { return false }
func (genesisOnly) Adds(*SignedFact) ([]core.DeviceID, error) {
	return nil, fmt.Errorf("genesis-only membership changes through no fact: %w", core.ErrInternal)
}

// TypeContextParticipants adds participants to a context namespace. Its author
// must already be a participant; its payload is EncodeParticipants' output.
const TypeContextParticipants = "aura.context.participants/v1"

const participantsVersion = 1

// ContextParticipants is the default membership source of context namespaces:
// a context's participants are its genesis members and every device a
// participant has added with a TypeContextParticipants fact.
func ContextParticipants() MembershipSource { return contextParticipants{} }

type contextParticipants struct{}

func (contextParticipants) Kind() core.NamespaceKind { return core.NamespaceContext }
func (contextParticipants) Handles(t string) bool    { return t == TypeContextParticipants }
func (contextParticipants) Adds(f *SignedFact) ([]core.DeviceID, error) {
	ms, err := DecodeParticipants(f.Payload)
	if err != nil {
		return nil, err
	}
	out := make([]core.DeviceID, len(ms))
	for i, m := range ms {
		out[i] = m.Device
	}
	return out, nil
}

// EncodeParticipants returns the canonical payload of a participants fact:
// version(1) count(2) then members sorted by device, each device(32) hpke(32).
// The HPKE keys are what later context secrets are sealed to.
func EncodeParticipants(add []Member) ([]byte, error) {
	if err := checkParticipants(add); err != nil {
		return nil, err
	}
	ms := slices.Clone(add)
	slices.SortFunc(ms, func(a, b Member) int { return bytes.Compare(a.Device[:], b.Device[:]) })
	b := make([]byte, 0, 3+64*len(ms))
	b = append(b, participantsVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(ms)))
	for _, m := range ms {
		b = append(b, m.Device[:]...)
		b = append(b, m.HPKEKey[:]...)
	}
	return b, nil
}

func checkParticipants(ms []Member) error {
	if len(ms) == 0 || len(ms) > MaxGenesisMembers {
		return fmt.Errorf("participants: %d devices, want 1..%d: %w", len(ms), MaxGenesisMembers, core.ErrInvalidArgument)
	}
	seen := make(map[core.DeviceID]bool, len(ms))
	for _, m := range ms {
		if seen[m.Device] {
			return fmt.Errorf("participants: device %s listed twice: %w", m.Device, core.ErrInvalidArgument)
		}
		seen[m.Device] = true
	}
	return nil
}

// DecodeParticipants parses a participants payload, accepting only the
// canonical form.
func DecodeParticipants(b []byte) ([]Member, error) {
	const head = 3
	if len(b) < head {
		return nil, fmt.Errorf("participants: %d bytes, want at least %d: %w", len(b), head, core.ErrInvalidArgument)
	}
	if b[0] != participantsVersion {
		return nil, fmt.Errorf("participants: version %d unknown: %w", b[0], core.ErrInvalidArgument)
	}
	n := int(binary.BigEndian.Uint16(b[1:]))
	if len(b) != head+64*n {
		return nil, fmt.Errorf("participants: %d bytes for %d devices: %w", len(b), n, core.ErrInvalidArgument)
	}
	ms := make([]Member, n)
	for i := range ms {
		off := head + 64*i
		copy(ms[i].Device[:], b[off:off+32])
		copy(ms[i].HPKEKey[:], b[off+32:off+64])
		if i > 0 && bytes.Compare(ms[i-1].Device[:], ms[i].Device[:]) >= 0 {
			return nil, fmt.Errorf("participants: devices not strictly sorted: %w", ErrNonCanonical)
		}
	}
	if err := checkParticipants(ms); err != nil {
		return nil, err
	}
	return ms, nil
}

// membershipSources resolves Options.Membership: at most one source a kind,
// the defaults for kinds without one.
func membershipSources(given []MembershipSource) (map[core.NamespaceKind]MembershipSource, error) {
	out := map[core.NamespaceKind]MembershipSource{}
	for _, s := range given {
		k := s.Kind()
		if k != core.NamespaceAuthority && k != core.NamespaceContext {
			return nil, fmt.Errorf("membership source for unknown namespace kind %d: %w", k, core.ErrInvalidArgument)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("two membership sources for namespace kind %d: %w", k, core.ErrInvalidArgument)
		}
		if s.Handles(TypeGenesis) {
			return nil, fmt.Errorf("membership source for kind %d claims %s: %w", k, TypeGenesis, core.ErrInvalidArgument)
		}
		out[k] = s
	}
	if out[core.NamespaceAuthority] == nil {
		out[core.NamespaceAuthority] = GenesisOnly(core.NamespaceAuthority)
	}
	if out[core.NamespaceContext] == nil {
		out[core.NamespaceContext] = ContextParticipants()
	}
	return out, nil
}

// membershipType reports whether some kind's source handles typeID.
func (j *Journal) membershipType(typeID string) bool {
	for _, s := range j.membership {
		if s.Handles(typeID) {
			return true
		}
	}
	return false
}

// checkMembershipFact is validate's part for membership facts: the type must
// belong to the fact's namespace kind and its payload must decode.
func (j *Journal) checkMembershipFact(sf *SignedFact) error {
	if !j.membershipType(sf.TypeID) {
		return nil
	}
	s := j.membership[sf.Namespace.Kind]
	if s == nil || !s.Handles(sf.TypeID) {
		return fmt.Errorf("type %s changes the membership of another namespace kind than %d: %w", sf.TypeID, sf.Namespace.Kind, core.ErrInvalidArgument)
	}
	if _, err := s.Adds(sf); err != nil {
		return fmt.Errorf("type %s: %w", sf.TypeID, err)
	}
	return nil
}

// membersBucket is members/<ns>, nil if the namespace has none yet.
func (st *txState) membersBucket(ns core.Namespace) *bolt.Bucket {
	return st.members.Bucket(nsKey(ns))
}

func (st *txState) isMember(ns core.Namespace, d core.DeviceID) bool {
	b := st.membersBucket(ns)
	return b != nil && b.Get(d[:]) != nil
}

// addMembers records devs as members of ns, admitted by the fact at k. A device
// admitted by several facts keeps the least (lamport, id) of them, so the
// stored value does not depend on arrival order. It reports whether any
// device is new.
func (st *txState) addMembers(ns core.Namespace, devs []core.DeviceID, k FactKey) (bool, error) {
	b, err := st.members.CreateBucketIfNotExists(nsKey(ns))
	if err != nil {
		return false, err
	}
	val := factKey(k)
	grew := false
	for _, d := range devs {
		old := b.Get(d[:])
		if old != nil {
			ok, err := parseFactKey(old)
			if err != nil {
				return false, err
			}
			if !k.Less(ok) {
				continue
			}
		} else {
			grew = true
		}
		if err := b.Put(d[:], val); err != nil {
			return false, err
		}
	}
	return grew, nil
}

// Members returns a namespace's member devices, sorted.
func (j *Journal) Members(ctx context.Context, ns core.Namespace) ([]core.DeviceID, error) {
	var out []core.DeviceID
	err := j.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketNamespaces).Get(nsKey(ns)) == nil {
			return fmt.Errorf("namespace %s: %w", ns, core.ErrNotFound)
		}
		b := tx.Bucket(bucketMembers).Bucket(nsKey(ns))
		if b == nil {
			return fmt.Errorf("namespace %s has no members bucket: %w", ns, ErrCorrupt)
		}
		return b.ForEach(func(k, _ []byte) error {
			if len(k) != len(core.DeviceID{}) {
				return fmt.Errorf("member key of %d bytes: %w", len(k), ErrCorrupt)
			}
			var d core.DeviceID
			copy(d[:], k)
			out = append(out, d)
			return nil
		})
	})
	return out, err
}
