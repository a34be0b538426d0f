package wot

import (
	"crypto/ed25519"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aura-p2p/aura/internal/core"
)

// IssuerKeys tells the verifier each authority's current token-signing key
// and epoch. The node implements it from the commitment trees (or uses
// IssuerTable).
type IssuerKeys interface {
	// IssuerKey returns the authority's current key and epoch; an unknown
	// authority is an error wrapping core.ErrNotFound.
	IssuerKey(core.AuthorityID) (ed25519.PublicKey, core.Epoch, error)
	// Generation changes whenever any authority's key or epoch does, which
	// invalidates the verifier's cached verdicts.
	Generation() uint64
}

// IssuerTable is an in-memory IssuerKeys. Safe for concurrent use.
type IssuerTable struct {
	mu  sync.RWMutex
	m   map[core.AuthorityID]issuerKey
	gen uint64
}

type issuerKey struct {
	pub   ed25519.PublicKey
	epoch core.Epoch
}

// NewIssuerTable returns an empty table.
func NewIssuerTable() *IssuerTable { return &IssuerTable{m: make(map[core.AuthorityID]issuerKey)} }

// Set records an authority's key at epoch. Epochs only grow: an older epoch
// than the one held is refused; the same epoch with another key too, since a
// key change is a rotation.
func (t *IssuerTable) Set(a core.AuthorityID, pub ed25519.PublicKey, epoch core.Epoch) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("issuer %s: %d-byte key: %w", a, len(pub), core.ErrInvalidArgument)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.m[a]; ok {
		switch {
		case epoch < old.epoch:
			return fmt.Errorf("issuer %s: epoch %d is older than %d: %w", a, epoch, old.epoch, core.ErrFailedPrecondition)
		case epoch == old.epoch && !old.pub.Equal(pub):
			return fmt.Errorf("issuer %s: key changed within epoch %d: %w", a, epoch, core.ErrFailedPrecondition)
		case epoch == old.epoch:
			return nil
		}
	}
	t.m[a] = issuerKey{pub: append(ed25519.PublicKey(nil), pub...), epoch: epoch}
	t.gen++
	return nil
}

// IssuerKey implements IssuerKeys.
func (t *IssuerTable) IssuerKey(a core.AuthorityID) (ed25519.PublicKey, core.Epoch, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	k, ok := t.m[a]
	if !ok {
		return nil, 0, fmt.Errorf("issuer authority %s: %w", a, core.ErrNotFound)
	}
	return k.pub, k.epoch, nil
}

// Generation implements IssuerKeys.
func (t *IssuerTable) Generation() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.gen
}

// Verified is what a valid token grants, after every attenuation.
type Verified struct {
	Issuer core.AuthorityID
	Epoch  core.Epoch
	// Grant is the effective grant: the last block's holder, capabilities and
	// scope, and the earliest expiry of the chain (blocks never extend it, so
	// it is the last block's).
	Grant
	Depth    int
	BlockIDs []core.Hash // root first; what a revocation names
	Token    core.Hash   // Token.Hash
}

// Permits checks that the token lets holder use capability in namespace ns.
func (v Verified) Permits(holder core.DeviceID, capability string, ns core.Namespace) error {
	switch {
	case holder != v.Holder:
		return fmt.Errorf("device %s presents a token held by %s: %w", holder, v.Holder, ErrTokenHolder)
	case !v.Caps.Has(capability):
		return fmt.Errorf("token grants %q, not %q: %w", v.Caps, capability, ErrTokenNotPermitted)
	case !v.Scope.Allows(ns):
		return fmt.Errorf("token is scoped to %s, not %s: %w", v.Scope, ns, ErrTokenNotPermitted)
	}
	return nil
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	Keys        IssuerKeys
	Revocations *RevocationSet
	Now         func() time.Time
	// CacheSize bounds the cached verdicts (0: DefaultVerifierCache;
	// negative: no cache).
	CacheSize int
}

// DefaultVerifierCache is the default number of cached verdicts.
const DefaultVerifierCache = 4096

// Verifier checks tokens offline and caches its verdicts by token hash. A
// cached verdict is only used while neither the revocation set nor the issuer
// keys changed since (their generations), and expiry is checked against the
// clock on every call. Safe for concurrent use.
type Verifier struct {
	keys IssuerKeys
	revs *RevocationSet
	now  func() time.Time
	max  int

	mu    sync.Mutex
	cache map[core.Hash]verdict
}

type verdict struct {
	res            Verified
	err            error
	revGen, keyGen uint64
}

// NewVerifier returns a verifier; Keys, Revocations and Now are required.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if cfg.Keys == nil || cfg.Revocations == nil || cfg.Now == nil {
		return nil, fmt.Errorf("token verifier needs issuer keys, a revocation set and a clock: %w", core.ErrInvalidArgument)
	}
	size := cfg.CacheSize
	switch {
	case size == 0:
		size = DefaultVerifierCache
	case size < 0:
		size = 0
	}
	return &Verifier{keys: cfg.Keys, revs: cfg.Revocations, now: cfg.Now, max: size, cache: make(map[core.Hash]verdict)}, nil
}

// VerifyBytes decodes and verifies an encoded token.
func (v *Verifier) VerifyBytes(b []byte) (Verified, error) {
	t, err := DecodeToken(b)
	if err != nil {
		return Verified{}, err
	}
	return v.Verify(t)
}

// Verify checks the whole chain: structure and chain binding, the issuer's
// epoch, every signature, attenuation at every block, revocation of any
// block, and expiry. The error names the first block at fault and wraps one
// of the ErrToken sentinels (or the IssuerKeys error for an unknown issuer).
func (v *Verifier) Verify(t *Token) (Verified, error) {
	h := t.Hash()
	revGen, keyGen := v.revs.Generation(), v.keys.Generation()
	vd, ok := v.lookup(h, revGen, keyGen)
	if !ok {
		vd = verdict{revGen: revGen, keyGen: keyGen}
		vd.res, vd.err = v.verifyChain(t)
		vd.res.Token = h
		v.store(h, vd)
	}
	if vd.err != nil {
		return Verified{}, vd.err
	}
	if now := v.now().Unix(); now > vd.res.NotAfter {
		i := 0
		for t.blocks[i].NotAfter != vd.res.NotAfter {
			i++
		}
		return Verified{}, fmt.Errorf("token block %d expired at %s: %w", i, time.Unix(vd.res.NotAfter, 0).UTC().Format(time.RFC3339), ErrTokenExpired)
	}
	res := vd.res
	res.BlockIDs = slices.Clone(res.BlockIDs) // the cached verdict stays intact
	return res, nil
}

func (v *Verifier) lookup(h core.Hash, revGen, keyGen uint64) (verdict, bool) {
	if v.max == 0 {
		return verdict{}, false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	vd, ok := v.cache[h]
	if !ok || vd.revGen != revGen || vd.keyGen != keyGen {
		return verdict{}, false
	}
	return vd, true
}

func (v *Verifier) store(h core.Hash, vd verdict) {
	if v.max == 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.cache[h]; !ok && len(v.cache) >= v.max {
		for k := range v.cache { // any victim: verdicts are recomputable
			delete(v.cache, k)
			break
		}
	}
	v.cache[h] = vd
}

// verifyChain checks everything but expiry, which depends on the clock and so
// is not part of a cached verdict.
func (v *Verifier) verifyChain(t *Token) (Verified, error) {
	n := len(t.blocks)
	switch {
	case n == 0:
		return Verified{}, fmt.Errorf("token without blocks: %w", ErrTokenMalformed)
	case n > MaxTokenDepth:
		return Verified{}, fmt.Errorf("token of %d blocks, at most %d: %w", n, MaxTokenDepth, ErrTokenDepth)
	}
	for i := range t.blocks {
		b := &t.blocks[i]
		var prev core.Hash
		if i > 0 {
			prev = t.blocks[i-1].ID
		}
		if b.Index != i || b.Prev != prev {
			return Verified{}, fmt.Errorf("token block %d is not bound to block %d: %w", i, i-1, ErrTokenSignature)
		}
	}
	root := &t.blocks[0]
	pub, epoch, err := v.keys.IssuerKey(root.Issuer)
	if err != nil {
		return Verified{}, fmt.Errorf("token block 0: %w", err)
	}
	switch {
	case root.Epoch < epoch:
		return Verified{}, fmt.Errorf("token block 0 was issued in epoch %d of authority %s, which has rotated to epoch %d: %w", root.Epoch, root.Issuer, epoch, ErrTokenEpoch)
	case root.Epoch > epoch:
		return Verified{}, fmt.Errorf("token block 0 names epoch %d of authority %s, which is known here only up to epoch %d: %w", root.Epoch, root.Issuer, epoch, ErrTokenEpoch)
	}
	for i := range t.blocks {
		b := &t.blocks[i]
		key, signer := pub, "issuer "+root.Issuer.String()
		if i > 0 {
			key, signer = t.blocks[i-1].Holder.PublicKey(), "holder "+t.blocks[i-1].Holder.String()
		}
		if !ed25519.Verify(key, sigMessage(b.ID), b.Sig[:]) {
			return Verified{}, fmt.Errorf("token block %d is not signed by %s: %w", i, signer, ErrTokenSignature)
		}
		if i > 0 {
			if err := checkNarrows(t.blocks[i-1].Grant, b.Grant, i); err != nil {
				return Verified{}, err
			}
		}
	}
	ids := make([]core.Hash, n)
	for i := range t.blocks {
		ids[i] = t.blocks[i].ID
		if v.revs.Revoked(root.Issuer, ids[i]) {
			return Verified{}, fmt.Errorf("token block %d (%s) was revoked by authority %s: %w", i, ids[i], root.Issuer, ErrTokenRevoked)
		}
	}
	last := t.blocks[n-1]
	return Verified{Issuer: root.Issuer, Epoch: root.Epoch, Grant: last.Grant, Depth: n, BlockIDs: ids}, nil
}
