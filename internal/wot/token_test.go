package wot

import (
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aura-p2p/aura/internal/core"
)

var allCaps = []string{"chat:message:send", "sync:push_op", "sync:request_digest", "invitation:send", "recovery:approve", "a", "z/9"}

func key(seed byte) ed25519.PrivateKey {
	var s [ed25519.SeedSize]byte
	s[0] = seed
	return ed25519.NewKeyFromSeed(s[:])
}

func holderOf(k ed25519.PrivateKey) core.DeviceID {
	d, _ := core.DeviceIDFromKey(k.Public().(ed25519.PublicKey))
	return d
}

func caps(t testing.TB, names ...string) Capabilities {
	t.Helper()
	c, err := NewCapabilities(names...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxScope(i byte) Scope {
	s, err := NamespaceScope(core.Namespace{Kind: core.NamespaceContext, ID: core.Hash{i}})
	if err != nil {
		panic(err)
	}
	return s
}

// countingKeys counts lookups, so tests can tell a cached verdict from a
// fresh one without timing anything.
type countingKeys struct {
	*IssuerTable
	calls int
}

func (c *countingKeys) IssuerKey(a core.AuthorityID) (ed25519.PublicKey, core.Epoch, error) {
	c.calls++
	return c.IssuerTable.IssuerKey(a)
}

type fixture struct {
	issuer    core.AuthorityID
	issuerKey ed25519.PrivateKey
	keys      *countingKeys
	revs      *RevocationSet
	now       time.Time
	v         *Verifier
	rng       *rand.ChaCha8
}

func newFixture(t testing.TB, cacheSize int) *fixture {
	t.Helper()
	f := &fixture{
		issuer:    core.AuthorityID{0xa1},
		issuerKey: key(100),
		keys:      &countingKeys{IssuerTable: NewIssuerTable()},
		revs:      NewRevocationSet(),
		now:       time.Unix(1_000_000, 0),
		rng:       rand.NewChaCha8([32]byte{9}),
	}
	if err := f.keys.Set(f.issuer, f.issuerKey.Public().(ed25519.PublicKey), 1); err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(VerifierConfig{Keys: f.keys, Revocations: f.revs, Now: func() time.Time { return f.now }, CacheSize: cacheSize})
	if err != nil {
		t.Fatal(err)
	}
	f.v = v
	return f
}

func (f *fixture) root(t testing.TB, holder ed25519.PrivateKey, c Capabilities, s Scope, notAfter int64) *Token {
	t.Helper()
	tok, err := Issue(f.issuerKey, f.issuer, 1, Grant{Holder: holderOf(holder), Caps: c, Scope: s, NotAfter: notAfter}, f.rng)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// chain issues a root to keys[0] and delegates down keys[1:], narrowing by
// nothing.
func (f *fixture) chain(t testing.TB, ks []ed25519.PrivateKey) *Token {
	t.Helper()
	tok := f.root(t, ks[0], caps(t, allCaps...), AnyScope(), 2_000_000)
	for i := 1; i < len(ks); i++ {
		var err error
		tok, err = tok.Attenuate(ks[i-1], Grant{Holder: holderOf(ks[i]), Caps: caps(t, allCaps...), Scope: AnyScope(), NotAfter: 2_000_000}, f.rng)
		if err != nil {
			t.Fatal(err)
		}
	}
	return tok
}

func keysN(n int) []ed25519.PrivateKey {
	ks := make([]ed25519.PrivateKey, n)
	for i := range ks {
		ks[i] = key(byte(i + 1))
	}
	return ks
}

func TestCapabilities(t *testing.T) {
	for _, tc := range []struct {
		names []string
		ok    bool
	}{
		{nil, true},
		{[]string{"b", "a", "b"}, true},
		{[]string{"chat:message:send", "x.y_z/w-1"}, true},
		{[]string{""}, false},
		{[]string{"Upper"}, false},
		{[]string{"white space"}, false},
		{[]string{strings.Repeat("a", 64)}, true},
		{[]string{strings.Repeat("a", 65)}, false},
		{[]string{"é"}, false},
	} {
		c, err := NewCapabilities(tc.names...)
		if (err == nil) != tc.ok {
			t.Errorf("NewCapabilities(%q) = %v, %v", tc.names, c, err)
		}
		if err != nil && !errors.Is(err, core.ErrInvalidArgument) {
			t.Errorf("NewCapabilities(%q) error %v", tc.names, err)
		}
	}
	many := make([]string, 65)
	for i := range many {
		many[i] = "c" + strings.Repeat("x", i)
	}
	if _, err := NewCapabilities(many...); !errors.Is(err, core.ErrInvalidArgument) {
		t.Errorf("65 names: %v", err)
	}
	if c, err := ParseCapabilities(" b, a ,a"); err != nil || c.String() != "a,b" {
		t.Errorf("ParseCapabilities: %v %v", c, err)
	}
}

// Meet is the greatest lower bound under SubsetOf: commutative, idempotent,
// below both arguments, and above any common subset.
func TestCapabilitiesMeetLaws(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	random := func() Capabilities {
		var names []string
		for _, n := range allCaps {
			if rng.IntN(2) == 0 {
				names = append(names, n)
			}
		}
		return caps(t, names...)
	}
	for range 2000 {
		a, b, c := random(), random(), random()
		m := a.Meet(b)
		if !m.Equal(b.Meet(a)) || !a.Meet(a).Equal(a) || !m.SubsetOf(a) || !m.SubsetOf(b) {
			t.Fatalf("meet laws fail for %v, %v", a, b)
		}
		if !a.Meet(b.Meet(c)).Equal(a.Meet(b).Meet(c)) {
			t.Fatalf("meet not associative on %v %v %v", a, b, c)
		}
		if c.SubsetOf(a) && c.SubsetOf(b) && !c.SubsetOf(m) {
			t.Fatalf("%v is a common subset of %v and %v but not of their meet", c, a, b)
		}
		for _, n := range allCaps {
			if m.Has(n) != (a.Has(n) && b.Has(n)) {
				t.Fatalf("meet %v of %v and %v wrong on %q", m, a, b, n)
			}
		}
	}
}

func TestIssueVerify(t *testing.T) {
	f := newFixture(t, 0)
	ks := keysN(3)
	tok := f.root(t, ks[0], caps(t, "chat:message:send", "sync:push_op"), AnyScope(), 2_000_000)
	tok, err := tok.Attenuate(ks[0], Grant{Holder: holderOf(ks[1]), Caps: caps(t, "chat:message:send"), Scope: ctxScope(7), NotAfter: 1_500_000}, f.rng)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.v.VerifyBytes(tok.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Holder != holderOf(ks[1]) || got.Caps.String() != "chat:message:send" || got.Scope != ctxScope(7) ||
		got.NotAfter != 1_500_000 || got.Depth != 2 || got.Issuer != f.issuer || len(got.BlockIDs) != 2 || got.Token != tok.Hash() {
		t.Fatalf("verified %+v", got)
	}
	ns, _ := ctxScope(7).Namespace()
	other, _ := ctxScope(8).Namespace()
	for _, tc := range []struct {
		name   string
		holder core.DeviceID
		cap    string
		ns     core.Namespace
		want   error
	}{
		{"ok", holderOf(ks[1]), "chat:message:send", ns, nil},
		{"not holder", holderOf(ks[0]), "chat:message:send", ns, ErrTokenHolder},
		{"capability attenuated away", holderOf(ks[1]), "sync:push_op", ns, ErrTokenNotPermitted},
		{"out of scope", holderOf(ks[1]), "chat:message:send", other, ErrTokenNotPermitted},
	} {
		if err := got.Permits(tc.holder, tc.cap, tc.ns); !errors.Is(err, tc.want) || (tc.want != nil && !errors.Is(err, core.ErrPermissionDenied)) {
			t.Errorf("%s: Permits = %v, want %v", tc.name, err, tc.want)
		}
	}
	// Attenuating with a key that is not the holder's is refused.
	if _, err := tok.Attenuate(ks[0], Grant{Holder: holderOf(ks[2]), Caps: Capabilities{}, NotAfter: 1}, f.rng); !errors.Is(err, ErrTokenHolder) {
		t.Errorf("attenuate by non-holder: %v", err)
	}
}

func TestAttenuationOnlyNarrows(t *testing.T) {
	f := newFixture(t, 0)
	rng := rand.New(rand.NewPCG(11, 12))
	scopes := []Scope{AnyScope(), ctxScope(1), ctxScope(2)}
	randomGrant := func(h core.DeviceID) Grant {
		var names []string
		for _, n := range allCaps {
			if rng.IntN(3) > 0 {
				names = append(names, n)
			}
		}
		return Grant{Holder: h, Caps: caps(t, names...), Scope: scopes[rng.IntN(len(scopes))], NotAfter: 1_000_000 + int64(rng.IntN(1000))}
	}
	ks := keysN(MaxTokenDepth)
	accepted, refused := 0, 0
	for range 300 {
		tok, err := Issue(f.issuerKey, f.issuer, 1, randomGrant(holderOf(ks[0])), f.rng)
		if err != nil {
			t.Fatal(err)
		}
		for d := 1; d < MaxTokenDepth; d++ {
			parent, err := f.v.Verify(tok)
			if err != nil {
				t.Fatalf("depth %d: %v", d, err)
			}
			g := randomGrant(holderOf(ks[d]))
			narrows := g.Caps.SubsetOf(parent.Caps) && g.Scope.Within(parent.Scope) && g.NotAfter <= parent.NotAfter
			child, err := tok.Attenuate(ks[d-1], g, f.rng)
			if !narrows {
				if !errors.Is(err, ErrTokenWidened) {
					t.Fatalf("widening %+v of %+v: %v", g, parent.Grant, err)
				}
				refused++
				// Narrow it by meet and carry on down the chain.
				g.Caps, g.Scope, g.NotAfter = g.Caps.Meet(parent.Caps), parent.Scope, min(g.NotAfter, parent.NotAfter)
				if child, err = tok.Attenuate(ks[d-1], g, f.rng); err != nil {
					t.Fatal(err)
				}
			}
			if err != nil && narrows {
				t.Fatalf("narrowing refused: %v", err)
			}
			accepted++
			got, err := f.v.Verify(child)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Caps.SubsetOf(parent.Caps) || !got.Scope.Within(parent.Scope) || got.NotAfter > parent.NotAfter || got.Holder != holderOf(ks[d]) {
				t.Fatalf("child %+v wider than parent %+v", got.Grant, parent.Grant)
			}
			tok = child
		}
	}
	if accepted == 0 || refused == 0 {
		t.Fatalf("generator one-sided: %d accepted, %d refused", accepted, refused)
	}
}

// forge appends a block signed by the right key but granting g without the
// narrowing check, as a dishonest holder would.
func forge(t testing.TB, tok *Token, holderKey ed25519.PrivateKey, g Grant, rng *rand.ChaCha8) *Token {
	t.Helper()
	last := tok.blocks[len(tok.blocks)-1]
	b := Block{Index: len(tok.blocks), Prev: last.ID, Grant: g}
	if err := signBlock(&b, holderKey, rng); err != nil {
		t.Fatal(err)
	}
	return newToken(append(slices.Clone(tok.blocks), b))
}

func TestVerifyRefusesWidening(t *testing.T) {
	f := newFixture(t, 0)
	ks := keysN(2)
	tok := f.root(t, ks[0], caps(t, "a", "chat:message:send"), ctxScope(1), 1_500_000)
	for _, tc := range []struct {
		name string
		g    Grant
		msg  string
	}{
		{"capability", Grant{Caps: caps(t, "a", "sync:push_op"), Scope: ctxScope(1), NotAfter: 1_400_000}, `"sync:push_op"`},
		{"scope to any", Grant{Caps: caps(t, "a"), Scope: AnyScope(), NotAfter: 1_400_000}, "scope"},
		{"scope sideways", Grant{Caps: caps(t, "a"), Scope: ctxScope(2), NotAfter: 1_400_000}, "scope"},
		{"expiry", Grant{Caps: caps(t, "a"), Scope: ctxScope(1), NotAfter: 1_500_001}, "expiry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.g.Holder = holderOf(ks[1])
			if _, err := tok.Attenuate(ks[0], tc.g, f.rng); !errors.Is(err, ErrTokenWidened) {
				t.Fatalf("Attenuate: %v", err)
			}
			_, err := f.v.VerifyBytes(forge(t, tok, ks[0], tc.g, f.rng).Encode())
			if !errors.Is(err, ErrTokenWidened) || !errors.Is(err, core.ErrPermissionDenied) ||
				!strings.Contains(err.Error(), "token block 1") || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestVerifyRefusesAnyTamperedByte(t *testing.T) {
	f := newFixture(t, -1)
	tok := f.chain(t, keysN(3))
	good := tok.Encode()
	if _, err := f.v.VerifyBytes(good); err != nil {
		t.Fatal(err)
	}
	for i := range good {
		for _, flip := range []byte{0x01, 0x80} {
			b := slices.Clone(good)
			b[i] ^= flip
			if _, err := f.v.VerifyBytes(b); err == nil {
				t.Fatalf("byte %d ^ %#x accepted", i, flip)
			}
		}
	}
	// A block signed by the wrong key, and a block spliced from another chain.
	ks := keysN(3)
	wrong := forge(t, f.chain(t, ks[:2]), key(99), Grant{Holder: holderOf(ks[2]), NotAfter: 1}, f.rng)
	if _, err := f.v.Verify(wrong); !errors.Is(err, ErrTokenSignature) || !strings.Contains(err.Error(), "block 2") {
		t.Errorf("wrong signer: %v", err)
	}
	other := f.chain(t, ks)
	spliced := newToken([]Block{tok.blocks[0], tok.blocks[1], other.blocks[2]})
	if _, err := f.v.Verify(spliced); !errors.Is(err, ErrTokenSignature) || !strings.Contains(err.Error(), "block 2") {
		t.Errorf("spliced: %v", err)
	}
}

func TestRevocationCascades(t *testing.T) {
	f := newFixture(t, 0)
	ks := keysN(5)
	// root -> k0, k0 -> k1, k1 -> k2 (block 2, revoked), k2 -> k3; and the
	// sibling k1 -> k4 delegated from the same block 1.
	parent := f.chain(t, ks[:2])
	b2, err := parent.Attenuate(ks[1], Grant{Holder: holderOf(ks[2]), Caps: caps(t, "a"), NotAfter: 2_000_000}, f.rng)
	if err != nil {
		t.Fatal(err)
	}
	b3, err := b2.Attenuate(ks[2], Grant{Holder: holderOf(ks[3]), Caps: caps(t, "a"), NotAfter: 2_000_000}, f.rng)
	if err != nil {
		t.Fatal(err)
	}
	sibling, err := parent.Attenuate(ks[1], Grant{Holder: holderOf(ks[4]), Caps: caps(t, "a"), NotAfter: 2_000_000}, f.rng)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []*Token{parent, b2, b3, sibling} {
		if _, err := f.v.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	calls := f.keys.calls
	if _, err := f.v.Verify(b3); err != nil || f.keys.calls != calls {
		t.Fatalf("second verification not served from cache: %v, %d lookups", err, f.keys.calls-calls)
	}
	// A revocation by another authority does not count.
	f.revs.Add(Revocation{Issuer: core.AuthorityID{0xbb}, Block: b2.blocks[2].ID})
	if _, err := f.v.Verify(b3); err != nil {
		t.Fatalf("foreign revocation applied: %v", err)
	}
	f.revs.Add(Revocation{Issuer: f.issuer, Block: b2.blocks[2].ID})
	for _, tc := range []struct {
		name string
		tok  *Token
		want error
	}{
		{"revoked block", b2, ErrTokenRevoked},
		{"descendant", b3, ErrTokenRevoked},
		{"parent", parent, nil},
		{"sibling", sibling, nil},
	} {
		_, err := f.v.Verify(tc.tok)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if tc.want != nil && !strings.Contains(err.Error(), "token block 2") {
			t.Errorf("%s: error does not name the block: %v", tc.name, err)
		}
	}
}

func TestVerifyExpiry(t *testing.T) {
	f := newFixture(t, 0)
	ks := keysN(2)
	tok := f.root(t, ks[0], caps(t, "a"), AnyScope(), 1_000_100)
	tok, err := tok.Attenuate(ks[0], Grant{Holder: holderOf(ks[1]), Caps: caps(t, "a"), NotAfter: 1_000_050}, f.rng)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		now  int64
		want error
	}{{1_000_000, nil}, {1_000_050, nil}, {1_000_051, ErrTokenExpired}, {1_000_200, ErrTokenExpired}} {
		f.now = time.Unix(tc.now, 0)
		// Expiry is checked on cached verdicts as well: verify twice.
		for range 2 {
			if _, err := f.v.Verify(tok); !errors.Is(err, tc.want) {
				t.Fatalf("at %d: %v, want %v", tc.now, err, tc.want)
			}
		}
	}
	if _, err := f.v.Verify(tok); !strings.Contains(err.Error(), "token block 1") {
		t.Fatalf("expiry error does not name block 1: %v", err)
	}
}

func TestDepthCap(t *testing.T) {
	f := newFixture(t, 0)
	ks := keysN(MaxTokenDepth + 1)
	tok := f.chain(t, ks[:MaxTokenDepth])
	if _, err := f.v.Verify(tok); err != nil {
		t.Fatalf("depth %d: %v", MaxTokenDepth, err)
	}
	if _, err := tok.Attenuate(ks[MaxTokenDepth-1], Grant{Holder: holderOf(ks[MaxTokenDepth]), NotAfter: 1}, f.rng); !errors.Is(err, ErrTokenDepth) {
		t.Fatalf("attenuate to depth 9: %v", err)
	}
	deep := forge(t, tok, ks[MaxTokenDepth-1], Grant{Holder: holderOf(ks[MaxTokenDepth]), NotAfter: 1}, f.rng)
	if _, err := f.v.Verify(deep); !errors.Is(err, ErrTokenDepth) || !errors.Is(err, core.ErrInvalidArgument) {
		t.Fatalf("verify depth 9: %v", err)
	}
	if _, err := DecodeToken(deep.Encode()); !errors.Is(err, ErrTokenDepth) {
		t.Fatalf("decode depth 9: %v", err)
	}
}

func TestEpochRotation(t *testing.T) {
	f := newFixture(t, 0)
	ks := keysN(2)
	old := f.chain(t, ks)
	if _, err := f.v.Verify(old); err != nil {
		t.Fatal(err)
	}
	newKey := key(101)
	if err := f.keys.Set(f.issuer, newKey.Public().(ed25519.PublicKey), 2); err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.Verify(old); !errors.Is(err, ErrTokenEpoch) || !strings.Contains(err.Error(), "rotated to epoch 2") {
		t.Fatalf("token of epoch 1 after rotation: %v", err)
	}
	fresh, err := Issue(newKey, f.issuer, 2, Grant{Holder: holderOf(ks[0]), Caps: caps(t, "a"), NotAfter: 2_000_000}, f.rng)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.Verify(fresh); err != nil {
		t.Fatalf("token of epoch 2: %v", err)
	}
	future, err := Issue(newKey, f.issuer, 3, Grant{Holder: holderOf(ks[0]), Caps: caps(t, "a"), NotAfter: 2_000_000}, f.rng)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.Verify(future); !errors.Is(err, ErrTokenEpoch) {
		t.Fatalf("token of epoch 3: %v", err)
	}
	// Old key, current epoch number: a forgery by a rotated-out key.
	stale, err := Issue(f.issuerKey, f.issuer, 2, Grant{Holder: holderOf(ks[0]), Caps: caps(t, "a"), NotAfter: 2_000_000}, f.rng)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.Verify(stale); !errors.Is(err, ErrTokenSignature) || !strings.Contains(err.Error(), "block 0") {
		t.Fatalf("old key at new epoch: %v", err)
	}
	// Unknown issuer.
	unknown, err := Issue(newKey, core.AuthorityID{0xcc}, 2, Grant{Holder: holderOf(ks[0]), NotAfter: 2_000_000}, f.rng)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.Verify(unknown); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("unknown issuer: %v", err)
	}
	// Epochs only grow in the table.
	if err := f.keys.Set(f.issuer, f.issuerKey.Public().(ed25519.PublicKey), 1); !errors.Is(err, core.ErrFailedPrecondition) {
		t.Fatalf("epoch going back: %v", err)
	}
}

func TestDecodeTokenRefuses(t *testing.T) {
	f := newFixture(t, 0)
	good := f.chain(t, keysN(2)).Encode()
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTokenMalformed},
		{"version", append([]byte{2}, good[1:]...), ErrTokenMalformed},
		{"no blocks", []byte{1, 0}, ErrTokenMalformed},
		{"count 9", append([]byte{1, 9}, good[2:]...), ErrTokenDepth},
		{"count short", append([]byte{1, 3}, good[2:]...), ErrTokenMalformed},
		{"count long", append([]byte{1, 1}, good[2:]...), ErrTokenMalformed},
		{"trailing", append(slices.Clone(good), 0), ErrTokenMalformed},
		{"truncated", good[:len(good)-1], ErrTokenMalformed},
		{"too big", make([]byte, MaxTokenBytes+1), ErrTokenMalformed},
	} {
		_, err := DecodeToken(tc.b)
		if !errors.Is(err, tc.want) || !errors.Is(err, core.ErrInvalidArgument) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	tok, err := DecodeToken(good)
	if err != nil || !slices.Equal(tok.Encode(), good) {
		t.Fatalf("round trip: %v", err)
	}
}

func TestRevocationCodec(t *testing.T) {
	r := Revocation{Issuer: core.AuthorityID{1}, Block: core.Hash{2}}
	got, err := DecodeRevocation(r.Encode())
	if err != nil || got != r {
		t.Fatalf("round trip %+v %v", got, err)
	}
	for name, b := range map[string][]byte{
		"short":    r.Encode()[:64],
		"trailing": append(r.Encode(), 0),
		"version":  append([]byte{0}, r.Encode()[1:]...),
		"no block": Revocation{Issuer: core.AuthorityID{1}}.Encode(),
	} {
		if _, err := DecodeRevocation(b); !errors.Is(err, core.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	s := NewRevocationSet()
	if !s.Add(r) || s.Add(r) || s.Len() != 1 || s.Generation() != 1 {
		t.Fatal("revocation set does not deduplicate")
	}
}

func TestVerifierCacheBounded(t *testing.T) {
	f := newFixture(t, 3)
	ks := keysN(1)
	for i := range 10 {
		tok := f.root(t, ks[0], caps(t, "a"), AnyScope(), int64(2_000_000+i))
		if _, err := f.v.Verify(tok); err != nil {
			t.Fatal(err)
		}
		if n := len(f.v.cache); n > 3 {
			t.Fatalf("cache holds %d verdicts, bound 3", n)
		}
	}
}
