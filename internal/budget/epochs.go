package budget

import (
	"sync"
	"time"

	"github.com/aura-p2p/aura/internal/core"
)

// DefaultEpochDuration is how long a budget epoch lasts unless configured.
const DefaultEpochDuration = 5 * time.Minute

// Epochs is this device's view of the budget epoch. Epochs advance with time,
// epoch = floor(now / duration) since the Unix epoch, so devices with roughly
// synchronised clocks agree without talking; peers then converge on the
// highest epoch observed, which absorbs small skew. The view only grows:
//
//	current = max(wall epoch, highest epoch observed or restored)
//
// Observe adopts a peer's higher epoch, but at most wall+1: a peer whose
// clock runs ahead (or who lies) can pull this device one epoch forward,
// never arbitrarily far, so it cannot make every other peer's receipts look
// stale. InWindow accepts receipts one epoch either side of current, the
// clock-skew window.
//
// Safe for concurrent use.
type Epochs struct {
	clock core.Clock
	d     time.Duration

	mu sync.Mutex
	hw core.Epoch // highest epoch returned, observed or restored
}

// NewEpochs returns epochs of length d (DefaultEpochDuration if d <= 0)
// read from clock.
func NewEpochs(clock core.Clock, d time.Duration) *Epochs {
	if d <= 0 {
		d = DefaultEpochDuration
	}
	return &Epochs{clock: clock, d: d}
}

// Duration is the length of an epoch.
func (e *Epochs) Duration() time.Duration { return e.d }

// wall is the epoch the clock alone says it is. Times before 1970 are epoch 0.
func (e *Epochs) wall() core.Epoch {
	ns := e.clock.Now().UnixNano()
	if ns < 0 {
		return 0
	}
	return core.Epoch(ns / int64(e.d))
}

// Current returns the current epoch. It never returns less than it did
// before, even if the clock steps back.
func (e *Epochs) Current() core.Epoch {
	w := e.wall()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hw = max(e.hw, w)
	return e.hw
}

// Observe takes note of an epoch seen from a peer (in an authenticated
// receipt). A higher epoch is adopted, capped at the wall epoch + 1.
func (e *Epochs) Observe(x core.Epoch) {
	w := e.wall()
	capped := min(x, w+1)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hw = max(e.hw, capped)
}

// restore adopts an epoch this device itself persisted, without the cap: the
// view must not go back across a restart even if the clock did.
func (e *Epochs) restore(x core.Epoch) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hw = max(e.hw, x)
}

// InWindow reports whether a receipt of epoch x is acceptable now:
// |x - current| <= 1.
func (e *Epochs) InWindow(x core.Epoch) bool {
	c := e.Current()
	if x >= c {
		return x-c <= 1
	}
	return c-x <= 1
}
