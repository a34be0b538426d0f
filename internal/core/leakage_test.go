package core

import "testing"

// Leakage vectors are stored and signed indexed by Observer, so the order
// and the names that errors and the API show are fixed.
func TestObserverIndexesLeakage(t *testing.T) {
	for _, tc := range []struct {
		o     Observer
		index int
		name  string
	}{
		{ObserverExternal, 0, "external"},
		{ObserverNeighbor, 1, "neighbor"},
		{ObserverInGroup, 2, "in_group"},
		{3, 3, "observer(3)"},
	} {
		if int(tc.o) != tc.index || tc.o.String() != tc.name {
			t.Errorf("%d: index %d name %q, want %d %q", tc.o, int(tc.o), tc.o.String(), tc.index, tc.name)
		}
	}
	if n := len(Leakage{}); n != int(ObserverInGroup)+1 {
		t.Fatalf("Leakage has %d entries for %d observer classes", n, int(ObserverInGroup)+1)
	}
}
