package tree

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
	"pgregory.net/rapid"
)

// world is a genesis, the private keys of every member it may ever have,
// and the attester its ops are checked with.
type world struct {
	genesis *State
	pool    []fixture // members not in the genesis; every fourth a guardian
	keys    map[core.DeviceID]ed25519.PrivateKey
	hpke    [][32]byte // keys for UpdatePath
	att     Attester
}

func newWorld(t tb, devices, pool int, p Policy, att Attester) *world {
	t.Helper()
	w := &world{att: att, keys: make(map[core.DeviceID]ed25519.PrivateKey)}
	fs := make([]fixture, devices)
	for i := range fs {
		fs[i] = newFixture(t, i, RoleDevice)
		w.keys[fs[i].leaf.Device] = fs[i].priv
	}
	for i := range pool {
		role := RoleDevice
		if i%4 == 3 {
			role = RoleGuardian
		}
		f := newFixture(t, devices+i, role)
		w.pool = append(w.pool, f)
		w.keys[f.leaf.Device] = f.priv
	}
	for i := range 4 {
		w.hpke = append(w.hpke, hpkeKeyFor(t, fmt.Sprintf("update %d", i)))
	}
	w.genesis = mustGenesis(t, fs, p)
	return w
}

// updatePath is a real UpdatePath body by leaf on s, its leaf secret made
// from seed, so that distinct seeds give distinct ops.
func updatePath(t tb, s *State, leaf LeafIndex, seed uint64) UpdatePathBody {
	t.Helper()
	var secret [SecretSize]byte
	binary.BigEndian.PutUint64(secret[:], seed+1)
	up, keys, _, err := Commit(s, leaf, secret, []byte("test"), nil)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	keys.Zero()
	path, err := AppendUpdatePath(nil, up)
	if err != nil {
		t.Fatalf("AppendUpdatePath: %v", err)
	}
	return UpdatePathBody{Leaf: leaf, HPKE: up.LeafKey, Path: path}
}

// sign makes an op on s by author, attested by every signer it needs.
func (w *world) sign(t tb, s *State, author LeafIndex, body Body) *Op {
	t.Helper()
	op := &Op{Parent: s.Name(), Author: author, Body: body}
	w.attest(t, s, op, 0)
	return op
}

// attest sets op's attestation as made on s: by its author alone for the
// SingleSigner, or for multiSigner by the author and the next device
// leaves, as many as op needs less short.
func (w *world) attest(t tb, s *State, op *Op, short int) {
	t.Helper()
	need := 1
	at := *op
	at.Parent = s.Name()
	if _, n, err := s.transition(&at); err == nil {
		need = n.required
	} else if r, err := Required(s.Policy(), s.Devices()); err == nil {
		need = r
	}
	signers := []LeafIndex{op.Author}
	for i, l := range s.Members() {
		if len(signers) >= need-short {
			break
		}
		if i != op.Author && l.Role == RoleDevice {
			signers = append(signers, i)
		}
	}
	var err error
	switch w.att.(type) {
	case SingleSigner:
		op.Attestation, err = SignSingle(w.leafKey(t, s, op.Author), op)
	case multiSigner:
		op.Attestation, err = w.signMulti(t, s, op, signers)
	default:
		t.Fatalf("attester %T", w.att)
	}
	if err != nil {
		t.Fatalf("attest: %v", err)
	}
}

// leafKey is the private key of leaf i of s, or of a member outside s when
// i is blank (so that the signature verifies under no leaf).
func (w *world) leafKey(t tb, s *State, i LeafIndex) ed25519.PrivateKey {
	t.Helper()
	if l, ok := s.Leaf(i); ok {
		return w.keys[l.Device]
	}
	return w.pool[0].priv
}

// multiSigner is a test attester for ops that need several signers: the
// attestation is a list of (leaf, Ed25519 signature over the op's
// SigningDigest) in ascending leaf order, each signature checked. It stands
// in for the FROST attester that does not exist yet; the rule of how many
// must sign is the tree's, which is what it tests.
type multiSigner struct{}

var errTooFewSigners = fmt.Errorf("too few signers: %w", ErrAttestation)

func (multiSigner) MaxSigners() int { return MaxThreshold }

func (multiSigner) Verify(st *State, op *Op, required int) error {
	const rec = 4 + ed25519.SignatureSize
	a := op.Attestation
	if len(a)%rec != 0 {
		return fmt.Errorf("attestation of %d bytes: %w", len(a), ErrAttestation)
	}
	digest, err := op.SigningDigest()
	if err != nil {
		return err
	}
	n, prev := 0, int64(-1)
	for ; len(a) > 0; a = a[rec:] {
		i := LeafIndex(binary.BigEndian.Uint32(a))
		l, ok := st.Leaf(i)
		if int64(i) <= prev || !ok || l.Role != RoleDevice || !ed25519.Verify(l.Device.PublicKey(), digest[:], a[4:rec]) {
			return fmt.Errorf("signature by leaf %d: %w", i, ErrAttestation)
		}
		prev = int64(i)
		n++
	}
	if n < required {
		return fmt.Errorf("%d of %d: %w", n, required, errTooFewSigners)
	}
	return nil
}

func (w *world) signMulti(t tb, s *State, op *Op, leaves []LeafIndex) ([]byte, error) {
	t.Helper()
	leaves = slices.Sorted(slices.Values(leaves))
	var out []byte
	for _, i := range leaves {
		sig, err := SignSingle(w.leafKey(t, s, i), op)
		if err != nil {
			return nil, err
		}
		out = append(binary.BigEndian.AppendUint32(out, uint32(i)), sig...)
	}
	return out, nil
}

// memoAttester remembers an attester's verdicts, so that the permutation
// tests verify each signature once however many reducers they run, and the
// benchmark can measure reduction without signature checks. It keys on the
// op's pointer: callers do not modify an op once it is attested.
type memoAttester struct {
	Attester
	verdicts map[memoKey]error
}

type memoKey struct {
	state    StateName
	op       *Op
	required int
}

func memo(a Attester) *memoAttester {
	return &memoAttester{Attester: a, verdicts: make(map[memoKey]error)}
}

func (m *memoAttester) Verify(st *State, op *Op, required int) error {
	k := memoKey{st.Name(), op, required}
	if v, ok := m.verdicts[k]; ok {
		return v
	}
	v := m.Attester.Verify(st, op, required)
	m.verdicts[k] = v
	return v
}

// countingAttester counts Verify calls.
type countingAttester struct {
	Attester
	calls int
}

func (c *countingAttester) Verify(st *State, op *Op, required int) error {
	c.calls++
	return c.Attester.Verify(st, op, required)
}

func mustID(t tb, op *Op) OpID {
	t.Helper()
	id, err := op.ID()
	if err != nil {
		t.Fatalf("ID: %v", err)
	}
	return id
}

func mustApply(t tb, s *State, op *Op, att Attester) *State {
	t.Helper()
	next, err := s.Apply(op, att)
	if err != nil {
		t.Fatalf("Apply %s: %v", op.Body.Kind(), err)
	}
	return next
}

func TestValidity(t *testing.T) {
	w := newWorld(t, 3, 4, Any(), SingleSigner{})
	att := w.att
	g := w.genesis
	s1 := mustApply(t, g, w.sign(t, g, 0, AddLeafBody{Leaf: w.pool[3].leaf}), att) // guardian at leaf 3
	base := mustApply(t, s1, w.sign(t, s1, 0, RemoveLeafBody{Leaf: 2}), att)       // leaf 2 blank
	// base: devices at 0 and 1, leaf 2 blank, a guardian at 3; policy Any.
	d0, _ := base.Leaf(0)
	d1, _ := base.Leaf(1)

	signedBy := func(key ed25519.PrivateKey, op *Op) *Op {
		var err error
		if op.Attestation, err = SignSingle(key, op); err != nil {
			t.Fatal(err)
		}
		return op
	}
	on := func(parent StateName, author LeafIndex, body Body) *Op {
		return &Op{Parent: parent, Author: author, Body: body}
	}
	rotate := w.sign(t, base, 0, RotateEpochBody{})
	moved := on(base.Name(), 0, updatePath(t, base, 0, 1))
	moved.Attestation = rotate.Attestation
	badDevice := w.pool[0].leaf
	badDevice.Device = core.DeviceID(edwardsSmallOrderY[3])
	badHPKE := w.pool[0].leaf
	badHPKE.HPKE = [32]byte{}
	badRole := w.pool[0].leaf
	badRole.Role = 9
	wide := w.sign(t, base, 0, RotateEpochBody{})
	wide.Attestation = make([]byte, MaxAttestationBytes+1)
	k3 := mustKOfN(t, 3)
	all := mustApply(t, base, w.sign(t, base, 0, ChangePolicyBody{Policy: All()}), att) // two devices, All
	lone := newWorld(t, 1, 0, Any(), SingleSigner{})
	other := updatePath(t, base, 1, 3)
	mw := newWorld(t, 2, 0, mustKOfN(t, 2), multiSigner{})

	for _, c := range []struct {
		name   string
		st     *State
		att    Attester
		op     *Op
		want   error // nil: valid
		wantCo error
	}{
		{"AddLeaf", base, att, w.sign(t, base, 1, AddLeafBody{Leaf: w.pool[0].leaf}), nil, nil},
		{"RemoveLeaf of a device", base, att, w.sign(t, base, 0, RemoveLeafBody{Leaf: 1}), nil, nil},
		{"RemoveLeaf of itself", base, att, w.sign(t, base, 0, RemoveLeafBody{Leaf: 0}), nil, nil},
		{"RemoveLeaf of a guardian", base, att, w.sign(t, base, 0, RemoveLeafBody{Leaf: 3}), nil, nil},
		{"ChangePolicy stricter", base, att, w.sign(t, base, 0, ChangePolicyBody{Policy: All()}), nil, nil},
		{"RotateEpoch", base, att, rotate, nil, nil},
		{"UpdatePath", base, att, w.sign(t, base, 1, updatePath(t, base, 1, 2)), nil, nil},

		{"parent of a later epoch", base, att, signedBy(w.keys[d0.Device], on(StateName{Epoch: base.Epoch() + 1, Commitment: base.RootCommitment()}, 0, RotateEpochBody{})), ErrWrongParent, core.ErrFailedPrecondition},
		{"parent of the same epoch", base, att, signedBy(w.keys[d0.Device], on(StateName{Epoch: base.Epoch()}, 0, RotateEpochBody{})), ErrWrongParent, core.ErrFailedPrecondition},
		{"replayed from an older epoch", base, att, w.sign(t, s1, 0, RotateEpochBody{}), ErrReplayed, core.ErrAborted},
		{"signed by another device", base, att, signedBy(w.keys[d1.Device], on(base.Name(), 0, RotateEpochBody{})), ErrAttestation, core.ErrUnauthenticated},
		{"no attestation", base, att, on(base.Name(), 0, RotateEpochBody{}), ErrAttestation, core.ErrUnauthenticated},
		{"attestation of another op", base, att, moved, ErrAttestation, core.ErrUnauthenticated},
		{"attestation over its bound", base, att, wide, ErrOpEncoding, core.ErrInvalidArgument},
		{"author blank", base, att, w.sign(t, base, 2, RotateEpochBody{}), ErrAuthor, core.ErrPermissionDenied},
		{"author a guardian", base, att, w.sign(t, base, 3, RotateEpochBody{}), ErrAuthor, core.ErrPermissionDenied},
		{"author outside the tree", base, att, w.sign(t, base, 4, RotateEpochBody{}), ErrAuthor, core.ErrPermissionDenied},
		{"AddLeaf device key of small order", base, att, w.sign(t, base, 0, AddLeafBody{Leaf: badDevice}), ErrInvalidKey, core.ErrInvalidArgument},
		{"AddLeaf zero HPKE key", base, att, w.sign(t, base, 0, AddLeafBody{Leaf: badHPKE}), ErrInvalidKey, core.ErrInvalidArgument},
		{"AddLeaf role", base, att, on(base.Name(), 0, AddLeafBody{Leaf: badRole}), ErrRole, core.ErrInvalidArgument},
		{"AddLeaf device present", base, att, w.sign(t, base, 0, AddLeafBody{Leaf: d1}), ErrDuplicateDevice, core.ErrAlreadyExists},
		{"AddLeaf device present as guardian", base, att, w.sign(t, base, 0, AddLeafBody{Leaf: Leaf{Role: RoleDevice, Device: w.pool[3].leaf.Device, HPKE: w.hpke[0]}}), ErrDuplicateDevice, core.ErrAlreadyExists},
		{"RemoveLeaf blank", base, att, w.sign(t, base, 0, RemoveLeafBody{Leaf: 2}), ErrNoSuchLeaf, core.ErrNotFound},
		{"RemoveLeaf outside the tree", base, att, w.sign(t, base, 0, RemoveLeafBody{Leaf: 4}), ErrNoSuchLeaf, core.ErrNotFound},
		{"RemoveLeaf of the last device", lone.genesis, att, lone.sign(t, lone.genesis, 0, RemoveLeafBody{Leaf: 0}), ErrLastDevice, core.ErrFailedPrecondition},
		{"RemoveLeaf the policy needs", mw.genesis, multiSigner{}, mw.sign(t, mw.genesis, 0, RemoveLeafBody{Leaf: 1}), ErrPolicyUnsatisfiable, core.ErrInvalidArgument},
		{"ChangePolicy unsatisfiable", base, att, w.sign(t, base, 0, ChangePolicyBody{Policy: k3}), ErrPolicyUnsatisfiable, core.ErrInvalidArgument},
		{"UpdatePath of another leaf", base, att, w.sign(t, base, 0, UpdatePathBody{Leaf: 1, HPKE: w.hpke[0]}), ErrNotOwnLeaf, core.ErrPermissionDenied},
		{"UpdatePath zero HPKE key", base, att, w.sign(t, base, 0, UpdatePathBody{Leaf: 0}), ErrInvalidKey, core.ErrInvalidArgument},
		{"UpdatePath path that does not parse", base, att, w.sign(t, base, 0, UpdatePathBody{Leaf: 0, HPKE: w.hpke[0], Path: []byte("ct")}), ErrUpdatePath, core.ErrInvalidArgument},
		{"UpdatePath with another leaf's path", base, att, w.sign(t, base, 0, UpdatePathBody{Leaf: 0, HPKE: other.HPKE, Path: other.Path}), ErrUpdatePath, core.ErrInvalidArgument},
		{"UpdatePath whose leaf key is not its path's", base, att, w.sign(t, base, 0, UpdatePathBody{Leaf: 0, HPKE: w.hpke[0], Path: updatePath(t, base, 0, 4).Path}), ErrUpdatePath, core.ErrInvalidArgument},
		{"UpdatePath made for a smaller tree", base, att, w.sign(t, base, 0, updatePath(t, lone.genesis, 0, 5)), ErrUpdatePath, core.ErrInvalidArgument},
		{"UpdatePath path over its bound", base, att, on(base.Name(), 0, UpdatePathBody{Leaf: 0, HPKE: w.hpke[0], Path: make([]byte, MaxPathBytes+1)}), ErrOpEncoding, core.ErrInvalidArgument},
		{"no body", base, att, on(base.Name(), 0, nil), ErrOpEncoding, core.ErrInvalidArgument},
		{"more signers than the attester verifies", all, att, w.sign(t, all, 0, RotateEpochBody{}), ErrSignersUnsupported, core.ErrFailedPrecondition},
	} {
		before := c.st.Name()
		next, err := c.st.Apply(c.op, c.att)
		switch {
		case c.want == nil && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want == nil && next.Epoch() != c.st.Epoch()+1:
			t.Errorf("%s: epoch %d after %d", c.name, next.Epoch(), c.st.Epoch())
		case c.want != nil && (!errors.Is(err, c.want) || !errors.Is(err, c.wantCo) || next != nil):
			t.Errorf("%s: %v, %v; want %v (%v)", c.name, next, err, c.want, c.wantCo)
		}
		if c.st.Name() != before {
			t.Errorf("%s: the state changed", c.name)
		}
		// Validate is Apply without the attestation.
		verr := c.st.Validate(c.op)
		if errors.Is(err, ErrAttestation) || errors.Is(err, ErrSignersUnsupported) {
			err = nil
		}
		if fmt.Sprint(verr) != fmt.Sprint(err) {
			t.Errorf("%s: Validate %v, Apply %v", c.name, verr, err)
		}
	}
}

// TestWidening: a tightening needs the current policy's signers, a
// widening every device.
func TestWidening(t *testing.T) {
	w := newWorld(t, 3, 0, mustKOfN(t, 2), multiSigner{})
	g := w.genesis
	change := func(s *State, p Policy, signers []LeafIndex) error {
		op := &Op{Parent: s.Name(), Author: signers[0], Body: ChangePolicyBody{Policy: p}}
		var err error
		if op.Attestation, err = w.signMulti(t, s, op, signers); err != nil {
			t.Fatal(err)
		}
		_, err = s.Apply(op, w.att)
		return err
	}
	two, three := []LeafIndex{0, 1}, []LeafIndex{0, 1, 2}
	if err := change(g, All(), two); err != nil {
		t.Errorf("tightening 2-of-n to all with 2 of 3: %v", err)
	}
	if err := change(g, All(), two[:1]); !errors.Is(err, errTooFewSigners) || errors.Is(err, ErrPolicyWidening) {
		t.Errorf("tightening with 1 of 3: %v", err)
	}
	if err := change(g, mustKOfN(t, 2), two); err != nil {
		t.Errorf("the same policy with 2 of 3: %v", err)
	}
	if err := change(g, Any(), two); !errors.Is(err, ErrPolicyWidening) || !errors.Is(err, errTooFewSigners) || !errors.Is(err, core.ErrPermissionDenied) {
		t.Errorf("widening 2-of-n to any with 2 of 3: %v", err)
	}
	if err := change(g, Any(), three); err != nil {
		t.Errorf("widening with 3 of 3: %v", err)
	}
	// From All, a widening needs everyone, as every op does.
	all := mustApply(t, g, w.sign(t, g, 0, ChangePolicyBody{Policy: All()}), w.att)
	if err := change(all, mustKOfN(t, 3), two); !errors.Is(err, ErrPolicyWidening) {
		t.Errorf("all to 3-of-n with 2 of 3: %v", err)
	}
	if err := change(all, mustKOfN(t, 3), three); err != nil {
		t.Errorf("all to 3-of-n with 3 of 3: %v", err)
	}
	// The single signer approves a widening only where it is every device.
	one := newWorld(t, 1, 1, All(), SingleSigner{})
	if _, err := one.genesis.Apply(one.sign(t, one.genesis, 0, ChangePolicyBody{Policy: Any()}), one.att); err != nil {
		t.Errorf("one device widening all to any: %v", err)
	}
	s := mustApply(t, one.genesis, one.sign(t, one.genesis, 0, AddLeafBody{Leaf: one.pool[0].leaf}), one.att)
	if _, err := s.Apply(one.sign(t, s, 0, ChangePolicyBody{Policy: Any()}), one.att); !errors.Is(err, ErrPolicyWidening) || !errors.Is(err, ErrSignersUnsupported) {
		t.Errorf("one of two devices widening all to any: %v", err)
	}
}

func TestSingleSigner(t *testing.T) {
	w := newWorld(t, 2, 0, Any(), SingleSigner{})
	op := w.sign(t, w.genesis, 1, RotateEpochBody{})
	if err := (SingleSigner{}).Verify(w.genesis, op, 1); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := (SingleSigner{}).Verify(w.genesis, op, 2); !errors.Is(err, ErrSignersUnsupported) {
		t.Errorf("Verify with 2 required: %v", err)
	}
	short := *op
	short.Attestation = op.Attestation[:63]
	if err := (SingleSigner{}).Verify(w.genesis, &short, 1); !errors.Is(err, ErrAttestation) {
		t.Errorf("Verify of a short signature: %v", err)
	}
	other := *op
	other.Author = 0
	if err := (SingleSigner{}).Verify(w.genesis, &other, 1); !errors.Is(err, ErrAttestation) {
		t.Errorf("Verify under another leaf's key: %v", err)
	}
	blank := *op
	blank.Author = 5
	if err := (SingleSigner{}).Verify(w.genesis, &blank, 1); !errors.Is(err, ErrNoSuchLeaf) {
		t.Errorf("Verify by a leaf outside the tree: %v", err)
	}
}

// oracleReduce is the reduction rule written the plain way: at each state,
// try every op; the highest valid one wins. Quadratic, and independent of
// the Reducer's bookkeeping.
func oracleReduce(t tb, genesis *State, ops []*Op, att Attester) Result {
	t.Helper()
	byID := make(map[OpID]*Op)
	for _, op := range ops {
		byID[mustID(t, op)] = op
	}
	s := genesis
	reached := map[StateName]bool{s.Name(): true}
	var res Result
	for {
		var here []OpID
		for id, op := range byID {
			if op.Parent == s.Name() {
				here = append(here, id)
			}
		}
		slices.SortFunc(here, func(a, b OpID) int { return b.compare(a) })
		var win *OpID
		var next *State
		for i, id := range here {
			if n, err := s.Apply(byID[id], att); err == nil && (win == nil || id.compare(*win) > 0) {
				win, next = &here[i], n
			}
		}
		for _, id := range here {
			if _, err := s.Apply(byID[id], att); err != nil {
				res.Rejected = append(res.Rejected, Rejected{ID: id, Err: err})
			} else if id != *win {
				res.Superseded = append(res.Superseded, Superseded{ID: id, By: *win})
			}
		}
		if win == nil {
			break
		}
		res.Applied = append(res.Applied, *win)
		s = next
		reached[s.Name()] = true
	}
	for id, op := range byID {
		if !reached[op.Parent] {
			res.Pending = append(res.Pending, id)
		}
	}
	slices.SortFunc(res.Pending, OpID.compare)
	res.State = s
	return res
}

func sameResult(t tb, what string, got, want Result) {
	t.Helper()
	errs := func(rs []Rejected) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = fmt.Sprintf("%s: %v", r.ID, r.Err)
		}
		return out
	}
	switch {
	case got.State.Name() != want.State.Name():
		t.Fatalf("%s: state %s, want %s", what, got.State.Name(), want.State.Name())
	case !slices.Equal(got.Applied, want.Applied):
		t.Fatalf("%s: applied %v, want %v", what, got.Applied, want.Applied)
	case !slices.Equal(got.Superseded, want.Superseded):
		t.Fatalf("%s: superseded %v, want %v", what, got.Superseded, want.Superseded)
	case !slices.Equal(errs(got.Rejected), errs(want.Rejected)):
		t.Fatalf("%s: rejected %v, want %v", what, errs(got.Rejected), errs(want.Rejected))
	case !slices.Equal(got.Pending, want.Pending):
		t.Fatalf("%s: pending %v, want %v", what, got.Pending, want.Pending)
	}
}

// drawOp draws an op on s: mostly valid, some invalid in each way the
// tree refuses, some naming a state that never exists.
func (w *world) drawOp(t *rapid.T, s *State) *Op {
	var devices []LeafIndex
	for i, l := range s.Members() {
		if l.Role == RoleDevice {
			devices = append(devices, i)
		}
	}
	author := rapid.SampledFrom(devices).Draw(t, "author")
	var body Body
	switch rapid.IntRange(0, 4).Draw(t, "kind") {
	case 0:
		body = AddLeafBody{Leaf: w.pool[rapid.IntRange(0, len(w.pool)-1).Draw(t, "member")].leaf}
	case 1:
		body = RemoveLeafBody{Leaf: LeafIndex(rapid.IntRange(0, int(s.Leaves())).Draw(t, "removed"))}
	case 2:
		body = ChangePolicyBody{Policy: rapid.SampledFrom([]Policy{Any(), All(), mustKOfN(t, 2)}).Draw(t, "policy")}
	case 3:
		body = RotateEpochBody{}
	default:
		switch rapid.IntRange(0, 7).Draw(t, "update") {
		case 0:
			leaf := LeafIndex(rapid.IntRange(0, int(s.Leaves())-1).Draw(t, "updated"))
			body = UpdatePathBody{Leaf: leaf, HPKE: rapid.SampledFrom(w.hpke).Draw(t, "hpke"), Path: []byte{rapid.Byte().Draw(t, "path")}}
		case 1:
			body = UpdatePathBody{Leaf: author, HPKE: rapid.SampledFrom(w.hpke).Draw(t, "hpke"), Path: []byte{rapid.Byte().Draw(t, "path")}}
		default:
			body = updatePath(t, s, author, rapid.Uint64().Draw(t, "leaf secret"))
		}
	}
	op := &Op{Parent: s.Name(), Author: author, Body: body}
	if rapid.IntRange(0, 15).Draw(t, "unknown parent") == 0 {
		op.Parent.Commitment[0] ^= 1
	}
	short := 0
	if rapid.IntRange(0, 7).Draw(t, "short of signers") == 0 {
		short = 1
	}
	w.attest(t, s, op, short)
	if rapid.IntRange(0, 15).Draw(t, "forged") == 0 {
		op.Attestation[len(op.Attestation)-1] ^= 1
	}
	return op
}

// drawOps draws n ops on the states the ops drawn so far lead to, valid or
// not, winning or not: chains, siblings, duplicates.
func (w *world) drawOps(t *rapid.T, n int) []*Op {
	states := []*State{w.genesis}
	var ops []*Op
	for len(ops) < n {
		if len(ops) > 0 && rapid.IntRange(0, 9).Draw(t, "duplicate") == 0 {
			ops = append(ops, ops[rapid.IntRange(0, len(ops)-1).Draw(t, "duplicated")])
			continue
		}
		// Mostly the newest state, so that chains grow deep; sometimes a
		// recent one (siblings) or any (forks far back).
		i := len(states) - 1
		switch rapid.IntRange(0, 9).Draw(t, "parent choice") {
		case 0, 1, 2:
			i -= rapid.IntRange(0, min(3, i)).Draw(t, "recent parent")
		case 3:
			i = rapid.IntRange(0, i).Draw(t, "any parent")
		}
		op := w.drawOp(t, states[i])
		if next, err := states[i].Apply(op, w.att); err == nil {
			states = append(states, next)
		}
		ops = append(ops, op)
	}
	return ops
}

// permutations calls f with every permutation of 0..n-1 (Heap's algorithm).
func permutations(n int, f func([]int)) {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	c := make([]int, n)
	f(p)
	for i := 0; i < n; {
		if c[i] < i {
			if i%2 == 0 {
				p[0], p[i] = p[i], p[0]
			} else {
				p[c[i]], p[i] = p[i], p[c[i]]
			}
			f(p)
			c[i]++
			i = 0
		} else {
			c[i] = 0
			i++
		}
	}
}

func TestPermutations(t *testing.T) {
	seen := make(map[string]bool)
	permutations(4, func(p []int) { seen[fmt.Sprint(p)] = true })
	if len(seen) != 24 {
		t.Fatalf("%d distinct permutations of 4, want 24", len(seen))
	}
}

func reduceInOrder(t tb, genesis *State, ops []*Op, order []int, att Attester) Result {
	t.Helper()
	r := NewReducer(genesis, att)
	for _, i := range order {
		f, err := r.Add(ops[i])
		if (err != nil) != (f.Status == StatusRejected) {
			t.Fatalf("Add: fate %s, error %v", f.Status, err)
		}
	}
	return r.Result()
}

// TestReduceEveryOrder: every arrival order of a small op set gives the
// same result, through Reduce and through the Reducer, and the oracle's.
func TestReduceEveryOrder(t *testing.T) {
	single := newWorld(t, 2, 4, Any(), SingleSigner{})
	multi := newWorld(t, 3, 4, mustKOfN(t, 2), multiSigner{})
	rapid.Check(t, func(rt *rapid.T) {
		w := single
		if rapid.Bool().Draw(rt, "multi-signer") {
			w = multi
		}
		ops := w.drawOps(rt, rapid.IntRange(1, 6).Draw(rt, "ops"))
		att := memo(w.att)
		want, err := Reduce(w.genesis, ops, att)
		if err != nil {
			rt.Fatal(err)
		}
		sameResult(rt, "oracle", want, oracleReduce(rt, w.genesis, ops, att))
		permutations(len(ops), func(p []int) {
			sameResult(rt, fmt.Sprintf("Reducer, order %v", p), reduceInOrder(rt, w.genesis, ops, p, att), want)
			perm := make([]*Op, len(ops))
			for i, j := range p {
				perm[i] = ops[j]
			}
			got, err := Reduce(w.genesis, perm, att)
			if err != nil {
				rt.Fatal(err)
			}
			sameResult(rt, fmt.Sprintf("Reduce, order %v", p), got, want)
		})
	})
}

// TestReduceRandomOrders: the same for larger sets and random orders.
func TestReduceRandomOrders(t *testing.T) {
	w := newWorld(t, 4, 12, mustKOfN(t, 2), multiSigner{})
	rapid.Check(t, func(rt *rapid.T) {
		ops := w.drawOps(rt, rapid.IntRange(10, 60).Draw(rt, "ops"))
		att := memo(w.att)
		want, err := Reduce(w.genesis, ops, att)
		if err != nil {
			rt.Fatal(err)
		}
		sameResult(rt, "oracle", want, oracleReduce(rt, w.genesis, ops, att))
		idx := make([]int, len(ops))
		for i := range idx {
			idx[i] = i
		}
		for i := range 3 {
			p := rapid.Permutation(idx).Draw(rt, fmt.Sprint("order ", i))
			sameResult(rt, fmt.Sprintf("Reducer, order %v", p), reduceInOrder(rt, w.genesis, ops, p, att), want)
		}
	})
}

// TestReduceScenario walks one reduction by hand: three siblings at
// genesis, a chain on the winner, an op on a loser, one on no known state,
// and an invalid one.
func TestReduceScenario(t *testing.T) {
	w := newWorld(t, 2, 2, Any(), SingleSigner{})
	g := w.genesis
	siblings := []*Op{
		w.sign(t, g, 0, RotateEpochBody{}),
		w.sign(t, g, 1, updatePath(t, g, 1, 1)),
		w.sign(t, g, 0, updatePath(t, g, 0, 0)),
	}
	// Each sibling leads to another state (the update path's seals are
	// random, so which one wins varies from run to run), so an op on a
	// loser is never also one on the winner.
	slices.SortFunc(siblings, func(a, b *Op) int { return mustID(t, b).compare(mustID(t, a)) })
	win, lose1, lose2 := siblings[0], siblings[1], siblings[2]
	s1 := mustApply(t, g, win, w.att)
	next := w.sign(t, s1, 1, AddLeafBody{Leaf: w.pool[0].leaf})
	s2 := mustApply(t, s1, next, w.att)
	onLoser := w.sign(t, mustApply(t, g, lose1, w.att), 0, RotateEpochBody{})
	unknown := w.sign(t, s2, 0, RotateEpochBody{})
	unknown.Parent.Epoch += 7
	invalid := w.sign(t, s2, 0, RemoveLeafBody{Leaf: 3})
	ops := []*Op{invalid, onLoser, lose2, next, unknown, win, lose1}

	pending := []OpID{mustID(t, onLoser), mustID(t, unknown)}
	slices.SortFunc(pending, OpID.compare)
	_, invalidErr := s2.Apply(invalid, w.att)
	want := Result{
		State:   s2,
		Applied: []OpID{mustID(t, win), mustID(t, next)},
		Superseded: []Superseded{
			{ID: mustID(t, lose1), By: mustID(t, win)},
			{ID: mustID(t, lose2), By: mustID(t, win)},
		},
		Rejected: []Rejected{{ID: mustID(t, invalid), Err: invalidErr}},
		Pending:  pending,
	}
	got, err := Reduce(g, ops, w.att)
	if err != nil {
		t.Fatal(err)
	}
	sameResult(t, "Reduce", got, want)

	r := NewReducer(g, w.att)
	for _, op := range slices.Backward(ops) {
		if _, err := r.Add(op); err != nil && op != invalid {
			t.Fatalf("Add: %v", err)
		}
	}
	sameResult(t, "Reducer", r.Result(), want)
	for _, c := range []struct {
		op   *Op
		want Fate
	}{
		{win, Fate{Status: StatusApplied}},
		{lose2, Fate{Status: StatusSuperseded, By: mustID(t, win)}},
		{onLoser, Fate{Status: StatusPending}},
		{invalid, Fate{Status: StatusRejected, Err: invalidErr}},
	} {
		if f, ok := r.Fate(mustID(t, c.op)); !ok || f.Status != c.want.Status || f.By != c.want.By || fmt.Sprint(f.Err) != fmt.Sprint(c.want.Err) {
			t.Errorf("fate %+v, %v; want %+v", f, ok, c.want)
		}
	}
	if _, ok := r.Fate(OpID{}); ok {
		t.Error("fate of an op never added")
	}
	if _, err := Reduce(g, []*Op{win, {Parent: g.Name()}}, w.att); !errors.Is(err, ErrOpEncoding) {
		t.Errorf("Reduce with an op without a body: %v", err)
	}
}

// TestReducerReroute: a late sibling that beats the op applied at its
// parent re-reduces from that parent only, keeping the chain before it and
// every verdict already reached.
func TestReducerReroute(t *testing.T) {
	w := newWorld(t, 2, 2, Any(), SingleSigner{})
	att := &countingAttester{Attester: w.att}
	g := w.genesis
	a0 := w.sign(t, g, 0, RotateEpochBody{})
	s1 := mustApply(t, g, a0, w.att)
	a1 := w.sign(t, s1, 0, RotateEpochBody{})
	s2 := mustApply(t, s1, a1, w.att)
	a2 := w.sign(t, s2, 1, RotateEpochBody{})

	// Siblings of a1 at s1, differing in their leaf secrets: one above a1,
	// one below.
	var above, below *Op
	for i := 0; above == nil || below == nil; i++ {
		op := w.sign(t, s1, 1, updatePath(t, s1, 1, uint64(i)))
		if mustID(t, op).compare(mustID(t, a1)) > 0 {
			above = op
		} else {
			below = op
		}
	}
	r := NewReducer(g, att)
	for _, op := range []*Op{a0, a1, a2} {
		if f, err := r.Add(op); err != nil || f.Status != StatusApplied {
			t.Fatalf("Add: %v, %v", f, err)
		}
	}
	kept := r.states[1]
	if f, err := r.Add(below); err != nil || f.Status != StatusSuperseded || f.By != mustID(t, a1) {
		t.Fatalf("lower sibling: %+v, %v", f, err)
	}
	if r.State().Epoch() != 3 {
		t.Fatalf("a lower sibling moved the tree to epoch %d", r.State().Epoch())
	}
	calls := att.calls
	if f, err := r.Add(above); err != nil || f.Status != StatusApplied {
		t.Fatalf("higher sibling: %+v, %v", f, err)
	}
	if want := mustApply(t, s1, above, w.att); r.State().Name() != want.Name() {
		t.Fatalf("state %s after the reroute, want %s", r.State().Name(), want.Name())
	}
	if r.states[1] != kept {
		t.Error("the state before the reroute was rebuilt")
	}
	if att.calls != calls+1 {
		t.Errorf("%d verifications for one new op", att.calls-calls)
	}
	for _, c := range []struct {
		op   *Op
		want Status
	}{{a0, StatusApplied}, {a1, StatusSuperseded}, {below, StatusSuperseded}, {a2, StatusPending}} {
		if f, _ := r.Fate(mustID(t, c.op)); f.Status != c.want {
			t.Errorf("fate %s, want %s", f.Status, c.want)
		}
	}
	// The chain grows on the new winner.
	s2b := r.State()
	if f, err := r.Add(w.sign(t, s2b, 0, RotateEpochBody{})); err != nil || f.Status != StatusApplied || r.State().Epoch() != 3 {
		t.Fatalf("op on the new chain: %+v, %v, epoch %d", f, err, r.State().Epoch())
	}
	sameResult(t, "Reducer", r.Result(), oracleReduce(t, g, []*Op{a0, a1, a2, below, above, w.sign(t, s2b, 0, RotateEpochBody{})}, w.att))
}

// TestReducerRefuses: an op invalid at a known parent is refused with its
// reason, every time it is added, and never applied; one that has no
// encoding is not kept at all.
func TestReducerRefuses(t *testing.T) {
	w := newWorld(t, 2, 2, Any(), SingleSigner{})
	g := w.genesis
	r := NewReducer(g, w.att)
	forged := w.sign(t, g, 0, RotateEpochBody{})
	forged.Attestation[0] ^= 1
	for range 2 {
		if f, err := r.Add(forged); !errors.Is(err, ErrAttestation) || f.Status != StatusRejected {
			t.Fatalf("forged op: %+v, %v", f, err)
		}
	}
	if r.State() != g {
		t.Fatal("a refused op moved the tree")
	}
	if _, err := r.Add(&Op{Parent: g.Name()}); !errors.Is(err, ErrOpEncoding) {
		t.Fatalf("op without a body: %v", err)
	}
	if res := r.Result(); len(res.Rejected) != 1 || len(res.Pending) != 0 {
		t.Fatalf("result %+v", res)
	}
	// An op that waited for its parent is judged when the parent arrives.
	a0 := w.sign(t, g, 0, RotateEpochBody{})
	s1 := mustApply(t, g, a0, w.att)
	late := w.sign(t, s1, 0, RemoveLeafBody{Leaf: 3})
	if f, err := r.Add(late); err != nil || f.Status != StatusPending {
		t.Fatalf("op on an unknown state: %+v, %v", f, err)
	}
	if _, err := r.Add(a0); err != nil {
		t.Fatal(err)
	}
	if f, _ := r.Fate(mustID(t, late)); f.Status != StatusRejected || !errors.Is(f.Err, ErrNoSuchLeaf) {
		t.Fatalf("fate of the late op: %+v", f)
	}
}

// benchLog is a log of n ops over a tree of 1,024 leaves (1,000 devices
// at genesis): a chain in which half the ops are UpdatePaths (with a path
// of a 1,024-leaf tree's size), a fifth RotateEpochs, the rest removals and
// re-additions, and one state in twenty has a losing sibling.
func benchLog(b *testing.B, n int) (*world, []*Op) {
	b.Helper()
	w := newWorld(b, 1000, 0, Any(), SingleSigner{})
	rng := rand.New(rand.NewPCG(1, 2))
	s := w.genesis
	devices := make([]LeafIndex, 0, 1000)
	for i := range s.Members() {
		devices = append(devices, i)
	}
	var removed []Leaf
	var ops []*Op
	for len(ops) < n {
		k := rng.IntN(len(devices))
		author := devices[k]
		var body Body
		switch x := rng.IntN(20); {
		case x < 10:
			body = updatePath(b, s, author, uint64(len(ops)))
		case x < 14:
			body = RotateEpochBody{}
		case x < 17 || len(removed) == 0:
			j := rng.IntN(len(devices))
			if devices[j] == author {
				body = RotateEpochBody{}
				break
			}
			l, _ := s.Leaf(devices[j])
			removed = append(removed, l)
			body = RemoveLeafBody{Leaf: devices[j]}
		default:
			body = AddLeafBody{Leaf: removed[0]}
			removed = removed[1:]
		}
		op := w.sign(b, s, author, body)
		winner := op
		if rng.IntN(20) == 0 {
			sib := w.sign(b, s, devices[(k+1)%len(devices)], RotateEpochBody{})
			ops = append(ops, sib)
			if mustID(b, sib).compare(mustID(b, op)) > 0 {
				winner = sib
				if rb, ok := body.(RemoveLeafBody); ok {
					l, _ := s.Leaf(rb.Leaf)
					removed = slices.DeleteFunc(removed, func(r Leaf) bool { return r == l })
				}
				if ab, ok := body.(AddLeafBody); ok {
					removed = append(removed, ab.Leaf)
				}
			}
		}
		ops = append(ops, op)
		s = mustApply(b, s, winner, w.att)
		devices = devices[:0]
		for i, l := range s.Members() {
			if l.Role == RoleDevice {
				devices = append(devices, i)
			}
		}
	}
	rng.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
	return w, ops
}

// BenchmarkReduce10k reduces a log of 10,000 ops from scratch, verifying
// every attestation (one Ed25519 verification per op reached).
func BenchmarkReduce10k(b *testing.B) {
	w, ops := benchLog(b, 10000)
	for b.Loop() {
		if _, err := Reduce(w.genesis, ops, w.att); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReduce10kKnownVerdicts is the same reduction with every
// attestation's verdict already known (verified on arrival): the cost of
// the reduction itself.
func BenchmarkReduce10kKnownVerdicts(b *testing.B) {
	w, ops := benchLog(b, 10000)
	att := memo(w.att)
	if _, err := Reduce(w.genesis, ops, att); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Reduce(w.genesis, ops, att); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReducerAdd adds one op at the end of the chain of a reducer
// that holds the 10,000-op log, verifying its attestation.
func BenchmarkReducerAdd(b *testing.B) {
	w, ops := benchLog(b, 10000)
	r := NewReducer(w.genesis, w.att)
	for _, op := range ops {
		if _, err := r.Add(op); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		s := r.State()
		var author LeafIndex
		for j := range s.Members() {
			author = j
			break
		}
		op := w.sign(b, s, author, updatePath(b, s, author, uint64(i)))
		b.StartTimer()
		if f, err := r.Add(op); err != nil || f.Status != StatusApplied {
			b.Fatalf("Add: %+v, %v", f, err)
		}
	}
}
