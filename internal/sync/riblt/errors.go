package riblt

import (
	"fmt"

	"github.com/aura-p2p/aura/internal/core"
)

var (
	// ErrMalformed: a symbol batch on the wire is not in the canonical
	// encoding or carries an impossible symbol.
	ErrMalformed = fmt.Errorf("riblt: malformed symbol batch: %w", core.ErrInvalidArgument)
	// ErrInconsistent: the symbols cannot come from two honest encoders of
	// the same key (a peer lying, or the caller mixing symbols of different
	// sets or keys). The decoder stops for good.
	ErrInconsistent = fmt.Errorf("riblt: inconsistent symbols: %w", core.ErrInvalidArgument)
	// ErrTooManySymbols: the decoder reached its symbol bound without
	// decoding; the caller falls back to range-based reconciliation.
	ErrTooManySymbols = fmt.Errorf("riblt: symbol bound reached without decoding: %w", core.ErrResourceExhausted)
	// ErrRange: a requested or announced symbol index range is out of bounds
	// or out of order.
	ErrRange = fmt.Errorf("riblt: symbol range: %w", core.ErrInvalidArgument)
	// ErrItems: the items given to stream symbols past the cached prefix are
	// missing or are not the encoded set.
	ErrItems = fmt.Errorf("riblt: items do not match the encoded set: %w", core.ErrFailedPrecondition)
	// ErrEmpty: Remove on an encoder whose set is empty.
	ErrEmpty = fmt.Errorf("riblt: remove from an empty set: %w", core.ErrFailedPrecondition)
)
