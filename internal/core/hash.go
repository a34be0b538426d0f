package core

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Tag is a domain-separation tag. Every hash in Aura is taken under a tag naming
// its use, so that bytes hashed for one purpose can never be replayed as another.
type Tag string

// Tags in use. A new use gets a new tag; a changed encoding gets a new version.
const (
	TagFact             Tag = "aura/fact/v1"
	TagAuthorityGenesis Tag = "aura/authority/genesis/v1"
	TagContextGenesis   Tag = "aura/context/genesis/v1"
	TagLink             Tag = "aura/link/v1"            // LinkContext
	TagAccountContext   Tag = "aura/account/context/v1" // AccountContext
)

// Hash is a 32-byte SHA-256 digest.
type Hash [32]byte

// TaggedHash returns SHA-256(tag ‖ 0x00 ‖ parts...). The NUL after the tag keeps
// a tag that is a prefix of another from colliding with it.
func TaggedHash(tag Tag, parts ...[]byte) Hash {
	h := sha256.New()
	h.Write([]byte(tag))
	h.Write([]byte{0})
	for _, p := range parts {
		h.Write(p)
	}
	var out Hash
	h.Sum(out[:0])
	return out
}

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is all zero bytes.
func (h Hash) IsZero() bool { return h == Hash{} }

// ParseHash decodes the 64-hex-digit form of a Hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("want %d hex digits, got %d: %w", 2*len(h), len(s), ErrInvalidArgument)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("not hex: %w", ErrInvalidArgument)
	}
	return h, nil
}
