package wot

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"fmt"
	"io"
	"slices"

	"github.com/aura-p2p/aura/internal/core"
)

// MaxTokenDepth caps the blocks of a delegation chain (root included).
const MaxTokenDepth = 8

// Domain-separation tags of the token hashes.
const (
	// TagCapBlock names a block: its id is the tagged hash of its signed bytes.
	TagCapBlock core.Tag = "aura/cap/block/v1"
	// TagCapToken names a whole token (all blocks and signatures), the key of
	// the verification cache.
	TagCapToken core.Tag = "aura/cap/token/v1"
)

// sigContext prefixes the block id in what a block's key signs, so that a
// capability signature can never be taken for a signature of anything else
// the same device key signs.
const sigContext = "aura/cap/sig/v1\x00"

// Scope is the namespace a token is good for: one namespace, or any. The
// zero value is any.
type Scope struct {
	ns core.Namespace // zero Kind: any
}

// AnyScope is the unrestricted scope.
func AnyScope() Scope { return Scope{} }

// NamespaceScope restricts to one namespace.
func NamespaceScope(ns core.Namespace) (Scope, error) {
	if !ns.Valid() {
		return Scope{}, fmt.Errorf("scope %s: %w", ns, core.ErrInvalidArgument)
	}
	return Scope{ns: ns}, nil
}

// ParseScope accepts "any", "authority/<id>" or "context/<id>".
func ParseScope(s string) (Scope, error) {
	if s == "any" {
		return AnyScope(), nil
	}
	ns, err := core.ParseNamespace(s)
	if err != nil {
		return Scope{}, fmt.Errorf("scope: %w", err)
	}
	return Scope{ns: ns}, nil
}

// IsAny reports whether the scope is unrestricted.
func (s Scope) IsAny() bool { return s.ns.Kind == 0 }

// Namespace returns the namespace of a restricted scope.
func (s Scope) Namespace() (core.Namespace, bool) { return s.ns, !s.IsAny() }

// Within reports whether s is equal to or narrower than parent.
func (s Scope) Within(parent Scope) bool { return parent.IsAny() || s == parent }

// Allows reports whether the scope covers namespace ns.
func (s Scope) Allows(ns core.Namespace) bool { return s.IsAny() || s.ns == ns }

func (s Scope) String() string {
	if s.IsAny() {
		return "any"
	}
	return s.ns.String()
}

// Grant is what a block hands its holder.
type Grant struct {
	// Holder is the device whose key may use the token and sign the next block.
	Holder   core.DeviceID
	Caps     Capabilities
	Scope    Scope
	NotAfter int64 // unix seconds, inclusive
}

// Block is one link of a delegation chain, as Token.Blocks shows it.
type Block struct {
	Index int
	ID    core.Hash // tagged hash of the signed bytes
	Prev  core.Hash // the previous block's ID; zero for the root
	// Issuer and Epoch are set on the root only.
	Issuer core.AuthorityID
	Epoch  core.Epoch
	Grant
	Nonce [16]byte
	Sig   [ed25519.SignatureSize]byte
}

// Token is a delegation chain. It is immutable: Attenuate returns a new one.
type Token struct {
	blocks []Block
	raw    []byte // canonical encoding
}

// Blocks returns a copy of the chain, root first.
func (t *Token) Blocks() []Block { return slices.Clone(t.blocks) }

// Depth is the number of blocks.
func (t *Token) Depth() int { return len(t.blocks) }

// Holder is the device the token is delegated to in the end.
func (t *Token) Holder() core.DeviceID { return t.blocks[len(t.blocks)-1].Holder }

// Issuer is the authority that issued the root.
func (t *Token) Issuer() core.AuthorityID { return t.blocks[0].Issuer }

// Encode returns the canonical encoding (shared: do not modify).
func (t *Token) Encode() []byte { return t.raw }

// Hash names the whole token, signatures included.
func (t *Token) Hash() core.Hash { return core.TaggedHash(TagCapToken, t.raw) }

func validateGrant(g Grant) error {
	if g.NotAfter <= 0 {
		return fmt.Errorf("not-after %d: want a unix time in seconds: %w", g.NotAfter, core.ErrInvalidArgument)
	}
	return nil
}

// Issue signs a root block with the issuing authority's key: the authority
// issuer, at its current epoch, grants g to g.Holder. rand supplies the
// nonce (crypto/rand.Reader in the daemon).
func Issue(key crypto.Signer, issuer core.AuthorityID, epoch core.Epoch, g Grant, rand io.Reader) (*Token, error) {
	if err := validateGrant(g); err != nil {
		return nil, fmt.Errorf("issue token: %w", err)
	}
	b := Block{Index: 0, Issuer: issuer, Epoch: epoch, Grant: g}
	if err := signBlock(&b, key, rand); err != nil {
		return nil, fmt.Errorf("issue token: %w", err)
	}
	return newToken([]Block{b}), nil
}

// Attenuate appends a block delegating g, signed by the current holder's key,
// to a new token. g may only narrow: capabilities a subset, scope equal or
// narrower, expiry no later. The parent token is not modified.
func (t *Token) Attenuate(holderKey crypto.Signer, g Grant, rand io.Reader) (*Token, error) {
	n := len(t.blocks)
	if n >= MaxTokenDepth {
		return nil, fmt.Errorf("attenuate: token block %d would exceed %d blocks: %w", n, MaxTokenDepth, ErrTokenDepth)
	}
	if err := validateGrant(g); err != nil {
		return nil, fmt.Errorf("attenuate: %w", err)
	}
	last := t.blocks[n-1]
	if pub, ok := holderKey.Public().(ed25519.PublicKey); !ok || !bytes.Equal(pub, last.Holder[:]) {
		return nil, fmt.Errorf("attenuate: key is not holder %s of token block %d: %w", last.Holder, n-1, ErrTokenHolder)
	}
	if err := checkNarrows(last.Grant, g, n); err != nil {
		return nil, fmt.Errorf("attenuate: %w", err)
	}
	b := Block{Index: n, Prev: last.ID, Grant: g}
	if err := signBlock(&b, holderKey, rand); err != nil {
		return nil, fmt.Errorf("attenuate: %w", err)
	}
	return newToken(append(slices.Clone(t.blocks), b)), nil
}

// checkNarrows refuses a block i granting more than its parent.
func checkNarrows(parent, g Grant, i int) error {
	if !g.Caps.SubsetOf(parent.Caps) {
		return fmt.Errorf("token block %d grants capability %q that block %d does not: %w", i, g.Caps.missing(parent.Caps), i-1, ErrTokenWidened)
	}
	if !g.Scope.Within(parent.Scope) {
		return fmt.Errorf("token block %d widens scope %s to %s: %w", i, parent.Scope, g.Scope, ErrTokenWidened)
	}
	if g.NotAfter > parent.NotAfter {
		return fmt.Errorf("token block %d extends expiry %d to %d: %w", i, parent.NotAfter, g.NotAfter, ErrTokenWidened)
	}
	return nil
}

func signBlock(b *Block, key crypto.Signer, rand io.Reader) error {
	if rand == nil {
		return fmt.Errorf("no nonce source: %w", core.ErrInvalidArgument)
	}
	if _, ok := key.Public().(ed25519.PublicKey); !ok {
		return fmt.Errorf("signing key is %T, want Ed25519: %w", key.Public(), core.ErrInvalidArgument)
	}
	if _, err := io.ReadFull(rand, b.Nonce[:]); err != nil {
		return fmt.Errorf("nonce: %w", err)
	}
	body := appendBody(nil, b)
	b.ID = core.TaggedHash(TagCapBlock, body)
	sig, err := key.Sign(nil, sigMessage(b.ID), crypto.Hash(0))
	if err != nil {
		return fmt.Errorf("sign token block %d: %w", b.Index, err)
	}
	if len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("sign token block %d: %d-byte signature: %w", b.Index, len(sig), core.ErrInternal)
	}
	copy(b.Sig[:], sig)
	return nil
}

func sigMessage(id core.Hash) []byte {
	m := make([]byte, 0, len(sigContext)+len(id))
	return append(append(m, sigContext...), id[:]...)
}

func newToken(blocks []Block) *Token {
	return &Token{blocks: blocks, raw: encodeToken(blocks)}
}
