package lattice

import (
	"bytes"
	"errors"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
)

// fuzzDecode: any input either fails with ErrInvalidArgument or decodes to a
// value whose encoding is exactly the input (the decoders accept only
// canonical bytes), and that value decodes again to itself.
func fuzzDecode[T codecEq[T]](f *testing.F, extra func(*testing.T, T), seeds ...T) {
	for _, s := range seeds {
		f.Add(encode(f, s))
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var zero T
		v, err := zero.DecodeBinary(b)
		if err != nil {
			if !errors.Is(err, core.ErrInvalidArgument) {
				t.Fatalf("error does not wrap ErrInvalidArgument: %v", err)
			}
			return
		}
		enc := encode(t, v)
		if !bytes.Equal(enc, b) {
			t.Fatalf("accepted non-canonical input\n in %x\nout %x", b, enc)
		}
		v2, err := zero.DecodeBinary(enc)
		if err != nil || !v2.Equal(v) {
			t.Fatalf("re-decode: %v", err)
		}
		if extra != nil {
			extra(t, v)
		}
	})
}

// idem exercises the join on decoded (possibly adversarial) values.
func idem[T Nested[T]](t *testing.T, v T) {
	if !v.Join(v).Equal(v) || !v.Join(v.Bottom()).Equal(v) {
		t.Fatalf("join not idempotent on decoded value")
	}
}

func seedORSet() []tORSet {
	var a, b tORSet
	a = a.Join(must(a.Add(1, "x"))).Join(must(a.Add(2, "y")))
	b = b.Join(must(b.Add(3, "x")))
	a = a.Join(a.Remove("y"))
	return []tORSet{{}, a, b, a.Join(b), a.Remove("x")}
}

func FuzzDecodeGCounter(f *testing.F) {
	var c GCounter[Uint64]
	c = c.Join(must(c.Inc(1, 5))).Join(must(c.Inc(300, 1<<40)))
	fuzzDecode(f, idem, GCounter[Uint64]{}, c)
}

func FuzzDecodePNCounter(f *testing.F) {
	var c tPN
	c = c.Join(must(c.Add(1, 5))).Join(must(c.Add(2, -9)))
	fuzzDecode(f, idem, tPN{}, c)
}

func FuzzDecodeMaxRegister(f *testing.F) {
	fuzzDecode(f, idem, MaxRegister[Int64]{}, NewMaxRegister[Int64](-3))
}

func FuzzDecodeMinRegister(f *testing.F) {
	fuzzDecode(f, nil, MinRegister[Int64]{}, NewMinRegister[Int64](1<<50))
}

func FuzzDecodeLWWRegister(f *testing.F) {
	var l tLWW
	fuzzDecode(f, idem, l, must(l.Set(2, "v")))
}

func FuzzDecodeMVRegister(f *testing.F) {
	var a, b tMV
	a = a.Join(must(a.Set(1, "x")))
	b = b.Join(must(b.Set(2, "y")))
	fuzzDecode(f, idem, tMV{}, a, a.Join(b), a.Clear())
}

func FuzzDecodeGSet(f *testing.F) {
	fuzzDecode(f, idem, GSet[String]{}, NewGSet[String]("a", "b", ""))
}

func FuzzDecodeORSet(f *testing.F) {
	fuzzDecode(f, idem, seedORSet()...)
}

func FuzzDecodeORMap(f *testing.F) {
	var m tMapOR
	m = m.Join(must(m.Update(1, "k", func(s tORSet) (tORSet, error) { return s.Add(1, "e") })))
	m = m.Join(must(m.Update(2, "j", func(s tORSet) (tORSet, error) { return s, nil })))
	fuzzDecode(f, idem, tMapOR{}, m, m.Remove("k"))
}

func FuzzDecodeCapSet(f *testing.F) {
	fuzzDecode(f, nil, CapSet[String]{}, AllCapabilities[String](), NewCapSet[String]("read", "write"))
}

func FuzzDecodeDeviceGCounter(f *testing.F) {
	var c GCounter[Device]
	c = c.Join(must(c.Inc(Device{1}, 5)))
	fuzzDecode(f, idem, c)
}

// fuzzJoinLaws checks the laws on arbitrary decodable states, which a
// misbehaving peer can send: the join must stay a semilattice on them.
func fuzzJoinLaws[T Nested[T]](f *testing.F, seeds ...T) {
	for _, a := range seeds {
		for _, b := range seeds {
			f.Add(encode(f, a), encode(f, b), encode(f, a.Join(b)))
		}
	}
	f.Fuzz(func(t *testing.T, ea, eb, ec []byte) {
		var zero T
		a, errA := zero.DecodeBinary(ea)
		b, errB := zero.DecodeBinary(eb)
		c, errC := zero.DecodeBinary(ec)
		if errA != nil || errB != nil || errC != nil {
			return
		}
		ab := a.Join(b)
		if !ab.Equal(b.Join(a)) || !ab.Join(c).Equal(a.Join(b.Join(c))) || !ab.Join(ab).Equal(ab) || !a.Join(ab).Equal(ab) {
			t.Fatalf("laws broken on\na=%x\nb=%x\nc=%x", ea, eb, ec)
		}
		if !bytes.Equal(encode(t, ab), encode(t, b.Join(a))) {
			t.Fatalf("equal joins encode differently")
		}
	})
}

func FuzzJoinLawsORSet(f *testing.F) { fuzzJoinLaws(f, seedORSet()...) }

func FuzzJoinLawsORMap(f *testing.F) {
	var m tMapOR
	m = m.Join(must(m.Update(1, "k", func(s tORSet) (tORSet, error) { return s.Add(1, "e") })))
	n := m.Join(must(m.Update(2, "k", func(s tORSet) (tORSet, error) { return s.Add(2, "f") })))
	fuzzJoinLaws(f, tMapOR{}, m, n, m.Remove("k"))
}

func FuzzJoinLawsMVRegister(f *testing.F) {
	var a, b tMV
	a = a.Join(must(a.Set(1, "x")))
	b = b.Join(must(b.Set(1, "y")))
	fuzzJoinLaws(f, tMV{}, a, b, a.Clear())
}
