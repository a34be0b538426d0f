package tree

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
	"pgregory.net/rapid"
)

// sampleOps are one op of each kind on a fixed parent, with fixed keys.
func sampleOps(t tb) []*Op {
	t.Helper()
	f := newFixture(t, 7, RoleGuardian)
	parent := StateName{Epoch: 0x0102030405060708, Commitment: core.TaggedHash("test", []byte("parent"))}
	bodies := []Body{
		AddLeafBody{Leaf: f.leaf},
		RemoveLeafBody{Leaf: 0x0a0b0c0d},
		ChangePolicyBody{Policy: mustKOfN(t, 0x0203)},
		ChangePolicyBody{Policy: Any()},
		RotateEpochBody{},
		UpdatePathBody{Leaf: 3, HPKE: f.leaf.HPKE, Path: []byte("path secrets")},
	}
	ops := make([]*Op, len(bodies))
	for i, b := range bodies {
		ops[i] = &Op{Parent: parent, Author: 3, Body: b, Attestation: []byte{0xa5, byte(i)}}
	}
	return ops
}

func mustEncode(t tb, op *Op) []byte {
	t.Helper()
	b, err := AppendOp(nil, op)
	if err != nil {
		t.Fatalf("AppendOp: %v", err)
	}
	return b
}

// TestOpEncoding checks each kind's encoding against the layout documented
// in ops.go, built field by field here, and pins one op id.
func TestOpEncoding(t *testing.T) {
	ops := sampleOps(t)
	f := newFixture(t, 7, RoleGuardian)
	header := func(kind Kind) []byte {
		b := []byte{1, 1, 2, 3, 4, 5, 6, 7, 8}
		b = append(b, ops[0].Parent.Commitment[:]...)
		return append(b, 0, 0, 0, 3, byte(kind))
	}
	att := func(i int) []byte { return []byte{0, 2, 0xa5, byte(i)} }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	want := [][]byte{
		cat(header(KindAddLeaf), []byte{2}, f.leaf.Device[:], f.leaf.HPKE[:], att(0)),
		cat(header(KindRemoveLeaf), []byte{0x0a, 0x0b, 0x0c, 0x0d}, att(1)),
		cat(header(KindChangePolicy), []byte{1, 2, 0x02, 0x03}, att(2)),
		cat(header(KindChangePolicy), []byte{1, 1}, att(3)),
		cat(header(KindRotateEpoch), att(4)),
		cat(header(KindUpdatePath), []byte{0, 0, 0, 3}, f.leaf.HPKE[:], []byte{0, 0, 0, 12}, []byte("path secrets"), att(5)),
	}
	for i, op := range ops {
		got := mustEncode(t, op)
		if !bytes.Equal(got, want[i]) {
			t.Errorf("%s:\n got %x\nwant %x", op.Body.Kind(), got, want[i])
		}
		if id := mustID(t, op); id != OpID(core.TaggedHash("aura/tree/op/v1", got)) {
			t.Errorf("%s: id is not the tagged hash of the encoding", op.Body.Kind())
		}
		d, err := op.SigningDigest()
		if err != nil || d != core.TaggedHash("aura/tree/op/signing/v1", got[:len(got)-4]) {
			t.Errorf("%s: signing digest %s, %v is not over the encoding without the attestation", op.Body.Kind(), d, err)
		}
	}
	if id := mustID(t, ops[5]).String(); id != "3f12ccff0547469d8eebfa6bc7f00028ec1e3c5347535e5a662a0e30a5626edc" {
		t.Errorf("UpdatePath id %s changed: a new encoding needs a new version", id)
	}
}

func TestOpIDCoversAttestation(t *testing.T) {
	a := sampleOps(t)[4]
	b := *a
	b.Attestation = []byte{0xa5, 5}
	da, _ := a.SigningDigest()
	db, _ := b.SigningDigest()
	if mustID(t, a) == mustID(t, &b) || da != db {
		t.Error("the id must cover the attestation and the signing digest must not")
	}
}

// drawOpValue draws an op with an encoding, fields at their bounds
// included.
func drawOpValue(t *rapid.T) *Op {
	op := &Op{
		Parent: StateName{Epoch: rapid.Uint64().Draw(t, "epoch"), Commitment: core.Hash(rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, "commitment"))},
		Author: LeafIndex(rapid.Uint32().Draw(t, "author")),
	}
	key := func(label string) [32]byte { return [32]byte(rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, label)) }
	switch rapid.IntRange(1, 5).Draw(t, "kind") {
	case 1:
		op.Body = AddLeafBody{Leaf: Leaf{Role: rapid.SampledFrom([]Role{RoleDevice, RoleGuardian}).Draw(t, "role"), Device: core.DeviceID(key("device")), HPKE: key("hpke")}}
	case 2:
		op.Body = RemoveLeafBody{Leaf: LeafIndex(rapid.Uint32().Draw(t, "leaf"))}
	case 3:
		p, err := KOfN(rapid.IntRange(1, MaxThreshold).Draw(t, "k"))
		if err != nil {
			t.Fatal(err)
		}
		op.Body = ChangePolicyBody{Policy: rapid.SampledFrom([]Policy{p, All()}).Draw(t, "policy")}
	case 4:
		op.Body = RotateEpochBody{}
	case 5:
		op.Body = UpdatePathBody{Leaf: LeafIndex(rapid.Uint32().Draw(t, "leaf")), HPKE: key("hpke"), Path: rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "path")}
	}
	op.Attestation = rapid.SliceOfN(rapid.Byte(), 0, 200).Draw(t, "attestation")
	return op
}

func TestOpRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		op := drawOpValue(t)
		b := mustEncode(t, op)
		got, err := ParseOp(b)
		if err != nil {
			t.Fatalf("ParseOp(%x): %v", b, err)
		}
		if !sameOp(got, op) {
			t.Fatalf("ParseOp(AppendOp(%+v)) = %+v", op, got)
		}
	})
}

// sameOp compares ops field by field, an empty path and attestation equal
// to nil ones.
func sameOp(a, b *Op) bool {
	pa, pb := a.Body, b.Body
	if ua, ok := pa.(UpdatePathBody); ok {
		ub, ok := pb.(UpdatePathBody)
		if !ok || !bytes.Equal(ua.Path, ub.Path) {
			return false
		}
		ua.Path, ub.Path = nil, nil
		pa, pb = ua, ub
	}
	return a.Parent == b.Parent && a.Author == b.Author && reflect.DeepEqual(pa, pb) && bytes.Equal(a.Attestation, b.Attestation)
}

func TestParseOpRefusals(t *testing.T) {
	ops := sampleOps(t)
	add, remove, policy, rotate, update := mustEncode(t, ops[0]), mustEncode(t, ops[1]), mustEncode(t, ops[2]), mustEncode(t, ops[4]), mustEncode(t, ops[5])
	set := func(b []byte, i int, v ...byte) []byte {
		b = bytes.Clone(b)
		copy(b[i:], v)
		return b
	}
	bodyAt := opHeaderSize
	bigLen := binary.BigEndian.AppendUint32(nil, MaxPathBytes+1)
	overAtt := binary.BigEndian.AppendUint16(bytes.Clone(rotate[:opHeaderSize]), MaxAttestationBytes+1)
	overAtt = append(overAtt, make([]byte, MaxAttestationBytes+1)...)
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"header only", rotate[:opHeaderSize]},
		{"version 0", set(rotate, 0, 0)},
		{"version 2", set(rotate, 0, 2)},
		{"kind 0", set(rotate, 45, 0)},
		{"kind 6", set(rotate, 45, 6)},
		{"role 0", set(add, bodyAt, 0)},
		{"role 3", set(add, bodyAt, 3)},
		{"AddLeaf truncated", add[:bodyAt+40]},
		{"RemoveLeaf truncated", remove[:bodyAt+3]},
		{"policy 1-of-n as k-of-n", set(policy, bodyAt+2, 0, 1)},
		{"policy kind 0", set(policy, bodyAt+1, 0)},
		{"policy version 2", set(policy, bodyAt, 2)},
		{"policy truncated", policy[:bodyAt+3]},
		{"path longer than the bytes", set(update, bodyAt+36, 0, 0, 1, 0)},
		{"path over its bound", set(update, bodyAt+36, bigLen...)},
		{"no attestation length", rotate[:opHeaderSize+1]},
		{"attestation truncated", rotate[:len(rotate)-1]},
		{"trailing byte", append(bytes.Clone(rotate), 0)},
		{"attestation over its bound", overAtt},
	} {
		if op, err := ParseOp(c.b); !errors.Is(err, ErrOpEncoding) || !errors.Is(err, core.ErrInvalidArgument) {
			t.Errorf("%s: %+v, %v", c.name, op, err)
		}
	}
}

func TestAppendOpRefusals(t *testing.T) {
	p := StateName{}
	for _, c := range []struct {
		name string
		op   *Op
	}{
		{"no body", &Op{Parent: p}},
		{"role", &Op{Parent: p, Body: AddLeafBody{Leaf: Leaf{Role: 3}}}},
		{"path over its bound", &Op{Parent: p, Body: UpdatePathBody{Path: make([]byte, MaxPathBytes+1)}}},
		{"attestation over its bound", &Op{Parent: p, Body: RotateEpochBody{}, Attestation: make([]byte, MaxAttestationBytes+1)}},
	} {
		if _, err := AppendOp(nil, c.op); !errors.Is(err, ErrOpEncoding) {
			t.Errorf("%s: %v", c.name, err)
		}
		if _, err := c.op.ID(); !errors.Is(err, ErrOpEncoding) {
			t.Errorf("%s: ID: %v", c.name, err)
		}
	}
	if _, err := (&Op{}).SigningDigest(); !errors.Is(err, ErrOpEncoding) {
		t.Errorf("SigningDigest of an op without a body: %v", err)
	}
}

// FuzzParseOp: whatever ParseOp accepts encodes back to the same bytes
// (one encoding per op) and parses again to the same op.
func FuzzParseOp(f *testing.F) {
	for _, op := range sampleOps(f) {
		f.Add(mustEncode(f, op))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		op, err := ParseOp(b)
		if err != nil {
			if !errors.Is(err, ErrOpEncoding) {
				t.Fatalf("ParseOp: %v does not wrap ErrOpEncoding", err)
			}
			return
		}
		enc, err := AppendOp(nil, op)
		if err != nil {
			t.Fatalf("AppendOp of a parsed op: %v", err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding differs:\n  in %s\n out %s", hex.EncodeToString(b), hex.EncodeToString(enc))
		}
		again, err := ParseOp(enc)
		if err != nil || !sameOp(again, op) {
			t.Fatalf("second parse: %+v, %v", again, err)
		}
		if _, err := op.ID(); err != nil {
			t.Fatalf("ID of a parsed op: %v", err)
		}
	})
}
