package tree

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
	"pgregory.net/rapid"
)

// fixture is a member with deterministic keys, so that commitments and op
// ids in tests are the same on every run.
type fixture struct {
	priv ed25519.PrivateKey
	leaf Leaf
}

// newFixture derives member i's keys from its index.
func newFixture(t tb, i int, role Role) fixture {
	t.Helper()
	seed := sha256.Sum256(fmt.Appendf(nil, "tree test device %d", i))
	priv := ed25519.NewKeyFromSeed(seed[:])
	dev, err := core.DeviceIDFromKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatalf("device key: %v", err)
	}
	return fixture{priv: priv, leaf: Leaf{Role: role, Device: dev, HPKE: hpkeKeyFor(t, fmt.Sprintf("tree test hpke %d", i))}}
}

// hpkeKeyFor is the X25519 public key of a private key derived from label.
func hpkeKeyFor(t tb, label string) [32]byte {
	t.Helper()
	seed := sha256.Sum256([]byte(label))
	k, err := ecdh.X25519().NewPrivateKey(seed[:])
	if err != nil {
		t.Fatalf("HPKE key: %v", err)
	}
	return [32]byte(k.PublicKey().Bytes())
}

func leavesOf(fs []fixture) []Leaf {
	ls := make([]Leaf, len(fs))
	for i, f := range fs {
		ls[i] = f.leaf
	}
	return ls
}

func mustGenesis(t tb, fs []fixture, p Policy) *State {
	t.Helper()
	s, err := Genesis(leavesOf(fs), p)
	if err != nil {
		t.Fatalf("Genesis: %v", err)
	}
	return s
}

func TestGenesis(t *testing.T) {
	a, b := newFixture(t, 0, RoleDevice), newFixture(t, 1, RoleDevice)
	g := newFixture(t, 2, RoleGuardian)
	s := mustGenesis(t, []fixture{a, g, b}, mustKOfN(t, 2))
	if s.Epoch() != 0 || s.Leaves() != 4 || s.Devices() != 2 || s.Policy() != mustKOfN(t, 2) {
		t.Fatalf("genesis: epoch %d, %d leaves, %d devices, %s", s.Epoch(), s.Leaves(), s.Devices(), s.Policy())
	}
	if s.Name() != (StateName{Epoch: 0, Commitment: s.RootCommitment()}) {
		t.Errorf("Name %s does not pair the epoch with the root commitment", s.Name())
	}
	var got []Leaf
	for i, l := range s.Members() {
		if int(i) != len(got) {
			t.Errorf("member at leaf %d, want %d", i, len(got))
		}
		got = append(got, l)
	}
	if want := []Leaf{a.leaf, g.leaf, b.leaf}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("members %v, want %v", got, want)
	}
	if l, ok := s.Leaf(3); ok {
		t.Errorf("blank leaf 3 = %v", l)
	}
	if _, ok := s.Leaf(4); ok {
		t.Error("leaf 4 of 4 exists")
	}
	if i, ok := s.FindDevice(b.leaf.Device); !ok || i != 2 {
		t.Errorf("FindDevice(b) = %d, %v", i, ok)
	}
	if one := mustGenesis(t, []fixture{a}, Any()); one.Leaves() != 1 || one.Devices() != 1 {
		t.Errorf("one-device genesis: %d leaves, %d devices", one.Leaves(), one.Devices())
	}

	bad := a
	bad.leaf.HPKE = [32]byte{}
	badRole := a
	badRole.leaf.Role = 7
	for _, c := range []struct {
		name   string
		fs     []fixture
		p      Policy
		want   error
		wantCo error
	}{
		{"no leaves", nil, Any(), ErrNoDevice, core.ErrInvalidArgument},
		{"guardian only", []fixture{g}, Any(), ErrNoDevice, core.ErrInvalidArgument},
		{"duplicate", []fixture{a, b, a}, Any(), ErrDuplicateDevice, core.ErrAlreadyExists},
		{"invalid key", []fixture{b, bad}, Any(), ErrInvalidKey, core.ErrInvalidArgument},
		{"invalid role", []fixture{badRole}, Any(), ErrRole, core.ErrInvalidArgument},
		{"unsatisfiable", []fixture{a, g, b}, mustKOfN(t, 3), ErrPolicyUnsatisfiable, core.ErrInvalidArgument},
	} {
		if _, err := Genesis(leavesOf(c.fs), c.p); !errors.Is(err, c.want) || !errors.Is(err, c.wantCo) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// TestCommitmentGolden pins the commitments of a fixed tree, so that any
// change to an encoding or tag shows here (and needs a new tag version).
// Each value is also recomputed from the layout documented in state.go.
func TestCommitmentGolden(t *testing.T) {
	fs := []fixture{newFixture(t, 0, RoleDevice), newFixture(t, 1, RoleGuardian), newFixture(t, 2, RoleDevice)}
	s := mustGenesis(t, fs, mustKOfN(t, 2))

	leaf := func(l Leaf) core.Hash {
		return core.TaggedHash("aura/tree/leaf/v1", []byte{byte(l.Role)}, l.Device[:], l.HPKE[:])
	}
	branch := func(a, b core.Hash) core.Hash { return core.TaggedHash("aura/tree/branch/v1", a[:], b[:]) }
	blank := core.TaggedHash("aura/tree/leaf/v1", []byte("blank"))
	top := branch(branch(leaf(fs[0].leaf), leaf(fs[1].leaf)), branch(leaf(fs[2].leaf), blank))
	root := core.TaggedHash("aura/tree/root/v1",
		[]byte{0, 0, 0, 0, 0, 0, 0, 0}, []byte{0, 0, 0, 4}, []byte{1, 2, 0, 2}, top[:])
	if s.RootCommitment() != root {
		t.Errorf("root commitment %s, the documented layout gives %s", s.RootCommitment(), root)
	}
	for _, c := range []struct {
		name string
		got  core.Hash
		want string
	}{
		{"blank leaf", blank, "d3332ecd5e688bdad4e40a0f3eea1c23999a4641cfbf0171721efccbb1e96ff3"},
		{"device leaf 0", leaf(fs[0].leaf), "0307af207fca86dd20feee4944505cd7f558bc37423cdd15e411d5277038ae04"},
		{"root", s.RootCommitment(), "81569324d129c320232b2709262402fe6114f4351712268fc6d32c3f7cff59cb"},
	} {
		if c.got.String() != c.want {
			t.Errorf("%s commitment %s, golden %s", c.name, c.got, c.want)
		}
	}
}

// rebuildCommitment recomputes a state's root commitment the plain way,
// from its leaf array, to check the path-copying updates against.
func rebuildCommitment(s *State) core.Hash {
	level := make([]core.Hash, s.Leaves())
	for i := range level {
		if l, ok := s.Leaf(LeafIndex(i)); ok {
			level[i] = core.TaggedHash(TagLeaf, appendLeaf(nil, &l))
		} else {
			level[i] = core.TaggedHash(TagLeaf, []byte("blank"))
		}
	}
	for h := 1; len(level) > 1; h++ {
		for i := range len(level) / 2 {
			x := NodeIndex(i<<(h+1) + 1<<h - 1)
			if key, ok := s.NodeKey(x); ok {
				level[i] = core.TaggedHash(TagKeyed, level[2*i][:], level[2*i+1][:], key)
			} else {
				level[i] = core.TaggedHash(TagBranch, level[2*i][:], level[2*i+1][:])
			}
		}
		level = level[:len(level)/2]
	}
	hdr := binary.BigEndian.AppendUint64(nil, s.Epoch())
	hdr = binary.BigEndian.AppendUint32(hdr, s.Leaves())
	return core.TaggedHash(TagRoot, AppendPolicy(hdr, s.Policy()), level[0][:])
}

func TestCommitmentAfterOps(t *testing.T) {
	w := newWorld(t, 3, 8, Any(), SingleSigner{})
	rapid.Check(t, func(rt *rapid.T) {
		s := w.genesis
		for range rapid.IntRange(1, 30).Draw(rt, "ops") {
			op := w.drawOp(rt, s)
			next, err := s.Apply(op, w.att)
			if err != nil {
				continue
			}
			if next.Epoch() != s.Epoch()+1 {
				rt.Fatalf("epoch %d after %d", next.Epoch(), s.Epoch())
			}
			if got, want := next.RootCommitment(), rebuildCommitment(next); got != want {
				rt.Fatalf("%s: commitment %s, rebuilt %s", op.Body.Kind(), got, want)
			}
			if got := rebuildCommitment(s); got != s.RootCommitment() {
				rt.Fatalf("applying changed the parent state")
			}
			s = next
		}
	})
}

func TestAddRemoveLeaves(t *testing.T) {
	w := newWorld(t, 1, 8, Any(), SingleSigner{})
	s := w.genesis
	add := func(f fixture) {
		t.Helper()
		var err error
		if s, err = s.Apply(w.sign(t, s, 0, AddLeafBody{Leaf: f.leaf}), w.att); err != nil {
			t.Fatalf("AddLeaf: %v", err)
		}
	}
	remove := func(i LeafIndex) {
		t.Helper()
		var err error
		if s, err = s.Apply(w.sign(t, s, 0, RemoveLeafBody{Leaf: i}), w.att); err != nil {
			t.Fatalf("RemoveLeaf(%d): %v", i, err)
		}
	}
	at := func(i LeafIndex, f fixture) {
		t.Helper()
		if l, ok := s.Leaf(i); !ok || l != f.leaf {
			t.Fatalf("leaf %d = %v, %v; want %v", i, l, ok, f.leaf)
		}
	}
	add(w.pool[0]) // doubles 1 → 2
	at(1, w.pool[0])
	add(w.pool[1]) // doubles 2 → 4
	at(2, w.pool[1])
	if s.Leaves() != 4 {
		t.Fatalf("%d leaves, want 4", s.Leaves())
	}
	remove(1)
	if _, ok := s.Leaf(1); ok || s.Devices() != 2 {
		t.Fatalf("leaf 1 not blank after removal, %d devices", s.Devices())
	}
	add(w.pool[2]) // the first blank leaf, not the end
	at(1, w.pool[2])
	add(w.pool[3]) // a guardian
	at(3, w.pool[3])
	add(w.pool[4]) // full: doubles 4 → 8
	at(4, w.pool[4])
	if s.Leaves() != 8 || s.Devices() != 4 || s.Epoch() != 6 {
		t.Fatalf("%d leaves, %d devices, epoch %d", s.Leaves(), s.Devices(), s.Epoch())
	}
}

// The key checks are compared with an independent decoder on math/big.

var (
	bigP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	// bigD is -121665/121666 mod p.
	bigD = func() *big.Int {
		d := new(big.Int).ModInverse(big.NewInt(121666), bigP)
		d.Mul(d, big.NewInt(-121665))
		return d.Mod(d, bigP)
	}()
)

// leBig reads a little-endian integer.
func leBig(b []byte) *big.Int {
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	return new(big.Int).SetBytes(be)
}

// edPoint is an affine point of edwards25519 (-x² + y² = 1 + dx²y²).
type edPoint struct{ x, y *big.Int }

func (p edPoint) add(q edPoint) edPoint {
	mod := func(v *big.Int) *big.Int { return v.Mod(v, bigP) }
	t := mod(new(big.Int).Mul(bigD, mod(new(big.Int).Mul(mod(new(big.Int).Mul(p.x, q.x)), mod(new(big.Int).Mul(p.y, q.y))))))
	xn := mod(new(big.Int).Add(new(big.Int).Mul(p.x, q.y), new(big.Int).Mul(p.y, q.x)))
	yn := mod(new(big.Int).Add(new(big.Int).Mul(p.y, q.y), new(big.Int).Mul(p.x, q.x)))
	xd := mod(new(big.Int).Add(big.NewInt(1), t))
	yd := mod(new(big.Int).Sub(big.NewInt(1), t))
	return edPoint{
		x: mod(xn.Mul(xn, new(big.Int).ModInverse(xd, bigP))),
		y: mod(yn.Mul(yn, new(big.Int).ModInverse(yd, bigP))),
	}
}

// decodeEd decodes an RFC 8032 point encoding, or reports it invalid.
func decodeEd(k [32]byte) (edPoint, bool) {
	sign := k[31] >> 7
	k[31] &= 0x7f
	y := leBig(k[:])
	if y.Cmp(bigP) >= 0 {
		return edPoint{}, false
	}
	y2 := new(big.Int).Mul(y, y)
	u := new(big.Int).Sub(y2, big.NewInt(1))
	v := new(big.Int).Add(new(big.Int).Mul(bigD, y2), big.NewInt(1))
	x2 := new(big.Int).Mul(u, new(big.Int).ModInverse(v.Mod(v, bigP), bigP))
	x := new(big.Int).ModSqrt(x2.Mod(x2, bigP), bigP)
	if x == nil || (x.Sign() == 0 && sign == 1) {
		return edPoint{}, false
	}
	if x.Bit(0) != uint(sign) {
		x.Sub(bigP, x)
	}
	return edPoint{x: x, y: y}, true
}

// smallOrder reports whether [8]p is the identity.
func (p edPoint) smallOrder() bool {
	q := p
	for range 3 {
		q = q.add(q)
	}
	return q.x.Sign() == 0 && q.y.Cmp(big.NewInt(1)) == 0
}

func TestEdwardsConstants(t *testing.T) {
	if got := leBig(edwardsD[:]); got.Cmp(bigD) != 0 {
		t.Errorf("edwardsD = %s, want %s", got, bigD)
	}
	// The table holds exactly the y of the 8 points of small order: each
	// decodes (with either sign, where x ≠ 0) to a point of small order.
	points := 0
	for _, y := range edwardsSmallOrderY {
		for _, sign := range []byte{0, 0x80} {
			k := y
			k[31] |= sign
			if p, ok := decodeEd(k); ok {
				if !p.smallOrder() {
					t.Errorf("y %x: order above 8", y)
				}
				points++
			}
		}
	}
	if points != 8 {
		t.Errorf("table decodes to %d points, want the 8 of small order", points)
	}
}

func TestDeviceKeyCheck(t *testing.T) {
	for i := range 64 {
		if err := checkDeviceKey(newFixture(t, i, RoleDevice).leaf.Device); err != nil {
			t.Fatalf("generated key %d refused: %v", i, err)
		}
	}
	p32 := [32]byte(leBytes(bigP))
	for _, c := range []struct {
		name string
		k    [32]byte
	}{
		{"identity", edwardsSmallOrderY[0]},
		{"zero, order 4", [32]byte{}},
		{"order 8", edwardsSmallOrderY[3]},
		{"y = p", p32},
		{"y = p+1 (identity, not reduced)", func() [32]byte { k := p32; k[0]++; return k }()},
		{"x = 0 with the sign set", func() [32]byte { k := edwardsSmallOrderY[0]; k[31] |= 0x80; return k }()},
	} {
		if err := checkDeviceKey(core.DeviceID(c.k)); !errors.Is(err, ErrInvalidKey) || !errors.Is(err, core.ErrInvalidArgument) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	rapid.Check(t, func(rt *rapid.T) {
		k := [32]byte(rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(rt, "key"))
		p, ok := decodeEd(k)
		want := ok && !p.smallOrder()
		if err := checkDeviceKey(core.DeviceID(k)); (err == nil) != want {
			rt.Fatalf("checkDeviceKey(%x) = %v, math/big says valid = %v", k, err, want)
		}
	})
}

func leBytes(v *big.Int) []byte {
	be := v.FillBytes(make([]byte, 32))
	le := make([]byte, 32)
	for i := range be {
		le[31-i] = be[i]
	}
	return le
}

func TestHPKEKeyCheck(t *testing.T) {
	for i := range 64 {
		if err := checkHPKEKey(hpkeKeyFor(t, fmt.Sprint(i))); err != nil {
			t.Fatalf("generated key %d refused: %v", i, err)
		}
	}
	seed := sha256.Sum256([]byte("ecdh"))
	k, err := ecdh.X25519().NewPrivateKey(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	// The table holds points of small order: X25519 with any of them gives
	// the all-zero secret, which crypto/ecdh refuses.
	for _, u := range x25519SmallOrderU {
		pub, err := ecdh.X25519().NewPublicKey(u[:])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.ECDH(pub); err == nil {
			t.Errorf("u %x: crypto/ecdh accepts it, so it is not of small order", u)
		}
		if err := checkHPKEKey(u); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("u %x: %v", u, err)
		}
	}
	valid := hpkeKeyFor(t, "x")
	high := valid
	high[31] |= 0x80
	p := [32]byte(leBytes(bigP))
	p1 := p
	p1[0]++
	for _, c := range []struct {
		name string
		k    [32]byte
	}{{"top bit set", high}, {"u = p", p}, {"u = p+1", p1}} {
		if err := checkHPKEKey(c.k); !errors.Is(err, ErrInvalidKey) || !errors.Is(err, core.ErrInvalidArgument) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
