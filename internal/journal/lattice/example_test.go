package lattice_test

import (
	"fmt"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal/lattice"
)

// The daemon's pattern: a local mutator returns a delta, the delta is
// encoded into a fact's payload, and every replica (including the author,
// when it reduces its own fact) decodes and joins it.
func Example() {
	var alice, bob core.DeviceID
	alice[0], bob[0] = 1, 2
	type Set = lattice.ORSet[lattice.String, lattice.Device]

	coord, err := lattice.NewDeltaCoordinator(Set{}, 100)
	if err != nil {
		panic(err)
	}
	delta, err := coord.Update(func(s Set) (Set, error) { return s.Add(lattice.Device(alice), "milk") })
	if err != nil {
		panic(err)
	}
	payload, _ := delta.MarshalBinary() // goes into the fact

	var bobState Set
	var d Set
	if err := d.UnmarshalBinary(payload); err != nil {
		panic(err)
	}
	bobState = bobState.Join(d)
	bobState = bobState.Join(must(bobState.Add(lattice.Device(bob), "eggs")))
	coord.Merge(bobState)

	fmt.Println(coord.State().Elements())
	// Output: [eggs milk]
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
