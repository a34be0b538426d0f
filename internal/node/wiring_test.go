package node

import (
	"testing"
)

// The daemon's own components claim disjoint names, fact types, reducers and
// membership kinds, and every validator and reducer reaches the journal.
func TestDaemonComponentsAreDisjoint(t *testing.T) {
	comps := daemonComponents()
	reg, err := collect(comps)
	if err != nil {
		t.Fatal(err)
	}
	want, reducers := 0, 0
	for _, c := range comps {
		want += len(c.validators)
		reducers += len(c.reducers)
	}
	if len(reg.validators) != want || len(reg.reducers) != reducers || want == 0 || reducers == 0 {
		t.Fatalf("registry has %d validators, %d reducers; components declare %d, %d",
			len(reg.validators), len(reg.reducers), want, reducers)
	}
}
