package wot

import (
	"fmt"
	"sync"

	"github.com/aura-p2p/aura/internal/core"
)

// TypeRevocation is a Revocation fact. It lives in the issuer's authority
// namespace: the node's validator checks that Revocation.Issuer is the
// authority of the namespace the fact is in, so only the issuer revokes.
const TypeRevocation = "aura.cap.revoke/v1"

const (
	revocationVersion = 1
	revocationLen     = 1 + 32 + 32
)

// Revocation revokes one block of the tokens issuer issued, and with it
// every token whose chain passes through that block (its delegations and
// theirs), but no sibling chain.
type Revocation struct {
	Issuer core.AuthorityID
	Block  core.Hash
}

// Encode: version(1)=1 issuer(32) block(32).
func (r Revocation) Encode() []byte {
	b := make([]byte, 0, revocationLen)
	b = append(b, revocationVersion)
	b = append(b, r.Issuer[:]...)
	return append(b, r.Block[:]...)
}

// DecodeRevocation accepts exactly the encoding of a revocation naming a block.
func DecodeRevocation(b []byte) (Revocation, error) {
	if len(b) != revocationLen {
		return Revocation{}, fmt.Errorf("token revocation: %d bytes, want %d: %w", len(b), revocationLen, core.ErrInvalidArgument)
	}
	if b[0] != revocationVersion {
		return Revocation{}, fmt.Errorf("token revocation: unknown version %d: %w", b[0], core.ErrInvalidArgument)
	}
	var r Revocation
	copy(r.Issuer[:], b[1:33])
	copy(r.Block[:], b[33:])
	if r.Block.IsZero() {
		return Revocation{}, fmt.Errorf("token revocation names no block: %w", core.ErrInvalidArgument)
	}
	return r, nil
}

// RevocationSet is the grow-only set of revoked blocks the node reduces from
// revocation facts. A revocation counts only against tokens whose root was
// issued by the revoking authority. Safe for concurrent use.
type RevocationSet struct {
	mu  sync.RWMutex
	set map[Revocation]struct{}
	gen uint64
}

// NewRevocationSet returns an empty set.
func NewRevocationSet() *RevocationSet {
	return &RevocationSet{set: make(map[Revocation]struct{})}
}

// Add records r and reports whether it is new.
func (s *RevocationSet) Add(r Revocation) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.set[r]; ok {
		return false
	}
	s.set[r] = struct{}{}
	s.gen++
	return true
}

// Revoked reports whether issuer revoked block.
func (s *RevocationSet) Revoked(issuer core.AuthorityID, block core.Hash) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.set[Revocation{Issuer: issuer, Block: block}]
	return ok
}

// Len is the number of revocations.
func (s *RevocationSet) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.set)
}

// Generation changes with every new revocation.
func (s *RevocationSet) Generation() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.gen
}
