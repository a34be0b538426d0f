package lattice

import (
	"errors"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
	"pgregory.net/rapid"
)

func TestDeltaConvergence(t *testing.T) {
	s := suite()
	s.gcounter.run(t, deltaConvergence)
	s.pn.run(t, deltaConvergence)
	s.max.run(t, deltaConvergence)
	s.lww.run(t, deltaConvergence)
	s.mv.run(t, deltaConvergence)
	s.gset.run(t, deltaConvergence)
	s.orset.run(t, deltaConvergence)
	s.mapPN.run(t, deltaConvergence)
	s.mapOR.run(t, deltaConvergence)
}

// deltaConvergence runs replicas that exchange only deltas, delivered late,
// out of order and duplicated, with random compaction thresholds, and checks
// they all end at the join of every delta, which is also what state-based
// merging of the replicas gives; and that compaction never changes state.
func deltaConvergence[T Nested[T]](t *testing.T, mut mutator[T]) {
	rapid.Check(t, func(t *rapid.T) {
		var cs [nReplicas]*DeltaCoordinator[T]
		var own [nReplicas][]T
		for i := range cs {
			var err error
			cs[i], err = NewDeltaCoordinator(*new(T), rapid.IntRange(1, 6).Draw(t, "threshold"))
			if err != nil {
				t.Fatal(err)
			}
		}
		var log []T
		for range rapid.IntRange(0, 30).Draw(t, "steps") {
			i := rapid.IntRange(0, nReplicas-1).Draw(t, "i")
			if len(log) > 0 && rapid.Bool().Draw(t, "deliver") {
				cs[i].ApplyDelta(log[rapid.IntRange(0, len(log)-1).Draw(t, "k")])
				continue
			}
			d, err := cs[i].Update(func(s T) (T, error) { return mut(t, Uint64(i), s), nil })
			if err != nil {
				t.Fatal(err)
			}
			log = append(log, d)
			own[i] = append(own[i], d)
		}

		var want T
		for _, d := range log {
			want = want.Join(d)
		}
		cv := NewCvCoordinator(*new(T))
		for _, c := range cs {
			cv.Merge(c.State())
		}
		if !cv.State().Equal(want) {
			t.Fatalf("state-based merge differs from the join of all deltas")
		}

		for i, c := range cs {
			out := c.DrainOutbox()
			if len(out) != len(own[i]) {
				t.Fatalf("replica %d shipped %d deltas, made %d", i, len(out), len(own[i]))
			}
			for k := range out {
				if !out[k].Equal(own[i][k]) {
					t.Fatalf("replica %d outbox delta %d differs", i, k)
				}
			}
			order := rapid.Permutation(log).Draw(t, "order")
			for range rapid.IntRange(0, 3).Draw(t, "dups") {
				if len(log) > 0 {
					order = append(order, log[rapid.IntRange(0, len(log)-1).Draw(t, "dup")])
				}
			}
			order = rapid.Permutation(order).Draw(t, "order2")
			for _, d := range order {
				c.ApplyDelta(d)
				checkCheckpoint(t, c)
			}
			st := c.State()
			if !st.Equal(want) {
				t.Fatalf("replica %d did not converge:\n got %s\nwant %s", i, show(st), show(want))
			}
			c.Compact()
			if !c.State().Equal(st) || !c.Checkpoint().Equal(st) || len(c.PendingDeltas()) != 0 {
				t.Fatalf("compaction changed state")
			}
		}
	})
}

func checkCheckpoint[T Nested[T]](t *rapid.T, c *DeltaCoordinator[T]) {
	got := c.Checkpoint()
	pending := c.PendingDeltas()
	if len(pending) >= c.threshold {
		t.Fatalf("%d pending deltas at threshold %d", len(pending), c.threshold)
	}
	for _, d := range pending {
		got = got.Join(d)
	}
	if !got.Equal(c.State()) {
		t.Fatalf("checkpoint ⊔ pending != state")
	}
}

func TestCoordinatorErrors(t *testing.T) {
	if _, err := NewDeltaCoordinator(tORSet{}, 0); !errors.Is(err, core.ErrInvalidArgument) {
		t.Fatalf("threshold 0: %v", err)
	}
	dc, err := NewDeltaCoordinator(tORSet{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	fail := func(tORSet) (tORSet, error) { return tORSet{}, core.ErrAborted }
	if _, err := dc.Update(fail); !errors.Is(err, core.ErrAborted) || len(dc.PendingDeltas()) != 0 || len(dc.DrainOutbox()) != 0 {
		t.Fatalf("failed update left traces: %v", err)
	}
	d, err := dc.Update(func(s tORSet) (tORSet, error) { return s.Add(1, "x") })
	if err != nil || !d.Contains("x") || !dc.State().Contains("x") || dc.Checkpoint().Contains("x") {
		t.Fatalf("update: %v", err)
	}
	dc.ApplyDelta(tORSet{})
	if len(dc.PendingDeltas()) != 0 || !dc.Checkpoint().Contains("x") {
		t.Fatalf("threshold 2 did not compact after 2 deltas")
	}

	cv := NewCvCoordinator(tORSet{})
	if _, err := cv.Update(fail); !errors.Is(err, core.ErrAborted) || !cv.State().Equal(tORSet{}) {
		t.Fatalf("cv failed update: %v", err)
	}
	if s, _ := cv.Update(func(s tORSet) (tORSet, error) { return s.Add(1, "y") }); !s.Contains("y") {
		t.Fatalf("cv update lost")
	}
	mv := NewMvCoordinator(AllCapabilities[String]())
	if _, err := mv.Update(func(CapSet[String]) (CapSet[String], error) { return CapSet[String]{}, core.ErrAborted }); !errors.Is(err, core.ErrAborted) || !mv.State().IsTop() {
		t.Fatalf("mv failed update: %v", err)
	}
}

func TestMvCoordinatorNeverWidens(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		mv := NewMvCoordinator(genCapSet(t))
		for range rapid.IntRange(0, 10).Draw(t, "steps") {
			before := mv.State()
			next := genCapSet(t)
			var after CapSet[String]
			if rapid.Bool().Draw(t, "refine") {
				after = mv.Refine(next)
			} else {
				after, _ = mv.Update(func(CapSet[String]) (CapSet[String], error) { return next, nil })
			}
			if !before.Covers(after) || !next.Covers(after) {
				t.Fatalf("widened: %v ⊓ %v = %v", before.Elements(), next.Elements(), after.Elements())
			}
		}
	})
}
