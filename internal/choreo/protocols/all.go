package protocols

import "github.com/aura-p2p/aura/internal/choreo"

// All loads every embedded protocol, projected: what a session runtime is
// given.
func All() ([]*choreo.Projection, error) {
	var out []*choreo.Projection
	for _, file := range Files() {
		_, ps, err := LoadFile(file)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}
