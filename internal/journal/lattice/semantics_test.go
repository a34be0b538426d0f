package lattice

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
	"pgregory.net/rapid"
)

func TestORSetAddWins(t *testing.T) {
	var a, b tORSet
	a = a.Join(must(a.Add(1, "x")))
	b = b.Join(a) // b has seen a's add

	// Concurrently: a removes x, b adds x again.
	a = a.Join(a.Remove("x"))
	b = b.Join(must(b.Add(2, "x")))
	if a.Contains("x") || !b.Contains("x") {
		t.Fatalf("local effects wrong")
	}
	if m := a.Join(b); !m.Contains("x") || !b.Join(a).Contains("x") {
		t.Fatalf("concurrent add lost to remove")
	}

	// A remove only removes what was observed: c never saw b's add.
	var c tORSet
	rm := c.Remove("x")
	if !rm.Equal(tORSet{}) || !b.Join(rm).Contains("x") {
		t.Fatalf("unobserved add removed")
	}

	// Sequential remove after seeing every add wins.
	m := a.Join(b)
	m = m.Join(m.Remove("x"))
	if m.Contains("x") || m.Len() != 0 {
		t.Fatalf("observed remove ineffective: %v", m.Elements())
	}
	// And the element can come back.
	m = m.Join(must(m.Add(1, "x")))
	if !m.Contains("x") || !slices.Equal(m.Elements(), []String{"x"}) {
		t.Fatalf("re-add failed")
	}
}

// TestORSetAddWinsProperty: whatever the history, an add concurrent with a
// remove of the same element survives the merge, and the remove takes effect
// on everything its replica had observed.
func TestORSetAddWinsProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		st, _ := world(t, mutORSet)
		e := genElem(t)
		rm := st[0].Remove(e)
		add := must(st[1].Add(1, e))
		all := st[0].Join(st[1]).Join(st[2]).Join(rm).Join(add)
		if !all.Contains(e) {
			t.Fatalf("concurrent add of %q lost", e)
		}
		afterRm := st[0].Join(rm)
		if afterRm.Contains(e) {
			t.Fatalf("remove of %q ineffective locally", e)
		}
		// Elements other than e are untouched by the remove.
		for _, x := range st[0].Elements() {
			if x != e && !afterRm.Contains(x) {
				t.Fatalf("remove of %q removed %q", e, x)
			}
		}
		if !slices.IsSortedFunc(all.Elements(), String.Compare) {
			t.Fatalf("elements not sorted")
		}
	})
}

func TestCounters(t *testing.T) {
	var g GCounter[Uint64]
	g = g.Join(must(g.Inc(1, math.MaxUint64)))
	if _, err := g.Inc(1, 1); !errors.Is(err, core.ErrFailedPrecondition) {
		t.Fatalf("overflow not refused: %v", err)
	}
	g = g.Join(must(g.Inc(2, 5)))
	if g.Value() != math.MaxUint64 {
		t.Fatalf("sum did not saturate: %d", g.Value())
	}

	var p tPN
	p = p.Join(must(p.Add(1, 10))).Join(must(p.Add(2, -15)))
	if p.Value() != -5 {
		t.Fatalf("pn value %d", p.Value())
	}
	p = p.Join(must(p.Add(1, math.MinInt64)))
	if p.Value() != math.MinInt64 {
		t.Fatalf("pn did not saturate low: %d", p.Value())
	}
	var q tPN
	q = q.Join(must(q.Inc(1, math.MaxUint64))).Join(must(q.Inc(2, math.MaxUint64))).Join(must(q.Dec(3, 1)))
	if q.Value() != math.MaxInt64 {
		t.Fatalf("pn did not saturate high: %d", q.Value())
	}
	q = q.Join(must(q.Dec(3, math.MaxUint64-1))).Join(must(q.Dec(4, math.MaxUint64))).Join(must(q.Dec(5, 7)))
	if q.Value() != -7 {
		t.Fatalf("pn exact after large sums: %d", q.Value())
	}
}

func TestPNCounterValueProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var c tPN
		var want int64
		for range rapid.IntRange(0, 20).Draw(t, "n") {
			by := rapid.Int64Range(-1000, 1000).Draw(t, "by")
			c = c.Join(must(c.Add(genReplica(t), by)))
			want += by
		}
		if c.Value() != want {
			t.Fatalf("value %d, want %d", c.Value(), want)
		}
	})
}

func TestLWWRegister(t *testing.T) {
	var a, b tLWW
	a = a.Join(must(a.Set(1, "one")))
	b = b.Join(a)
	a = a.Join(must(a.Set(1, "a2")))
	b = b.Join(must(b.Set(2, "b2"))) // same lamport, higher replica wins
	for _, m := range []tLWW{a.Join(b), b.Join(a)} {
		if v, _ := m.Value(); v != "b2" {
			t.Fatalf("got %q, want b2", v)
		}
	}
	old := a.Assign(Timestamp[Uint64]{Lamport: 1, Replica: 9}, "stale")
	if v, _ := a.Join(old).Value(); v != "a2" {
		t.Fatalf("stale write won: %q", v)
	}
	if _, ok := (tLWW{}).Value(); ok {
		t.Fatalf("bottom register is set")
	}
}

func TestMVRegister(t *testing.T) {
	var a, b tMV
	a = a.Join(must(a.Set(1, "x")))
	b = b.Join(a)
	a = a.Join(must(a.Set(1, "y")))
	b = b.Join(must(b.Set(2, "z")))
	m := a.Join(b)
	if got := m.Values(); !slices.Equal(got, []String{"y", "z"}) {
		t.Fatalf("concurrent values %q", got)
	}
	m = m.Join(must(m.Set(0, "w")))
	if got := m.Values(); !slices.Equal(got, []String{"w"}) {
		t.Fatalf("overwrite left %q", got)
	}
	if got := m.Join(m.Clear()).Values(); len(got) != 0 {
		t.Fatalf("clear left %q", got)
	}
}

func TestORMap(t *testing.T) {
	inc := func(r Uint64, by int64) func(tPN) (tPN, error) {
		return func(v tPN) (tPN, error) { return v.Add(r, by) }
	}
	var a, b tMapPN
	a = a.Join(must(a.Update(1, "k", inc(1, 5))))
	b = b.Join(a)
	// Concurrent: a removes k, b increments it. The update survives.
	a = a.Join(a.Remove("k"))
	b = b.Join(must(b.Update(2, "k", inc(2, 1))))
	m := a.Join(b)
	v, ok := m.Get("k")
	if !ok || v.Value() != 6 {
		t.Fatalf("k = %d present=%v, want 6 (update wins, carries its state)", v.Value(), ok)
	}
	// Observed remove, then a fresh update starts from bottom.
	m = m.Join(m.Remove("k"))
	if m.Contains("k") || m.Len() != 0 {
		t.Fatalf("remove ineffective")
	}
	m = m.Join(must(m.Update(1, "k", inc(1, 2))))
	if v, _ := m.Get("k"); v.Value() != 2 {
		t.Fatalf("re-added key kept old value: %d", v.Value())
	}
	// Concurrent updates on two replicas join their values.
	c, d := m, m
	c = c.Join(must(c.Update(1, "k", inc(1, 10))))
	d = d.Join(must(d.Update(2, "k", inc(2, 100))))
	if v, _ := c.Join(d).Get("k"); v.Value() != 112 {
		t.Fatalf("concurrent updates: %d, want 112", v.Value())
	}
	if _, err := m.Update(1, "k", func(tPN) (tPN, error) { return tPN{}, core.ErrAborted }); !errors.Is(err, core.ErrAborted) {
		t.Fatalf("fn error not wrapped: %v", err)
	}
	if !slices.Equal(c.Join(d).Keys(), []String{"k"}) {
		t.Fatalf("keys %q", c.Join(d).Keys())
	}
}

func TestCapSet(t *testing.T) {
	top := AllCapabilities[String]()
	none := CapSet[String]{}
	rw := NewCapSet[String]("read", "write")
	r := NewCapSet[String]("read")
	if none.Contains("read") || !top.Contains("anything") {
		t.Fatalf("empty must grant nothing, top everything")
	}
	if !rw.Meet(top).Equal(rw) || !rw.Meet(none).Equal(none) || !rw.Meet(r).Equal(r) {
		t.Fatalf("meet wrong")
	}
	if !slices.Equal(rw.Elements(), []String{"read", "write"}) || top.Elements() != nil || top.Len() != -1 {
		t.Fatalf("elements wrong")
	}
	mv := NewMvCoordinator(top)
	mv.Refine(rw)
	got, _ := mv.Update(func(CapSet[String]) (CapSet[String], error) { return top, nil })
	if !got.Equal(rw) {
		t.Fatalf("mv coordinator widened to %v", got.Elements())
	}
	mv.Refine(NewCapSet[String]("write", "admin"))
	if !mv.State().Equal(NewCapSet[String]("write")) {
		t.Fatalf("refine: %v", mv.State().Elements())
	}
}

func TestMinMaxRegister(t *testing.T) {
	var mn MinRegister[Int64]
	if _, ok := mn.Value(); ok || !mn.Equal(mn.Top()) {
		t.Fatalf("zero min register must be unset top")
	}
	mn = mn.Meet(mn.Set(5)).Meet(NewMinRegister[Int64](7))
	if v, _ := mn.Value(); v != 5 {
		t.Fatalf("min %d", v)
	}
	var mx MaxRegister[Int64]
	mx = mx.Join(mx.Set(-5)).Join(NewMaxRegister[Int64](-7))
	if v, _ := mx.Value(); v != -5 {
		t.Fatalf("max %d", v)
	}
}
