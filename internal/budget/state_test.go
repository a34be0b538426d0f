package budget

import (
	"errors"
	"math"
	"testing"

	"pgregory.net/rapid"

	"github.com/aura-p2p/aura/internal/core"
)

// genState draws states that collide often: few epochs, small and extreme
// numbers, and the zero value, so the laws meet equal epochs and edges.
func genState() *rapid.Generator[State] {
	num := rapid.OneOf(rapid.Uint64Range(0, 8), rapid.Just(uint64(math.MaxUint64)), rapid.Uint64())
	return rapid.Custom(func(t *rapid.T) State {
		if rapid.IntRange(0, 9).Draw(t, "zero") == 0 {
			return State{}
		}
		return State{
			Limit: num.Draw(t, "limit"),
			Spent: num.Draw(t, "spent"),
			Epoch: core.Epoch(rapid.Uint64Range(0, 3).Draw(t, "epoch")),
		}
	})
}

// leq is the lattice order: a ⊑ b iff a ⊔ b = b.
func leq(a, b State) bool { return a.Join(b) == b }

func TestStateJoinLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := genState().Draw(t, "a"), genState().Draw(t, "b"), genState().Draw(t, "c")
		if a.Join(b).Join(c) != a.Join(b.Join(c)) {
			t.Fatalf("not associative: %+v %+v %+v", a, b, c)
		}
		if a.Join(b) != b.Join(a) {
			t.Fatalf("not commutative: %+v %+v", a, b)
		}
		if a.Join(a) != a {
			t.Fatalf("not idempotent: %+v", a)
		}
		if a.Join(State{}) != a || (State{}).Join(a) != a {
			t.Fatalf("zero value is not bottom: %+v", a)
		}
		ab := a.Join(b)
		if !leq(a, ab) || !leq(b, ab) {
			t.Fatalf("join is not an upper bound: %+v %+v", a, b)
		}
		// Least: any upper bound of a and b is above a ⊔ b.
		if leq(a, c) && leq(b, c) && !leq(ab, c) {
			t.Fatalf("join is not least: %+v %+v under %+v", a, b, c)
		}
	})
}

func TestStateJoinEpochRules(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := genState().Draw(t, "a"), genState().Draw(t, "b")
		j := a.Join(b)
		if j.Epoch < a.Epoch || j.Epoch < b.Epoch {
			t.Fatalf("join lowered the epoch: %+v ⊔ %+v = %+v", a, b, j)
		}
		if a == (State{}) || b == (State{}) {
			return
		}
		switch {
		case a.Epoch == b.Epoch:
			if j.Limit > a.Limit || j.Limit > b.Limit {
				t.Fatalf("same-epoch join widened the limit: %+v ⊔ %+v = %+v", a, b, j)
			}
			if j.Spent < a.Spent || j.Spent < b.Spent {
				t.Fatalf("same-epoch join lost spend: %+v ⊔ %+v = %+v", a, b, j)
			}
		case a.Epoch > b.Epoch:
			if j != a {
				t.Fatalf("older epoch leaked into newer: %+v ⊔ %+v = %+v", a, b, j)
			}
		}
	})
}

func TestStateJoinIsEpochAware(t *testing.T) {
	// Aura's merge gave (epoch 6, spent 90) here.
	old := State{Limit: 100, Spent: 90, Epoch: 5}
	fresh := State{Limit: 100, Spent: 0, Epoch: 6}
	if got := old.Join(fresh); got != fresh {
		t.Fatalf("got %+v, want %+v", got, fresh)
	}
}

func TestBudgetLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genState().Draw(t, "s")
		// Start from a reachable state: spent within the limit.
		if s.Spent > s.Limit {
			s.Spent = s.Limit
		}
		costs := rapid.SliceOfN(rapid.OneOf(rapid.Uint64Range(0, 10), rapid.Uint64()), 0, 20).Draw(t, "costs")
		for _, cost := range costs {
			before := s.Headroom()
			next, err := s.Charge(cost)
			if err != nil {
				if !errors.Is(err, ErrExhausted) || !errors.Is(err, core.ErrResourceExhausted) {
					t.Fatalf("denial does not wrap ErrExhausted: %v", err)
				}
				if next != s {
					t.Fatalf("denied charge changed the state: %+v -> %+v", s, next)
				}
				if s.Limit != 0 && cost <= before {
					t.Fatalf("charge of %d denied with headroom %d", cost, before)
				}
				continue
			}
			if s.Limit == 0 {
				t.Fatalf("limit 0 allowed a charge of %d", cost)
			}
			if next.Spent > next.Limit {
				t.Fatalf("spent above limit: %+v", next)
			}
			if next.Headroom() > before {
				t.Fatalf("charging increased headroom: %d -> %d", before, next.Headroom())
			}
			if next.Headroom() != before-cost {
				t.Fatalf("charge of %d: headroom %d -> %d", cost, before, next.Headroom())
			}
			if cost == before && next.Headroom() != 0 {
				t.Fatalf("exact charge left headroom %d", next.Headroom())
			}
			s = next
		}
		// Rotation: a later epoch resets spent and keeps the limit; an
		// earlier or equal one changes nothing.
		e := core.Epoch(rapid.Uint64Range(0, 5).Draw(t, "rotate"))
		r := s.Rotate(e)
		if e > s.Epoch {
			if r.Spent != 0 || r.Epoch != e || r.Limit != s.Limit {
				t.Fatalf("rotation to %d: %+v -> %+v", e, s, r)
			}
		} else if r != s {
			t.Fatalf("rotation to %d regressed: %+v -> %+v", e, s, r)
		}
		if r.Epoch < s.Epoch {
			t.Fatalf("rotation lowered the epoch")
		}
	})
}

func TestMissingStateDenies(t *testing.T) {
	var s State
	if s.Headroom() != 0 {
		t.Fatalf("zero state has headroom %d", s.Headroom())
	}
	for _, cost := range []uint64{0, 1, math.MaxUint64} {
		if _, err := s.Charge(cost); !errors.Is(err, ErrExhausted) {
			t.Fatalf("zero state allowed cost %d: %v", cost, err)
		}
		if _, err := (State{Limit: 0, Epoch: 9}).Charge(cost); !errors.Is(err, ErrExhausted) {
			t.Fatalf("limit 0 allowed cost %d: %v", cost, err)
		}
	}
}

func TestChargeOverflowSafe(t *testing.T) {
	s := State{Limit: math.MaxUint64, Spent: math.MaxUint64 - 1}
	if _, err := s.Charge(2); !errors.Is(err, ErrExhausted) {
		t.Fatalf("overflowing charge: %v", err)
	}
	got, err := s.Charge(1)
	if err != nil || got.Headroom() != 0 {
		t.Fatalf("exact charge at the top: %+v %v", got, err)
	}
	// A state joined from a peer may say spent > limit; nothing fits.
	if _, err := (State{Limit: 5, Spent: 7}).Charge(0); !errors.Is(err, ErrExhausted) {
		t.Fatalf("over-spent state allowed a charge: %v", err)
	}
}

func TestPolicyMeetNeverWidens(t *testing.T) {
	genKey := rapid.Custom(func(t *rapid.T) Key {
		return Key{
			Context: core.ContextID{rapid.ByteRange(0, 2).Draw(t, "ctx")},
			Peer:    core.DeviceID{rapid.ByteRange(0, 2).Draw(t, "peer")},
		}
	})
	genOverride := rapid.Custom(func(t *rapid.T) Override {
		k := genKey.Draw(t, "key") // id 0 is the wildcard
		return Override{Context: k.Context, Peer: k.Peer, Limit: rapid.Uint64Range(0, 1<<22).Draw(t, "limit")}
	})
	rapid.Check(t, func(t *rapid.T) {
		p := DefaultPolicy()
		p.Overrides = rapid.SliceOfN(genOverride, 0, 5).Draw(t, "overrides")
		extra := genOverride.Draw(t, "extra")
		q := p
		q.Overrides = append(append([]Override(nil), p.Overrides...), extra)
		for range 10 {
			k := genKey.Draw(t, "probe")
			c := core.Class(rapid.IntRange(0, 4).Draw(t, "class"))
			before, after := p.Limit(k, c), q.Limit(k, c)
			if after > before {
				t.Fatalf("adding %+v widened %v/%v: %d -> %d", extra, k, c, before, after)
			}
			if before > p.Flow.of(c) {
				t.Fatalf("limit above the class default")
			}
			if extra.matches(k) && after > extra.Limit {
				t.Fatalf("matching term ignored")
			}
			if !c.Valid() && before != 0 {
				t.Fatalf("unknown class %d got limit %d", c, before)
			}
		}
		ctx := core.ContextID{rapid.ByteRange(0, 2).Draw(t, "lctx")}
		lo := LeakageOverride{Context: ctx, Limits: core.Leakage{rapid.Uint64().Draw(t, "l0"), rapid.Uint64().Draw(t, "l1"), rapid.Uint64().Draw(t, "l2")}}
		q.LeakageOverrides = append(q.LeakageOverrides, lo)
		for c := core.ClassLink; c <= core.ClassGroup; c++ {
			b, a := p.LeakageLimit(ctx, c), q.LeakageLimit(ctx, c)
			for i := range a {
				if a[i] > b[i] || a[i] > lo.Limits[i] {
					t.Fatalf("leakage override widened: %v -> %v", b, a)
				}
			}
		}
	})
}

func TestZeroPolicyDenies(t *testing.T) {
	var p Policy
	for c := core.ClassLink; c <= core.ClassGroup; c++ {
		if p.Limit(Key{}, c) != 0 || p.LeakageLimit(core.ContextID{}, c) != (core.Leakage{}) {
			t.Fatalf("zero policy grants something for %v", c)
		}
	}
}
