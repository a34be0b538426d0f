package lattice

import (
	"bytes"
	"errors"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
	"pgregory.net/rapid"
)

type codecEq[T any] interface {
	Codec[T]
	Equal(T) bool
}

// roundTrip checks encode → decode → equal and re-encode → same bytes, and
// that every strict prefix and any trailing byte is rejected cleanly.
func roundTrip[T codecEq[T]](t tb, v T) {
	t.Helper()
	b := encode(t, v)
	var zero T
	got, err := zero.DecodeBinary(b)
	if err != nil {
		t.Fatalf("decode %x: %v", b, err)
	}
	if !got.Equal(v) {
		t.Fatalf("decode(encode(v)) != v for %x", b)
	}
	if b2 := encode(t, got); !bytes.Equal(b, b2) {
		t.Fatalf("re-encoding differs:\n%x\n%x", b, b2)
	}
	for i := range len(b) {
		if _, err := zero.DecodeBinary(b[:i]); !errors.Is(err, core.ErrInvalidArgument) {
			t.Fatalf("prefix %x of %x: err %v, want ErrInvalidArgument", b[:i], b, err)
		}
	}
	if _, err := zero.DecodeBinary(append(b[:len(b):len(b)], 0)); !errors.Is(err, core.ErrInvalidArgument) {
		t.Fatalf("trailing byte accepted: %v", err)
	}
}

func TestEncodingRoundTrip(t *testing.T) {
	s := suite()
	s.gcounter.run(t, roundTrips)
	s.pn.run(t, roundTrips)
	s.max.run(t, roundTrips)
	s.lww.run(t, roundTrips)
	s.mv.run(t, roundTrips)
	s.gset.run(t, roundTrips)
	s.orset.run(t, roundTrips)
	s.mapPN.run(t, roundTrips)
	s.mapOR.run(t, roundTrips)
	t.Run("CapSet", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) { roundTrip(t, genCapSet(t)) })
	})
	t.Run("MinRegister", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) { roundTrip(t, genMinReg(t)) })
	})
}

func roundTrips[T Nested[T]](t *testing.T, mut mutator[T]) {
	rapid.Check(t, func(t *rapid.T) {
		st, deltas := world(t, mut)
		for _, s := range st {
			roundTrip(t, s)
		}
		for _, d := range deltas {
			roundTrip(t, d)
		}
	})
}

func TestKeyRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		keyRoundTrip(t, String(rapid.String().Draw(t, "s")))
		keyRoundTrip(t, Uint64(rapid.Uint64().Draw(t, "u")))
		keyRoundTrip(t, Int64(rapid.Int64().Draw(t, "i")))
		var d Device
		copy(d[:], rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, "d"))
		keyRoundTrip(t, d)
	})
}

func keyRoundTrip[K Key[K]](t *rapid.T, k K) {
	b := k.AppendKey([]byte{0xee})[1:]
	got, rest, err := k.DecodeKey(append(b, 7))
	if err != nil || got != k || !bytes.Equal(rest, []byte{7}) {
		t.Fatalf("key %v: got %v rest %x err %v", k, got, rest, err)
	}
	for i := range len(b) {
		if _, _, err := k.DecodeKey(b[:i]); !errors.Is(err, core.ErrInvalidArgument) {
			t.Fatalf("key prefix accepted: %v", err)
		}
	}
}

// TestDecodeRejects pins the non-canonical forms the decoders must refuse,
// each of which would otherwise give one value two encodings or break an
// invariant the join relies on.
func TestDecodeRejects(t *testing.T) {
	h := func(tag byte, body ...byte) []byte { return append([]byte{tag, formatV1}, body...) }
	cases := []struct {
		name string
		dec  func([]byte) error
		in   []byte
	}{
		{"empty", decErr[GSet[String]], nil},
		{"wrong tag", decErr[GSet[String]], h(tagORSet, 0)},
		{"unknown version", decErr[GSet[String]], []byte{tagGSet, 2, 0}},
		{"gset unsorted", decErr[GSet[String]], h(tagGSet, 2, 1, 'b', 1, 'a')},
		{"gset duplicate", decErr[GSet[String]], h(tagGSet, 2, 1, 'a', 1, 'a')},
		{"gset huge count", decErr[GSet[String]], h(tagGSet, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 'a')},
		{"string huge length", decErr[GSet[String]], h(tagGSet, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 'a')},
		{"non-minimal varint", decErr[GSet[Uint64]], h(tagGSet, 1, 0x80, 0x00)},
		{"varint overflow", decErr[GSet[Uint64]], h(tagGSet, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)},
		{"gcounter zero count", decErr[GCounter[Uint64]], h(tagGCounter, 1, 1, 0)},
		{"gcounter unsorted", decErr[GCounter[Uint64]], h(tagGCounter, 2, 2, 1, 1, 1)},
		{"bool not 0/1", decErr[MaxRegister[Uint64]], h(tagMaxRegister, 2, 1)},
		{"unset with value", decErr[MaxRegister[Uint64]], h(tagMaxRegister, 0, 1)},
		{"capset top with elements", decErr[CapSet[String]], h(tagCapSet, 1, 1, 1, 'a')},
		// context: vv {1:1}, cloud {(1,2)} — (1,2) should have been folded into vv.
		{"cloud not normal", decErr[tORSet], h(tagORSet, 1, 1, 1, 1, 1, 2, 0)},
		{"cloud dot covered", decErr[tORSet], h(tagORSet, 1, 1, 2, 1, 1, 1, 0)},
		{"zero dot", decErr[tORSet], h(tagORSet, 0, 1, 1, 0, 0)},
		// element "a" with dot (1,1) but an empty context.
		{"dot outside context", decErr[tORSet], h(tagORSet, 0, 0, 1, 1, 'a', 1, 1, 1)},
		{"empty dot set", decErr[tORSet], h(tagORSet, 1, 1, 1, 0, 1, 1, 'a', 0)},
		{"delta coordinator threshold", func([]byte) error {
			_, err := NewDeltaCoordinator(tORSet{}, 0)
			return err
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.dec(c.in); !errors.Is(err, core.ErrInvalidArgument) {
				t.Fatalf("decode %x: err %v, want ErrInvalidArgument", c.in, err)
			}
		})
	}
}

func decErr[T Codec[T]](b []byte) error {
	var zero T
	_, err := zero.DecodeBinary(b)
	return err
}

func TestDeviceReplica(t *testing.T) {
	var a, b core.DeviceID
	a[0], b[0] = 1, 2
	var c GCounter[Device]
	c = c.Join(must(c.Inc(Device(a), 3)))
	c = c.Join(must(c.Inc(Device(b), 4)))
	if c.Value() != 7 || core.DeviceID(c.Replicas()[1]) != b {
		t.Fatalf("got %d %v", c.Value(), c.Replicas())
	}
	var zero GCounter[Device]
	got, err := zero.DecodeBinary(encode(t, c))
	if err != nil || !got.Equal(c) {
		t.Fatalf("round trip: %v", err)
	}
}
