package core

import (
	"fmt"
	"math"
)

// Epoch numbers a period of a budget, a tree or a key schedule. Epochs only grow.
type Epoch uint64

// Next returns e+1, or an error at the (unreachable in practice) top.
func (e Epoch) Next() (Epoch, error) {
	if e == math.MaxUint64 {
		return e, fmt.Errorf("epoch overflow: %w", ErrFailedPrecondition)
	}
	return e + 1, nil
}
