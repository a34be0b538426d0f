package lattice

import (
	"bytes"
	"testing"

	"pgregory.net/rapid"
)

func TestJoinLaws(t *testing.T) {
	s := suite()
	s.gcounter.run(t, joinLaws)
	s.pn.run(t, joinLaws)
	s.max.run(t, joinLaws)
	s.lww.run(t, joinLaws)
	s.mv.run(t, joinLaws)
	s.gset.run(t, joinLaws)
	s.orset.run(t, joinLaws)
	s.mapPN.run(t, joinLaws)
	s.mapOR.run(t, joinLaws)
}

func joinLaws[T Nested[T]](t *testing.T, mut mutator[T]) {
	rapid.Check(t, func(t *rapid.T) {
		st, _ := world(t, mut)
		a, b, c := st[0], st[1], st[2]
		if rapid.Bool().Draw(t, "unrelated") {
			// States from separate histories reuse dots for different
			// writes, which honest replicas never do; the laws must hold
			// anyway, since a peer's bytes are not trusted.
			s2, _ := world(t, mut)
			s3, _ := world(t, mut)
			b, c = s2[1], s3[2]
		}
		ea, eb, ec := encode(t, a), encode(t, b), encode(t, c)

		ab := a.Join(b)
		if !ab.Join(c).Equal(a.Join(b.Join(c))) {
			t.Fatalf("not associative:\na=%s\nb=%s\nc=%s", show(a), show(b), show(c))
		}
		if !ab.Equal(b.Join(a)) {
			t.Fatalf("not commutative:\na=%s\nb=%s", show(a), show(b))
		}
		if !a.Join(a).Equal(a) {
			t.Fatalf("not idempotent: %s", show(a))
		}
		var zero T
		if !a.Join(zero.Bottom()).Equal(a) || !zero.Bottom().Join(a).Equal(a) {
			t.Fatalf("bottom is not the identity: %s", show(a))
		}
		if !zero.Equal(zero.Bottom()) {
			t.Fatalf("zero value is not bottom")
		}
		// Upper bound: x ⊑ x⊔y, where x ⊑ z means x⊔z = z.
		if !a.Join(ab).Equal(ab) || !b.Join(ab).Equal(ab) {
			t.Fatalf("join is not an upper bound:\na=%s\nb=%s", show(a), show(b))
		}
		// Values are immutable: no join above changed an operand.
		if !bytes.Equal(ea, encode(t, a)) || !bytes.Equal(eb, encode(t, b)) || !bytes.Equal(ec, encode(t, c)) {
			t.Fatalf("join mutated an operand")
		}
		// Canonical encoding: equal values built in different orders (so
		// their maps were filled in different orders) encode identically.
		if !bytes.Equal(encode(t, ab), encode(t, b.Join(a))) ||
			!bytes.Equal(encode(t, ab.Join(c)), encode(t, c.Join(b).Join(a))) {
			t.Fatalf("equal values encode differently")
		}
	})
}

func TestMeetLaws(t *testing.T) {
	t.Run("CapSet", func(t *testing.T) {
		meetLaws(t, genCapSet, func(small, big CapSet[String]) bool { return big.Covers(small) })
	})
	t.Run("MinRegister", func(t *testing.T) {
		meetLaws(t, genMinReg, func(small, big MinRegister[Int64]) bool {
			bv, bset := big.Value()
			sv, sset := small.Value()
			return !bset || (sset && sv <= bv)
		})
	})
}

// meetLaws checks the laws plus "never widens" through an order (leq)
// independent of Meet, so a Meet that widened would be caught even if it were
// consistently wrong.
func meetLaws[T interface {
	Meet[T]
	Codec[T]
}](t *testing.T, gen func(*rapid.T) T, leq func(small, big T) bool) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := gen(t), gen(t), gen(t)
		ea, eb := encode(t, a), encode(t, b)
		ab := a.Meet(b)
		if !ab.Meet(c).Equal(a.Meet(b.Meet(c))) {
			t.Fatalf("not associative")
		}
		if !ab.Equal(b.Meet(a)) {
			t.Fatalf("not commutative")
		}
		if !a.Meet(a).Equal(a) {
			t.Fatalf("not idempotent")
		}
		var zero T
		if !a.Meet(zero.Top()).Equal(a) || !zero.Top().Meet(a).Equal(a) {
			t.Fatalf("top is not the identity")
		}
		if !ab.Meet(a).Equal(ab) || !ab.Meet(b).Equal(ab) {
			t.Fatalf("meet is not a lower bound")
		}
		if !leq(ab, a) || !leq(ab, b) {
			t.Fatalf("meet widened: %s ⊓ %s = %s", show(a), show(b), show(ab))
		}
		if !leq(a, zero.Top()) {
			t.Fatalf("top is not above %s", show(a))
		}
		if !bytes.Equal(ea, encode(t, a)) || !bytes.Equal(eb, encode(t, b)) {
			t.Fatalf("meet mutated an operand")
		}
		if !bytes.Equal(encode(t, ab), encode(t, b.Meet(a))) {
			t.Fatalf("equal values encode differently")
		}
	})
}
